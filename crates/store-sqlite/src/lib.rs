//! The SQLite backend of the tokenwarden store: the embedded default.
//!
//! rusqlite on a small set of dedicated threads, one connection each: a single writer
//! (so this process's own writes never contend for SQLite's write lock) and a few
//! readers (WAL lets them run beside the writer). Measured on the target machine, a
//! point read this way runs about twice as fast as through sqlx, and bounding the
//! threads matters: tokio's default blocking pool of 512 threads halved throughput.

mod audit;
mod convert;
mod copy;
mod migrations;
mod oauth;
mod pool;
mod rows;
mod store;
mod url;

pub use store::SqliteStore;
pub use url::{SqliteUrl, SqliteUrlError};
