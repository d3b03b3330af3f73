//! Conversions every backend shares: times are stored as Unix milliseconds (so rows and
//! audit hashes are the same bytes on each), and a stored value that no longer parses
//! is reported as corruption naming its column only.

use chrono::{DateTime, Utc};

use crate::error::StoreError;

pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn opt_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(ms)
}

pub fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms}")))
}

pub fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(time).transpose()
}

/// Parses a stored domain value, reporting corruption with the column name only.
pub fn parsed<T, E>(column: &str, r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|_| StoreError::Corrupt(format!("unparsable {column}")))
}
