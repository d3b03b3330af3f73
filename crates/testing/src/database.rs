//! A fresh database per test app, on the backend `TOKENWARDEN_TEST_DATABASE_URL`
//! names (a temporary SQLite file when it is unset). Server databases are created as
//! `tw_<random>` beside the one the URL names and dropped when the last handle goes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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
            // MySQL / MariaDB: filled in by the MySQL backend's change.
            Some("mysql" | "mariadb") => {
                panic!("the MySQL test database is not available in this build yet")
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
        }
    }

    /// The SQLite file, for tests that look at the file itself (`None` elsewhere).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Sqlite { path, .. } => Some(path),
            Kind::Postgres { .. } => None,
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
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Kind::Postgres { admin_url, name } = &self.kind {
            let (admin_url, name, shown) = (admin_url.clone(), name.clone(), name.clone());
            // Drop may run inside a runtime (which cannot block on another future) or
            // outside one: a thread of its own with its own runtime works in both, and
            // joining it means the database is gone before the test ends.
            let dropper = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to drop the test database");
                rt.block_on(async {
                    let admin = pg_admin(&admin_url).await;
                    admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                })
            });
            if let Ok(Err(e)) = dropper.join() {
                eprintln!("could not drop test database {shown}: {e}");
            }
        }
    }
}
