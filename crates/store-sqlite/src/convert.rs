//! Conversions between domain values and SQLite columns, and error mapping.

use rusqlite::{Connection, ErrorCode, Savepoint};
use tokenwarden_store::StoreError;

pub(crate) use tokenwarden_store::convert::{ms, opt_ms};

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

/// A write's transaction: a savepoint in the writer's group commit (see `pool`).
pub(crate) fn savepoint(conn: &mut Connection) -> Result<Savepoint<'_>, StoreError> {
    conn.savepoint().map_err(db)
}
