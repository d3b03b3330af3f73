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

mod audit;
mod convert;
mod copy;
mod migrate;
mod oauth;
mod rows;
mod store;
mod url;

pub use migrate::AppliedMigration;
pub use store::PgStore;
pub use url::{DEFAULT_POOL_SIZE, PgUrl, PgUrlError, redacted};
