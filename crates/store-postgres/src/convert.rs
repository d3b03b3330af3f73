//! Conversions between domain values and PostgreSQL columns, and error mapping.

use chrono::{DateTime, Utc};
use tokenwarden_store::StoreError;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::FromSql;

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

pub(crate) fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms}")))
}

pub(crate) fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(time).transpose()
}

/// Parses a stored domain value, reporting corruption with the column name only.
pub(crate) fn parsed<T, E>(column: &str, r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|_| StoreError::Corrupt(format!("unparsable {column}")))
}

/// Column `idx` of `row`; a type mismatch is a corrupt row, not a database failure.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, StoreError> {
    row.try_get(idx)
        .map_err(|_| StoreError::Corrupt(format!("column {idx} has an unexpected type")))
}

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
