//! [`Cursor`] over a rusqlite row, and running a statement into records through the
//! store's shared mappers.

use rusqlite::types::ValueRef;
use rusqlite::{Params, Row, Statement};
use tokenwarden_store::rows::Cursor;
use tokenwarden_store::{StoreError, StoreResult};

use crate::convert::db;

pub(crate) struct RowCursor<'a, 'r> {
    row: &'a Row<'r>,
    next: usize,
}

impl<'a, 'r> RowCursor<'a, 'r> {
    pub(crate) fn new(row: &'a Row<'r>) -> Self {
        Self { row, next: 0 }
    }

    fn value(&mut self, column: &'static str) -> StoreResult<ValueRef<'a>> {
        let i = self.next;
        self.next += 1;
        self.row
            .get_ref(i)
            .map_err(|_| StoreError::Corrupt(format!("missing {column}")))
    }
}

fn corrupt(column: &'static str) -> StoreError {
    StoreError::Corrupt(format!("unreadable {column}"))
}

impl Cursor for RowCursor<'_, '_> {
    fn text(&mut self, column: &'static str) -> StoreResult<String> {
        self.opt_text(column)?.ok_or_else(|| corrupt(column))
    }

    fn opt_text(&mut self, column: &'static str) -> StoreResult<Option<String>> {
        match self.value(column)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(|s| Some(s.to_owned()))
                .map_err(|_| corrupt(column)),
            _ => Err(corrupt(column)),
        }
    }

    fn bytes(&mut self, column: &'static str) -> StoreResult<Vec<u8>> {
        self.opt_bytes(column)?.ok_or_else(|| corrupt(column))
    }

    fn opt_bytes(&mut self, column: &'static str) -> StoreResult<Option<Vec<u8>>> {
        match self.value(column)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) => Ok(Some(b.to_vec())),
            _ => Err(corrupt(column)),
        }
    }

    fn int(&mut self, column: &'static str) -> StoreResult<i64> {
        self.opt_int(column)?.ok_or_else(|| corrupt(column))
    }

    fn opt_int(&mut self, column: &'static str) -> StoreResult<Option<i64>> {
        match self.value(column)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(i) => Ok(Some(i)),
            _ => Err(corrupt(column)),
        }
    }

    fn flag(&mut self, column: &'static str) -> StoreResult<bool> {
        Ok(self.int(column)? != 0)
    }

    fn next_is_null(&mut self) -> StoreResult<bool> {
        let value = self
            .row
            .get_ref(self.next)
            .map_err(|_| StoreError::Corrupt("missing column".into()))?;
        Ok(matches!(value, ValueRef::Null))
    }

    fn skip(&mut self, n: usize) {
        self.next += n;
    }
}

/// The first row `st` yields, through `map`.
pub(crate) fn one<T>(
    st: &mut Statement<'_>,
    params: impl Params,
    map: impl FnOnce(&mut RowCursor<'_, '_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut rows = st.query(params).map_err(db)?;
    match rows.next().map_err(db)? {
        Some(row) => map(&mut RowCursor::new(row)).map(Some),
        None => Ok(None),
    }
}

/// Every row `st` yields, through `map`.
pub(crate) fn all<T>(
    st: &mut Statement<'_>,
    params: impl Params,
    mut map: impl FnMut(&mut RowCursor<'_, '_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut rows = st.query(params).map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        out.push(map(&mut RowCursor::new(row))?);
    }
    Ok(out)
}
