//! The SQLite backend of the tokenwarden store: the embedded default.
//!
//! rusqlite on a small set of dedicated threads, one connection each: a single writer
//! (so this process's own writes never contend for SQLite's write lock) and a few
//! readers (WAL lets them run beside the writer). Measured on the target machine, a
//! point read this way runs about twice as fast as through sqlx, and bounding the
//! threads matters: tokio's default blocking pool of 512 threads halved throughput.
//!
//! One file per aggregate implements that aggregate's store trait; rows become records
//! through the store crate's mappers over [`cursor::RowCursor`].

mod accounts;
mod apps;
mod audit;
mod connect;
mod connections;
mod convert;
mod copy;
mod cursor;
mod keys;
mod migrations;
mod pool;
mod settings;
mod url;
mod vaults;
mod webhooks;

use std::path::Path;

use tokenwarden_store::StoreError;

pub use url::{SqliteUrl, SqliteUrlError};

use crate::pool::Pool;

/// The SQLite store. Cheap to share behind an `Arc`; dropping the last one stops its
/// threads.
#[derive(Debug)]
pub struct SqliteStore {
    pool: Pool,
}

const READERS: usize = 4;

impl SqliteStore {
    /// Opens the database at `url`, creating the file if needed and applying migrations.
    pub fn open(url: &SqliteUrl) -> Result<Self, StoreError> {
        url.check_location()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Self::open_path(url.path())
    }

    fn open_path(path: &Path) -> Result<Self, StoreError> {
        let pool = Pool::open(path, READERS, |conn| migrations::apply(conn).map(drop))?;
        Ok(Self { pool })
    }

    /// Applies pending migrations only (`tokenwarden migrate`); returns the names of
    /// those applied. The writer's first transaction takes SQLite's write lock, so a
    /// server starting at the same moment waits rather than migrating twice.
    pub fn migrate(url: &SqliteUrl) -> Result<Vec<String>, StoreError> {
        url.check_location()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut applied = Vec::new();
        drop(Pool::open(url.path(), 1, |conn| {
            applied = migrations::apply(conn)?;
            Ok(())
        })?);
        Ok(applied.into_iter().map(str::to_owned).collect())
    }
}
