//! Opening a store from a database URL, for the binary's commands (`serve`, `migrate`,
//! `audit verify`, `copy`): the URL's scheme picks the backend, its migrations run, and
//! no message ever shows the URL's password. Only the binary links every backend; the
//! HTTP gateway and the service layer see an `Arc<dyn Store>`.

use std::sync::Arc;

use tokenwarden_store::{Store, StoreError};
use tokenwarden_store_mysql::{MysqlStore, MysqlUrl};
use tokenwarden_store_postgres::{PgStore, PgUrl};
use tokenwarden_store_sqlite::{SqliteStore, SqliteUrl};

/// Why a database could not be opened. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("TOKENWARDEN_DATABASE_URL: {0}")]
    DatabaseUrl(String),
    #[error("could not open the database: {0}")]
    Database(#[source] StoreError),
}

/// Opens the store `url` names, applying its migrations.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, OpenError> {
    match Backend::of(url)? {
        Backend::Sqlite(parsed) => {
            let store = SqliteStore::open(&parsed).map_err(OpenError::Database)?;
            Ok(Arc::new(store))
        }
        Backend::Postgres(parsed) => {
            let store = PgStore::open(&parsed).await.map_err(OpenError::Database)?;
            Ok(Arc::new(store))
        }
        Backend::Mysql(parsed) => {
            let store = MysqlStore::open(&parsed)
                .await
                .map_err(OpenError::Database)?;
            Ok(Arc::new(store))
        }
    }
}

/// Applies the migrations of the database `url` names and nothing else
/// (`tokenwarden migrate`); returns a line for each migration applied.
pub async fn migrate_store(url: &str) -> Result<Vec<String>, OpenError> {
    match Backend::of(url)? {
        Backend::Sqlite(parsed) => SqliteStore::migrate(&parsed).map_err(OpenError::Database),
        Backend::Postgres(parsed) => {
            let applied = PgStore::migrate(&parsed)
                .await
                .map_err(OpenError::Database)?;
            Ok(applied
                .into_iter()
                .map(|m| format!("V{}__{}", m.version, m.name))
                .collect())
        }
        Backend::Mysql(parsed) => MysqlStore::migrate(&parsed)
            .await
            .map_err(OpenError::Database),
    }
}

/// `url` with any password replaced, for messages.
pub fn redacted(url: &str) -> String {
    tokenwarden_store_postgres::redacted(url)
}

/// A database URL, checked by the backend its scheme names.
enum Backend {
    Sqlite(SqliteUrl),
    Postgres(Box<PgUrl>),
    Mysql(Box<MysqlUrl>),
}

impl Backend {
    fn of(url: &str) -> Result<Self, OpenError> {
        let bad = |e: String| OpenError::DatabaseUrl(e);
        match url.split_once("://").map(|(s, _)| s) {
            Some("sqlite") => {
                let parsed = SqliteUrl::parse(url).map_err(|e| bad(e.to_string()))?;
                parsed.check_location().map_err(|e| bad(e.to_string()))?;
                Ok(Self::Sqlite(parsed))
            }
            Some("postgres" | "postgresql") => {
                let parsed = PgUrl::parse(url).map_err(|e| bad(e.to_string()))?;
                Ok(Self::Postgres(Box::new(parsed)))
            }
            Some("mysql") => {
                let parsed = MysqlUrl::parse(url).map_err(|e| bad(e.to_string()))?;
                Ok(Self::Mysql(Box::new(parsed)))
            }
            Some("mariadb") => Err(bad(
                "use mysql:// for MariaDB too (mysql://user@host:3306/database)".into(),
            )),
            _ => Err(bad(format!(
                "unrecognised database URL {}; use sqlite://path/to/file.db, postgres://user@host/database or mysql://user@host/database",
                redacted(url)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_scheme_is_refused_without_its_password() {
        let Err(e) = Backend::of("redis://user:hunter2@127.0.0.1/0") else {
            panic!("a redis URL was accepted");
        };
        let message = e.to_string();
        assert!(message.contains("unrecognised database URL"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn mariadb_is_pointed_at_mysql() {
        let Err(e) = Backend::of("mariadb://root@127.0.0.1/test") else {
            panic!("a mariadb URL was accepted");
        };
        assert!(e.to_string().contains("use mysql://"));
    }

    #[tokio::test]
    async fn opens_and_migrates_a_sqlite_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        assert!(!migrate_store(&url).await.unwrap().is_empty());
        assert!(migrate_store(&url).await.unwrap().is_empty());
        let store = open_store(&url).await.unwrap();
        store.ping().await.unwrap();
    }
}
