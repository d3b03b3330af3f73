//! Parsing of `mysql://` database URLs: refuses anything ambiguous, never echoes a
//! password.

use mysql_async::{Opts, OptsBuilder, PoolConstraints};

/// Connections in the pool unless the URL says `pool_max` (and `pool_min`).
pub const DEFAULT_POOL_MAX: usize = 16;
const DEFAULT_POOL_MIN: usize = 1;
/// Prepared statements kept per connection unless the URL says `stmt_cache_size`: more
/// than the store has distinct statements, so none is prepared twice on a connection.
const DEFAULT_STMT_CACHE: usize = 128;

/// Applied on every new connection. Strict mode refuses a value that does not fit its
/// column instead of truncating it; READ COMMITTED makes every statement of a write
/// transaction see the latest committed rows (the default REPEATABLE READ would let a
/// plain SELECT in a read-modify-write path see a stale snapshot).
const SESSION_SETUP: [&str; 2] = [
    "SET SESSION sql_mode = 'TRADITIONAL'",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
];

/// A checked MySQL/MariaDB database URL, `mysql://user:password@host:port/database`.
/// Query parameters are the driver's (`pool_min`, `pool_max`, `stmt_cache_size`,
/// `require_ssl`, ...); an unknown one is refused.
#[derive(Clone)]
pub struct MysqlUrl {
    opts: Opts,
    redacted: String,
}

impl std::fmt::Debug for MysqlUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MysqlUrl").field(&self.redacted).finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MysqlUrlError {
    #[error("a MySQL database URL must look like mysql://user:password@host:3306/database")]
    Scheme,
    #[error("the MySQL database URL {0} is not a valid URL")]
    Invalid(String),
    #[error(
        "the MySQL database URL {0} names no database; add it as the path (mysql://host/tokenwarden) so that a typo cannot write into another one"
    )]
    NoDatabase(String),
    #[error("the MySQL database URL {0} has a fragment; remove it")]
    Fragment(String),
    #[error("the MySQL database URL {url} is refused by the driver: {reason}")]
    Driver { url: String, reason: String },
    #[error(
        "the MySQL database URL {0} sets {1}; tokenwarden sets it itself (the store relies on it)"
    )]
    Reserved(String, &'static str),
}

/// The URL with its password replaced, for messages and logs.
pub fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                // Only fails for URLs that cannot have a password at all.
                let _ = u.set_password(Some("REDACTED"));
            }
            u.to_string()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

impl MysqlUrl {
    pub fn parse(raw: &str) -> Result<Self, MysqlUrlError> {
        if !raw.starts_with("mysql://") {
            return Err(MysqlUrlError::Scheme);
        }
        let redacted = redact(raw);
        let parsed = url::Url::parse(raw).map_err(|_| MysqlUrlError::Invalid(redacted.clone()))?;
        if parsed.fragment().is_some() {
            return Err(MysqlUrlError::Fragment(redacted));
        }
        let db = parsed.path().trim_start_matches('/');
        if db.is_empty() || db.contains('/') {
            return Err(MysqlUrlError::NoDatabase(redacted));
        }
        let has = |name: &str| parsed.query_pairs().any(|(k, _)| k == name);
        for reserved in ["client_found_rows", "reset_connection"] {
            if has(reserved) {
                return Err(MysqlUrlError::Reserved(redacted, reserved));
            }
        }
        let (has_min, has_max, has_cache) =
            (has("pool_min"), has("pool_max"), has("stmt_cache_size"));
        // The driver's messages name parameters and their values, never the password.
        let opts = Opts::from_url(raw).map_err(|e| MysqlUrlError::Driver {
            url: redacted.clone(),
            reason: e.to_string(),
        })?;
        let mut pool = opts.pool_opts().clone();
        if !has_min && !has_max {
            if let Some(c) = PoolConstraints::new(DEFAULT_POOL_MIN, DEFAULT_POOL_MAX) {
                pool = pool.with_constraints(c);
            }
        } else if !has_max {
            let min = pool.constraints().min();
            if let Some(c) = PoolConstraints::new(min, DEFAULT_POOL_MAX.max(min)) {
                pool = pool.with_constraints(c);
            }
        } else if !has_min {
            let max = pool.constraints().max();
            if let Some(c) = PoolConstraints::new(DEFAULT_POOL_MIN.min(max), max) {
                pool = pool.with_constraints(c);
            }
        }
        // Resetting a connection on its way back to the pool would drop its prepared
        // statements; every transaction here ends in a commit or a rollback anyway.
        pool = pool.with_reset_connection(false);
        let mut builder = OptsBuilder::from_opts(opts)
            .pool_opts(pool)
            // Affected rows count matched rows, as on SQLite and PostgreSQL: a
            // conditional UPDATE that matches but changes nothing still reports 1.
            .client_found_rows(true)
            .setup(SESSION_SETUP.to_vec());
        if !has_cache {
            builder = builder.stmt_cache_size(DEFAULT_STMT_CACHE);
        }
        Ok(Self {
            opts: builder.into(),
            redacted,
        })
    }

    pub(crate) fn opts(&self) -> &Opts {
        &self.opts
    }

    /// The URL without its password.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    pub fn database(&self) -> Option<&str> {
        self.opts.db_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_url_gets_the_default_pool() {
        let url = MysqlUrl::parse("mysql://tw:pw@db.example:3306/tokenwarden").unwrap();
        assert_eq!(url.database(), Some("tokenwarden"));
        assert_eq!(url.opts().pool_opts().constraints().max(), DEFAULT_POOL_MAX);
        assert!(url.opts().client_found_rows());
        assert!(!url.opts().pool_opts().reset_connection());
        assert_eq!(url.opts().stmt_cache_size(), DEFAULT_STMT_CACHE);
    }

    #[test]
    fn pool_size_comes_from_the_url() {
        let url =
            MysqlUrl::parse("mysql://root@127.0.0.1/tw?pool_max=40&stmt_cache_size=64").unwrap();
        assert_eq!(url.opts().pool_opts().constraints().max(), 40);
        assert_eq!(url.opts().pool_opts().constraints().min(), DEFAULT_POOL_MIN);
        assert_eq!(url.opts().stmt_cache_size(), 64);
    }

    #[test]
    fn ambiguous_urls_are_refused() {
        for bad in [
            "mysql://root@127.0.0.1",
            "mysql://root@127.0.0.1/",
            "mysql://root@127.0.0.1/a/b",
            "mysql://root@127.0.0.1/tw#x",
            "mysql://root@127.0.0.1/tw?nonsense=1",
            "mysql://root@127.0.0.1/tw?client_found_rows=false",
            "mysql://root@127.0.0.1/tw?reset_connection=true",
            "mysql://root@127.0.0.1/tw?pool_min=9&pool_max=2",
            "mariadb://root@127.0.0.1/tw",
            "MYSQL://root@127.0.0.1/tw",
            "mysql:root@127.0.0.1/tw",
        ] {
            assert!(MysqlUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn no_error_or_debug_shows_the_password() {
        for bad in [
            "mysql://tw:s3cret-pw@127.0.0.1",
            "mysql://tw:s3cret-pw@127.0.0.1/tw?nonsense=1",
            "mysql://tw:s3cret-pw@127.0.0.1/tw#frag",
            "mysql://tw:s3cret-pw@127.0.0.1/tw?pool_max=x",
        ] {
            let e = MysqlUrl::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cret-pw"), "{e}");
            assert!(e.contains("REDACTED"), "{e}");
        }
        let ok = MysqlUrl::parse("mysql://tw:s3cret-pw@127.0.0.1/tw").unwrap();
        assert!(!format!("{ok:?}").contains("s3cret-pw"));
        assert_eq!(ok.redacted(), "mysql://tw:REDACTED@127.0.0.1/tw");
    }
}
