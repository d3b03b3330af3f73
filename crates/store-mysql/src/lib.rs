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

mod audit;
mod convert;
mod copy;
mod migrations;
mod oauth;
mod rows;
mod store;
mod url;

pub use store::MysqlStore;
pub use url::{DEFAULT_POOL_MAX, MysqlUrl, MysqlUrlError, redact};
