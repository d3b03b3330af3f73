//! The MySQL/MariaDB backend of the tokenwarden store, for several replicas sharing one
//! database.
//!
//! Driver: `mysql_async`, pooled, with every statement prepared once per connection and
//! kept in its statement cache. It was chosen over sqlx because sqlx's facade crate
//! cannot sit in one dependency graph with rusqlite (both reach for `libsqlite3-sys`,
//! even with sqlx's SQLite driver off), and because refinery, the migration runner,
//! drives `mysql_async` directly. Measured on the 2-core test machine against MariaDB
//! 10.11 on loopback (release build, shared with other work): `api_key_auth` takes about
//! 30 µs a read one after another and serves about 29,000 reads/s from 16 tasks;
//! `connection_for_token` (a four-table join) about 66 µs.
//!
//! Cross-process safety rests on the database alone: refresh leases, the fenced token
//! write, `begin_exchange` and `spend_connect_link` are single conditional UPDATEs; the
//! audit chain's head row is locked (`SELECT ... FOR UPDATE`) by each append; write
//! transactions run at READ COMMITTED and are re-run a bounded number of times when
//! InnoDB reports a deadlock or a lock wait timeout. Times are BIGINT Unix milliseconds
//! and identifier columns `utf8mb4_bin`, so rows and audit hashes match SQLite's.
//!
//! Tested on MariaDB 10.11; the SQL avoids MariaDB-only syntax (no `RETURNING`, no
//! `INSERT ... ON CONFLICT`) and needs MySQL 8.0.16 or later for enforced CHECKs.
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

use mysql_async::Pool;
use tokenwarden_store::StoreError;

pub use url::{DEFAULT_POOL_MAX, MysqlUrl, MysqlUrlError, redact};

use crate::convert::db;

/// The MySQL store: a connection pool. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MysqlStore {
    pool: Pool,
}

impl MysqlStore {
    /// Connects to the database at `url` and applies the migrations it lacks.
    pub async fn open(url: &MysqlUrl) -> Result<Self, StoreError> {
        let pool = Pool::new(url.opts().clone());
        if let Err(e) = migrations::run(&pool).await {
            let _ = pool.disconnect().await;
            return Err(e);
        }
        tracing::info!(database = url.redacted(), "mysql store open");
        Ok(Self { pool })
    }

    /// Applies the migrations the database at `url` lacks, and nothing else; returns the
    /// names of those it applied (empty when it was up to date).
    pub async fn migrate(url: &MysqlUrl) -> Result<Vec<String>, StoreError> {
        let pool = Pool::new(url.opts().clone());
        let applied = migrations::run(&pool).await;
        let _ = pool.disconnect().await;
        applied
    }

    /// Closes every connection (the pool closes them on drop too, less politely).
    pub async fn close(self) -> Result<(), StoreError> {
        self.pool.disconnect().await.map_err(db)
    }
}
