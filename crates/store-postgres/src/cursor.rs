//! [`Cursor`] over a tokio-postgres row, and turning query results into records through
//! the store's shared mappers.

use std::error::Error;

use tokenwarden_store::rows::Cursor;
use tokenwarden_store::{StoreError, StoreResult};
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Type};

pub(crate) struct RowCursor<'a> {
    row: &'a Row,
    next: usize,
}

impl std::fmt::Debug for RowCursor<'_> {
    // A row holds ciphertexts and hashes: say only where the cursor is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowCursor")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl<'a> RowCursor<'a> {
    pub(crate) fn new(row: &'a Row) -> Self {
        Self { row, next: 0 }
    }

    /// The next column's index, moving past it.
    fn take(&mut self, column: &'static str) -> StoreResult<usize> {
        let i = self.next;
        self.next += 1;
        if i < self.row.len() {
            Ok(i)
        } else {
            Err(StoreError::Corrupt(format!("missing {column}")))
        }
    }

    fn get<T: FromSql<'a>>(&mut self, column: &'static str) -> StoreResult<Option<T>> {
        let i = self.take(column)?;
        self.row.try_get(i).map_err(|_| corrupt(column))
    }

    fn column_type(&self, i: usize) -> &Type {
        self.row.columns()[i].type_()
    }
}

fn corrupt(column: &'static str) -> StoreError {
    StoreError::Corrupt(format!("unreadable {column}"))
}

/// Any non-NULL value, unread: how [`Cursor::next_is_null`] looks at a column of any
/// type.
struct Present;

impl<'a> FromSql<'a> for Present {
    fn from_sql(_: &Type, _: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        Ok(Present)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl Cursor for RowCursor<'_> {
    fn text(&mut self, column: &'static str) -> StoreResult<String> {
        self.opt_text(column)?.ok_or_else(|| corrupt(column))
    }

    fn opt_text(&mut self, column: &'static str) -> StoreResult<Option<String>> {
        self.get(column)
    }

    fn bytes(&mut self, column: &'static str) -> StoreResult<Vec<u8>> {
        self.opt_bytes(column)?.ok_or_else(|| corrupt(column))
    }

    fn opt_bytes(&mut self, column: &'static str) -> StoreResult<Option<Vec<u8>>> {
        self.get(column)
    }

    fn int(&mut self, column: &'static str) -> StoreResult<i64> {
        self.opt_int(column)?.ok_or_else(|| corrupt(column))
    }

    // An integer may be INT2, INT4 or INT8 (a literal, a count, a BIGINT column); the
    // driver reads each only as its own width.
    fn opt_int(&mut self, column: &'static str) -> StoreResult<Option<i64>> {
        let i = self.take(column)?;
        let ty = self.column_type(i);
        let value = if *ty == Type::INT8 {
            self.row.try_get::<_, Option<i64>>(i)
        } else if *ty == Type::INT4 {
            self.row
                .try_get::<_, Option<i32>>(i)
                .map(|v| v.map(i64::from))
        } else if *ty == Type::INT2 {
            self.row
                .try_get::<_, Option<i16>>(i)
                .map(|v| v.map(i64::from))
        } else {
            return Err(corrupt(column));
        };
        value.map_err(|_| corrupt(column))
    }

    // BOOLEAN columns; an integer (SQLite's form, or a computed flag) counts when not 0.
    fn flag(&mut self, column: &'static str) -> StoreResult<bool> {
        if self.next < self.row.len() && *self.column_type(self.next) == Type::BOOL {
            return self.get::<bool>(column)?.ok_or_else(|| corrupt(column));
        }
        Ok(self.int(column)? != 0)
    }

    fn next_is_null(&mut self) -> StoreResult<bool> {
        if self.next >= self.row.len() {
            return Err(StoreError::Corrupt("missing column".into()));
        }
        let value: Option<Present> = self
            .row
            .try_get(self.next)
            .map_err(|_| StoreError::Corrupt("unreadable column".into()))?;
        Ok(value.is_none())
    }

    fn skip(&mut self, n: usize) {
        self.next += n;
    }
}

/// The row a query found, if any, through `map`.
pub(crate) fn one<T>(
    row: Option<Row>,
    map: impl FnOnce(&mut RowCursor<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    row.map(|row| map(&mut RowCursor::new(&row))).transpose()
}

/// Every row of a query, through `map`.
pub(crate) fn all<T>(
    rows: &[Row],
    mut map: impl FnMut(&mut RowCursor<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    rows.iter()
        .map(|row| map(&mut RowCursor::new(row)))
        .collect()
}
