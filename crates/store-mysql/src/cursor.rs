//! [`Cursor`] over a `mysql_async` row, and running a query into records through the
//! store's shared mappers.

use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{Params, Row, Value};
use tokenwarden_store::rows::Cursor;
use tokenwarden_store::{StoreError, StoreResult};

use crate::convert::db;

/// Reads a row's columns in order, so a mapper lines up with its column list. It owns
/// the row and takes each value out of it, so bytes and text are moved, not copied.
pub(crate) struct RowCursor {
    row: Row,
    next: usize,
}

impl RowCursor {
    pub(crate) fn new(row: Row) -> Self {
        Self { row, next: 0 }
    }

    /// The next column as `T` (`Option<_>` for a nullable one), through the driver's own
    /// conversion: a value of another type, or a NULL where `T` allows none, is corrupt.
    fn take<T: FromValue>(&mut self, column: &'static str) -> StoreResult<T> {
        let i = self.next;
        self.next += 1;
        match self.row.take_opt::<T, usize>(i) {
            Some(Ok(v)) => Ok(v),
            _ => Err(corrupt(column)),
        }
    }
}

fn corrupt(column: &'static str) -> StoreError {
    StoreError::Corrupt(format!("unreadable {column}"))
}

impl Cursor for RowCursor {
    fn text(&mut self, column: &'static str) -> StoreResult<String> {
        self.take(column)
    }

    fn opt_text(&mut self, column: &'static str) -> StoreResult<Option<String>> {
        self.take(column)
    }

    fn bytes(&mut self, column: &'static str) -> StoreResult<Vec<u8>> {
        self.take(column)
    }

    fn opt_bytes(&mut self, column: &'static str) -> StoreResult<Option<Vec<u8>>> {
        self.take(column)
    }

    fn int(&mut self, column: &'static str) -> StoreResult<i64> {
        self.take(column)
    }

    fn opt_int(&mut self, column: &'static str) -> StoreResult<Option<i64>> {
        self.take(column)
    }

    fn flag(&mut self, column: &'static str) -> StoreResult<bool> {
        self.take(column)
    }

    fn next_is_null(&mut self) -> StoreResult<bool> {
        match self.row.as_ref(self.next) {
            Some(value) => Ok(*value == Value::NULL),
            None => Err(StoreError::Corrupt("missing column".into())),
        }
    }

    fn skip(&mut self, n: usize) {
        self.next += n;
    }
}

/// The first row `sql` yields, through `map`.
pub(crate) async fn one<T>(
    q: &mut impl Queryable,
    sql: &str,
    params: Params,
    map: impl FnOnce(&mut RowCursor) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let row: Option<Row> = q.exec_first(sql, params).await.map_err(db)?;
    row.map(|row| map(&mut RowCursor::new(row))).transpose()
}

/// Every row `sql` yields, through `map`.
pub(crate) async fn all<T>(
    q: &mut impl Queryable,
    sql: &str,
    params: Params,
    mut map: impl FnMut(&mut RowCursor) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let rows: Vec<Row> = q.exec(sql, params).await.map_err(db)?;
    rows.into_iter()
        .map(|row| map(&mut RowCursor::new(row)))
        .collect()
}
