//! Conversions between domain values and MySQL values, and error mapping.

use chrono::{DateTime, Utc};
use mysql_async::Row;
use mysql_async::prelude::FromValue;
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

/// Positional statement parameters.
macro_rules! params {
    ($($v:expr),* $(,)?) => {
        mysql_async::Params::Positional(vec![$(mysql_async::Value::from($v)),*])
    };
}
pub(crate) use params;

/// Reads a row's columns in order, so a mapper lines up with its column list.
pub(crate) struct Cols {
    row: Row,
    next: usize,
}

impl Cols {
    pub(crate) fn new(row: Row) -> Self {
        Self { row, next: 0 }
    }

    pub(crate) fn get<T: FromValue>(&mut self, column: &str) -> Result<T, StoreError> {
        let i = self.next;
        self.next += 1;
        match self.row.take_opt::<T, usize>(i) {
            Some(Ok(v)) => Ok(v),
            _ => Err(StoreError::Corrupt(format!("unreadable {column}"))),
        }
    }
}

const ER_DUP_ENTRY: u16 = 1062;
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_LOCK_DEADLOCK: u16 = 1213;
const ER_ROW_IS_REFERENCED_2: u16 = 1451;

fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(s) => Some(s.code),
        _ => None,
    }
}

pub(crate) fn db(e: mysql_async::Error) -> StoreError {
    StoreError::backend(e)
}

/// Maps a driver error, turning a uniqueness violation into a conflict on `what`.
pub(crate) fn sql_error(what: &'static str) -> impl Fn(mysql_async::Error) -> StoreError {
    move |e| match server_code(&e) {
        Some(ER_DUP_ENTRY) => StoreError::Conflict(what),
        _ => StoreError::backend(e),
    }
}

pub(crate) fn is_duplicate(e: &mysql_async::Error) -> bool {
    server_code(e) == Some(ER_DUP_ENTRY)
}

pub(crate) fn is_still_referenced(e: &mysql_async::Error) -> bool {
    server_code(e) == Some(ER_ROW_IS_REFERENCED_2)
}

/// A deadlock or lock wait timeout: InnoDB rolled the transaction (or statement) back,
/// and running it again is the documented remedy.
pub(crate) fn is_transient(e: &StoreError) -> bool {
    match e {
        StoreError::Backend(b) => b
            .downcast_ref::<mysql_async::Error>()
            .and_then(server_code)
            .is_some_and(|c| c == ER_LOCK_DEADLOCK || c == ER_LOCK_WAIT_TIMEOUT),
        _ => false,
    }
}
