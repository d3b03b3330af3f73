//! A fresh database per test app, on the backend `TOKENWARDEN_TEST_DATABASE_URL`
//! names (a temporary SQLite file when it is unset). Server databases are created as
//! `tw_<random>` beside the one the URL names and dropped when the last handle goes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use rand::Rng;

/// The variable that picks the backend of the HTTP suite.
pub const DATABASE_URL_ENV: &str = "TOKENWARDEN_TEST_DATABASE_URL";

/// Which kind of database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

/// One test's database; dropping it removes it.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Sqlite {
        // Held so the directory lives as long as the database.
        _dir: Arc<tempfile::TempDir>,
        path: PathBuf,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
    Mysql {
        admin_url: String,
        name: String,
    },
}

fn random_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let suffix: String = (0..16)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("tw_{suffix}")
}

/// `base` with its database (the URL path) replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let mut url = url::Url::parse(base).expect("a valid database URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

async fn my_admin(url: &str) -> mysql_async::Conn {
    mysql_async::Conn::from_url(url)
        .await
        .expect("connect to the MySQL test server")
}

async fn pg_admin(admin_url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .expect("connect to the PostgreSQL test server");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

impl TestDatabase {
    /// A fresh database on the backend of `TOKENWARDEN_TEST_DATABASE_URL`.
    pub async fn from_env() -> Self {
        match std::env::var(DATABASE_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => Self::create(&url).await,
            _ => Self::sqlite_in(Arc::new(tempfile::tempdir().expect("temp dir"))),
        }
    }

    /// A SQLite file in `dir` (reused when a test restarts a server on the same dir).
    pub fn sqlite_in(dir: Arc<tempfile::TempDir>) -> Self {
        let path = dir.path().join("tokenwarden.db");
        Self {
            url: format!("sqlite://{}", path.display()),
            kind: Kind::Sqlite { _dir: dir, path },
        }
    }

    /// A fresh database on the server `base_url` names (the database in the URL is
    /// only where to connect to create it).
    pub async fn create(base_url: &str) -> Self {
        let scheme = base_url.split_once("://").map(|(s, _)| s);
        match scheme {
            Some("postgres" | "postgresql") => {
                let name = random_name();
                let admin = pg_admin(base_url).await;
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("CREATE DATABASE");
                Self {
                    url: with_database(base_url, &name),
                    kind: Kind::Postgres {
                        admin_url: base_url.to_owned(),
                        name,
                    },
                }
            }
            Some("mysql") => {
                let name = random_name();
                let mut admin = my_admin(base_url).await;
                admin
                    .query_drop(format!(
                        "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                    ))
                    .await
                    .expect("CREATE DATABASE");
                let _ = admin.disconnect().await;
                Self {
                    url: with_database(base_url, &name),
                    kind: Kind::Mysql {
                        admin_url: base_url.to_owned(),
                        name,
                    },
                }
            }
            Some("sqlite") | None | Some(_) => {
                panic!("{DATABASE_URL_ENV} must be a postgres:// (or mysql://) server URL")
            }
        }
    }

    /// The URL the server under test opens.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        match self.kind {
            Kind::Sqlite { .. } => Backend::Sqlite,
            Kind::Postgres { .. } => Backend::Postgres,
            Kind::Mysql { .. } => Backend::Mysql,
        }
    }

    /// The SQLite file, for tests that look at the file itself (`None` elsewhere).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Sqlite { path, .. } => Some(path),
            Kind::Postgres { .. } | Kind::Mysql { .. } => None,
        }
    }

    /// The first column of the first row of `sql` as an integer (`None`: no row).
    /// Parameters are `$1`, `$2`, ... text values; the SQL must mean the same on every
    /// backend (counts, `IS NULL` tests in a WHERE clause, integer columns).
    pub async fn query_i64(&self, sql: &str, params: &[&str]) -> Option<i64> {
        match &self.kind {
            Kind::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .expect("open the SQLite file");
                let mut st = conn.prepare(sql).expect("prepare");
                let mut rows = st
                    .query(rusqlite::params_from_iter(params.iter()))
                    .expect("query");
                rows.next()
                    .expect("row")
                    .map(|r| r.get::<_, i64>(0).expect("an integer"))
            }
            Kind::Postgres { .. } => {
                let client = pg_admin(&self.url).await;
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                client
                    .query_opt(sql, &params)
                    .await
                    .expect("query")
                    .map(|r| r.get::<_, i64>(0))
            }
            Kind::Mysql { .. } => {
                let (sql, params) = question_marks(sql, params);
                let mut conn = my_admin(&self.url).await;
                let value: Option<Option<i64>> = conn
                    .exec_first(sql, mysql_async::Params::Positional(params))
                    .await
                    .expect("query");
                let _ = conn.disconnect().await;
                value.map(|v| v.expect("an integer"))
            }
        }
    }
}

/// A `$1`-style statement as MySQL takes it: each `$n` becomes `?`, and the parameters
/// are lined up in the order the placeholders appear (so one may be used twice).
fn question_marks(sql: &str, params: &[&str]) -> (String, Vec<mysql_async::Value>) {
    let mut out = String::with_capacity(sql.len());
    let mut values = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut n = 0usize;
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n * 10 + d as usize;
                chars.next();
            }
            let value = params
                .get(n.wrapping_sub(1))
                .expect("a parameter for each $n");
            values.push(mysql_async::Value::from(*value));
            out.push('?');
        } else {
            out.push(c);
        }
    }
    (out, values)
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name, mysql) = match &self.kind {
            Kind::Sqlite { .. } => return,
            Kind::Postgres { admin_url, name } => (admin_url.clone(), name.clone(), false),
            Kind::Mysql { admin_url, name } => (admin_url.clone(), name.clone(), true),
        };
        let shown = name.clone();
        // Drop may run inside a runtime (which cannot block on another future) or
        // outside one: a thread of its own with its own runtime works in both, and
        // joining it means the database is gone before the test ends.
        let dropper = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            rt.block_on(async {
                if mysql {
                    let mut admin = my_admin(&admin_url).await;
                    // As PostgreSQL's `WITH (FORCE)`: a test's runtime that ended while
                    // its server was mid-transaction can leave a session holding a
                    // metadata lock, which would block the DROP for ever.
                    let sessions: Vec<u64> = admin
                        .exec(
                            "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
                            (name.clone(),),
                        )
                        .await
                        .unwrap_or_default();
                    for id in sessions {
                        let _ = admin.query_drop(format!("KILL {id}")).await;
                    }
                    let dropped = admin
                        .query_drop(format!("DROP DATABASE IF EXISTS {name}"))
                        .await;
                    let _ = admin.disconnect().await;
                    dropped.map_err(|e| e.to_string())
                } else {
                    let admin = pg_admin(&admin_url).await;
                    admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .map_err(|e| e.to_string())
                }
            })
        });
        if let Ok(Err(e)) = dropper.join() {
            eprintln!("could not drop test database {shown}: {e}");
        }
    }
}
