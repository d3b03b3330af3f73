//! Conversions between domain values and MySQL values, and error mapping.

use tokenwarden_store::StoreError;

pub(crate) use tokenwarden_store::convert::{ms, opt_ms};

/// Positional statement parameters.
macro_rules! params {
    ($($v:expr),* $(,)?) => {
        mysql_async::Params::Positional(vec![$(mysql_async::Value::from($v)),*])
    };
}
pub(crate) use params;

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
