//! Conversions between domain values and PostgreSQL columns, and error mapping.

use tokenwarden_store::StoreError;
use tokio_postgres::error::SqlState;

pub(crate) use tokenwarden_store::convert::{ms, opt_ms};

/// Maps a driver error, turning a uniqueness violation into a conflict on `what`
/// (as SQLite's backend does for its UNIQUE and PRIMARY KEY constraints).
pub(crate) fn sql_error(what: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            StoreError::Conflict(what)
        } else {
            StoreError::backend(e)
        }
    }
}

pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::backend(e)
}

pub(crate) fn pool(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::backend(e)
}

/// Row counts fit `u64`; the trait speaks of "one row changed".
pub(crate) fn changed_one(n: u64) -> bool {
    n == 1
}
