//! Parsing of `postgres://` database URLs: what tokenwarden accepts, refusing anything
//! ambiguous, with the password kept out of every message.

use std::fmt;
use std::time::Duration;

use url::Url;

/// Connections in the pool when the URL does not say (`?pool_max_size=N`).
pub const DEFAULT_POOL_SIZE: usize = 16;
const MAX_POOL_SIZE: usize = 1024;

/// A checked PostgreSQL URL:
/// `postgres://user[:password]@host[:port]/database[?pool_max_size=N&connect_timeout=S&application_name=X&sslmode=disable]`.
#[derive(Clone)]
pub struct PgUrl {
    config: tokio_postgres::Config,
    pool_size: usize,
    redacted: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgUrlError {
    #[error(
        "a PostgreSQL database URL must start with postgres:// or postgresql:// (for example postgres://tokenwarden@db.internal/tokenwarden)"
    )]
    Scheme,
    #[error("{0} is not a valid URL")]
    Invalid(String),
    #[error("{0} names no database: add it as the path, as in postgres://user@host/tokenwarden")]
    NoDatabase(String),
    #[error("{0} names no user: add one, as in postgres://tokenwarden@host/tokenwarden")]
    NoUser(String),
    #[error("{0} names no host")]
    NoHost(String),
    #[error(
        "{url} has {what}; tokenwarden accepts only pool_max_size, connect_timeout, application_name and sslmode=disable|prefer, so that a typo cannot silently change the connection"
    )]
    Ambiguous { url: String, what: String },
    #[error(
        "{0} asks for TLS (sslmode=require/verify-*), which this build of the PostgreSQL backend does not speak yet; connect over a private network or a local socket proxy"
    )]
    Tls(String),
}

fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Cannot fail for a URL that has a password (it has a host).
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// The URL as it may be shown, with any password replaced by `***`. For messages about
/// a URL that did not even parse, only its scheme is shown.
pub fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => redact(&u),
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…"),
            None => "the database URL".to_owned(),
        },
    }
}

fn decode(s: &str) -> Result<String, ()> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ())
}

impl PgUrl {
    pub fn parse(raw: &str) -> Result<Self, PgUrlError> {
        let url = Url::parse(raw).map_err(|_| PgUrlError::Invalid(redacted(raw)))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(PgUrlError::Scheme);
        }
        let shown = redact(&url);
        let ambiguous = |what: String| PgUrlError::Ambiguous {
            url: shown.clone(),
            what,
        };
        if url.fragment().is_some() {
            return Err(ambiguous("a fragment".into()));
        }
        let host = match url.host_str() {
            Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']'),
            _ => return Err(PgUrlError::NoHost(shown)),
        };
        let user = decode(url.username()).map_err(|()| PgUrlError::Invalid(shown.clone()))?;
        if user.is_empty() {
            return Err(PgUrlError::NoUser(shown));
        }
        let path = url.path().strip_prefix('/').unwrap_or(url.path());
        if path.is_empty() {
            return Err(PgUrlError::NoDatabase(shown));
        }
        if path.contains('/') {
            return Err(ambiguous("more than one path segment".into()));
        }
        let database = decode(path).map_err(|()| PgUrlError::Invalid(shown.clone()))?;

        let mut config = tokio_postgres::Config::new();
        config.host(host).user(&user).dbname(&database);
        if let Some(port) = url.port() {
            config.port(port);
        }
        if let Some(password) = url.password() {
            let password = decode(password).map_err(|()| PgUrlError::Invalid(shown.clone()))?;
            config.password(password);
        }
        let mut pool_size = DEFAULT_POOL_SIZE;
        let mut seen = Vec::new();
        for (key, value) in url.query_pairs() {
            if seen.contains(&key) {
                return Err(ambiguous(format!("{key} twice")));
            }
            seen.push(key.clone());
            match key.as_ref() {
                "pool_max_size" => {
                    pool_size = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
                        .ok_or_else(|| {
                            ambiguous(format!("pool_max_size={value} (use 1 to {MAX_POOL_SIZE})"))
                        })?;
                }
                "connect_timeout" => {
                    let secs = value
                        .parse::<u64>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| ambiguous(format!("connect_timeout={value} (seconds)")))?;
                    config.connect_timeout(Duration::from_secs(secs));
                }
                "application_name" => {
                    config.application_name(value.as_ref());
                }
                "sslmode" => match value.as_ref() {
                    "disable" | "prefer" => {}
                    "require" | "verify-ca" | "verify-full" => {
                        return Err(PgUrlError::Tls(shown));
                    }
                    other => return Err(ambiguous(format!("sslmode={other}"))),
                },
                other => return Err(ambiguous(format!("the parameter {other}"))),
            }
        }
        // Without TLS support, "prefer" connects in the clear; say so by configuration
        // rather than by a failed upgrade attempt.
        config.ssl_mode(tokio_postgres::config::SslMode::Disable);
        Ok(Self {
            config,
            pool_size,
            redacted: shown,
        })
    }

    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    pub fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }
}

/// Shows the URL with its password replaced by `***`.
impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgUrl")
            .field("url", &self.redacted)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_url_is_accepted_with_the_default_pool() {
        let url = PgUrl::parse("postgres://tw:s3cret@db.internal:6432/tokenwarden").unwrap();
        assert_eq!(url.database(), "tokenwarden");
        assert_eq!(url.pool_size(), DEFAULT_POOL_SIZE);
        assert_eq!(url.config().get_ports(), &[6432]);
        assert_eq!(url.config().get_user(), Some("tw"));
        assert_eq!(url.config().get_password(), Some(&b"s3cret"[..]));
        let url = PgUrl::parse("postgresql://tw@127.0.0.1/tw?pool_max_size=4").unwrap();
        assert_eq!(url.pool_size(), 4);
    }

    #[test]
    fn the_password_never_shows() {
        let url = PgUrl::parse("postgres://tw:s3cret@db/tokenwarden").unwrap();
        assert_eq!(url.to_string(), "postgres://tw:***@db/tokenwarden");
        assert!(!format!("{url:?}").contains("s3cret"));
        for bad in [
            "postgres://tw:s3cret@db/",
            "postgres://tw:s3cret@db/tw?pool_max_size=0",
            "postgres://tw:s3cret@db/tw?sslmode=require",
            "postgres://tw:s3cret@db/tw?foo=bar",
            "postgres://tw:s3cret@db/tw#x",
            "postgres://tw:s3cret@db/a/b",
            "postgres://:s3cret@db/tw",
            "postgres://tw:s3cret@[::1/tw",
        ] {
            let e = PgUrl::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cret"), "{bad}: {e}");
        }
    }

    #[test]
    fn ambiguous_urls_are_refused() {
        for bad in [
            "postgres://tw@db",
            "postgres://tw@db/",
            "postgres://db/tw",
            "postgres:///tw",
            "postgres://tw@db/tw?pool_max_size=4&pool_max_size=8",
            "postgres://tw@db/tw?dbname=other",
            "postgres://tw@db/tw?sslmode=allow",
            "mysql://tw@db/tw",
            "postgres:tw",
        ] {
            assert!(PgUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
