//! The PostgreSQL backend of the tokenwarden store, for several replicas behind a load
//! balancer.
//!
//! tokio-postgres on a deadpool pool (`?pool_max_size=N`, 16 by default), every
//! statement prepared once per connection and cached. Schema and semantics follow the
//! SQLite backend exactly: times are BIGINT Unix milliseconds, so `copy` between
//! backends is byte-exact and audit hashes are identical. What SQLite gets from its
//! single writer, this backend gets from the database: races are decided by single
//! conditional UPDATEs, and audit appends lock their chain's head row. Migrations are
//! embedded (refinery) and run under an advisory lock, so replicas may start at once.
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

use tokenwarden_store::StoreError;

pub use migrations::AppliedMigration;
pub use url::{DEFAULT_POOL_SIZE, PgUrl, PgUrlError, redacted};

use crate::migrations::migrate;
use crate::pool::Pool;

/// The PostgreSQL store: a pool of connections, each caching its prepared statements.
/// Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Applies pending migrations (under the migration lock), then opens the pool.
    pub async fn open(url: &PgUrl) -> Result<Self, StoreError> {
        migrate(url).await?;
        let pool = Pool::connect(url)?;
        // Fail at start, not on the first request, when the database does not answer.
        pool.ping().await?;
        Ok(Self { pool })
    }

    /// Applies pending migrations only and says which ran (`tokenwarden migrate`).
    pub async fn migrate(url: &PgUrl) -> Result<Vec<AppliedMigration>, StoreError> {
        migrate(url).await
    }
}
