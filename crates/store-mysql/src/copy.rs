//! [`CopyStore`] on MySQL: raw row paging for `tokenwarden copy`.

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Row, Transaction, Value};
use tokenwarden_store::copy::{CopyStore, CopyTable, RawRow, RawValue, insert_sql, page_sql};
use tokenwarden_store::{StoreError, StoreResult};

use crate::MysqlStore;
use crate::convert::db;
use crate::pool::write_tx;

/// The character set MySQL reports for binary columns (BLOB, VARBINARY): their values
/// are bytes, every other string column's are text.
const BINARY_CHARSET: u16 = 63;

#[async_trait]
impl CopyStore for MysqlStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        is_empty(&mut self.conn().await?).await
    }

    async fn copy_page(
        &self,
        table: &'static CopyTable,
        after: Option<RawRow>,
        limit: u32,
    ) -> StoreResult<Vec<RawRow>> {
        page(&mut self.conn().await?, table, after.as_ref(), limit).await
    }

    async fn copy_insert(&self, table: &'static CopyTable, rows: Vec<RawRow>) -> StoreResult<()> {
        write_tx!(self, tx => {
            insert(&mut tx, table, &rows).await?;
        })
    }

    async fn copy_finish(&self) -> StoreResult<()> {
        // InnoDB moves an AUTO_INCREMENT counter past any value inserted explicitly, so
        // the copied audit_log.seq values need nothing more.
        Ok(())
    }
}

fn to_sql(v: &RawValue) -> Value {
    match v {
        RawValue::Null => Value::NULL,
        RawValue::Int(i) => Value::Int(*i),
        RawValue::Text(t) => Value::Bytes(t.as_bytes().to_vec()),
        RawValue::Bytes(b) => Value::Bytes(b.clone()),
    }
}

fn raw_row(table: &CopyTable, row: Row) -> Result<RawRow, StoreError> {
    let binary: Vec<bool> = row
        .columns_ref()
        .iter()
        .map(|c| c.character_set() == BINARY_CHARSET)
        .collect();
    let corrupt = |what: &str| StoreError::Corrupt(format!("{}: {what}", table.name));
    row.unwrap()
        .into_iter()
        .zip(binary)
        .map(|(value, binary)| match value {
            Value::NULL => Ok(RawValue::Null),
            Value::Int(n) => Ok(RawValue::Int(n)),
            Value::UInt(n) => i64::try_from(n)
                .map(RawValue::Int)
                .map_err(|_| corrupt("an integer out of range")),
            Value::Bytes(b) if binary => Ok(RawValue::Bytes(b)),
            Value::Bytes(b) => String::from_utf8(b)
                .map(RawValue::Text)
                .map_err(|_| corrupt("text that is not UTF-8")),
            _ => Err(corrupt("a value of an unexpected type")),
        })
        .collect()
}

async fn is_empty(conn: &mut Conn) -> Result<bool, StoreError> {
    let n: Option<i64> = conn
        .exec_first(
            "SELECT (SELECT count(*) FROM server_settings) + (SELECT count(*) FROM accounts)
                  + (SELECT count(*) FROM vaults) + (SELECT count(*) FROM audit_log)",
            (),
        )
        .await
        .map_err(db)?;
    Ok(n == Some(0))
}

async fn page(
    conn: &mut Conn,
    table: &CopyTable,
    after: Option<&RawRow>,
    limit: u32,
) -> Result<Vec<RawRow>, StoreError> {
    let sql = page_sql(table, after.is_none(), false, '`');
    let mut params: Vec<Value> = after
        .map(|row| row[..table.key].iter().map(to_sql).collect())
        .unwrap_or_default();
    params.push(Value::from(limit));
    let rows: Vec<Row> = conn
        .exec(sql, Params::Positional(params))
        .await
        .map_err(db)?;
    rows.into_iter().map(|r| raw_row(table, r)).collect()
}

async fn insert(
    tx: &mut Transaction<'static>,
    table: &CopyTable,
    rows: &[RawRow],
) -> Result<(), StoreError> {
    let sql = insert_sql(table, false, '`');
    for row in rows {
        let values: Vec<Value> = row.iter().map(to_sql).collect();
        tx.exec_drop(sql.as_str(), Params::Positional(values))
            .await
            .map_err(db)?;
    }
    Ok(())
}
