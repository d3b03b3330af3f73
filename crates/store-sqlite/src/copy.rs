//! [`CopyStore`] on SQLite: raw row paging for `tokenwarden copy`.

use async_trait::async_trait;
use rusqlite::Connection;
use rusqlite::types::{Value, ValueRef};
use tokenwarden_store::copy::{CopyStore, CopyTable, RawRow, RawValue, insert_sql, page_sql};
use tokenwarden_store::{StoreError, StoreResult};

use crate::SqliteStore;
use crate::convert::db;

#[async_trait]
impl CopyStore for SqliteStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        self.pool.read(is_empty).await
    }

    async fn copy_page(
        &self,
        table: &'static CopyTable,
        after: Option<RawRow>,
        limit: u32,
    ) -> StoreResult<Vec<RawRow>> {
        self.pool
            .read(move |c| page(c, table, after.as_ref(), limit))
            .await
    }

    async fn copy_insert(&self, table: &'static CopyTable, rows: Vec<RawRow>) -> StoreResult<()> {
        self.pool.write(move |c| insert(c, table, &rows)).await
    }

    async fn copy_finish(&self) -> StoreResult<()> {
        Ok(())
    }
}

fn to_sql(v: &RawValue) -> Value {
    match v {
        RawValue::Null => Value::Null,
        RawValue::Int(i) => Value::Integer(*i),
        RawValue::Text(t) => Value::Text(t.clone()),
        RawValue::Bytes(b) => Value::Blob(b.clone()),
    }
}

fn is_empty(conn: &mut Connection) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT (SELECT count(*) FROM server_settings) + (SELECT count(*) FROM accounts)
              + (SELECT count(*) FROM vaults) + (SELECT count(*) FROM audit_log)",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n == 0)
    .map_err(db)
}

fn page(
    conn: &mut Connection,
    table: &CopyTable,
    after: Option<&RawRow>,
    limit: u32,
) -> Result<Vec<RawRow>, StoreError> {
    let sql = page_sql(table, after.is_none(), false, '"');
    let mut params: Vec<Value> = after
        .map(|row| row[..table.key].iter().map(to_sql).collect())
        .unwrap_or_default();
    params.push(Value::Integer(i64::from(limit)));
    let mut st = conn.prepare_cached(&sql).map_err(db)?;
    let mut rows = st
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(db)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        let mut values = Vec::with_capacity(table.columns.len());
        for i in 0..table.columns.len() {
            values.push(match row.get_ref(i).map_err(db)? {
                ValueRef::Null => RawValue::Null,
                ValueRef::Integer(n) => RawValue::Int(n),
                ValueRef::Text(t) => RawValue::Text(
                    String::from_utf8(t.to_vec())
                        .map_err(|_| StoreError::Corrupt(format!("{}: text", table.name)))?,
                ),
                ValueRef::Blob(b) => RawValue::Bytes(b.to_vec()),
                ValueRef::Real(_) => {
                    return Err(StoreError::Corrupt(format!(
                        "{}: a real number",
                        table.name
                    )));
                }
            });
        }
        out.push(values);
    }
    Ok(out)
}

fn insert(conn: &mut Connection, table: &CopyTable, rows: &[RawRow]) -> Result<(), StoreError> {
    let tx = conn.savepoint().map_err(db)?;
    {
        let mut st = tx
            .prepare_cached(&insert_sql(table, false, '"'))
            .map_err(db)?;
        for row in rows {
            let values: Vec<Value> = row.iter().map(to_sql).collect();
            st.execute(rusqlite::params_from_iter(values.iter()))
                .map_err(db)?;
        }
    }
    tx.commit().map_err(db)
}
