//! Conversions between domain values and SQLite columns.

use chrono::{DateTime, Utc};
use rusqlite::ErrorCode;
use tokenwarden_store::StoreError;

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

/// Maps a rusqlite error, turning a uniqueness violation into a conflict on `what`.
pub(crate) fn sql_error(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == ErrorCode::ConstraintViolation
                && (f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) =>
        {
            StoreError::Conflict(what)
        }
        _ => StoreError::backend(e),
    }
}

pub(crate) fn db(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}
