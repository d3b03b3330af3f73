//! [`CopyStore`] on PostgreSQL: raw row paging for `tokenwarden copy`, rows moved as
//! stored. Booleans travel as the integers 0 and 1 (SQLite's form); everything else
//! maps one to one.

use std::error::Error;

use async_trait::async_trait;
use bytes::BytesMut;
use deadpool_postgres::GenericClient;
use tokenwarden_store::copy::{CopyStore, CopyTable, RawRow, RawValue, insert_sql, page_sql};
use tokenwarden_store::rows::Cursor;
use tokenwarden_store::{StoreError, StoreResult};
use tokio_postgres::Row;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::PgStore;
use crate::convert::db;
use crate::cursor::RowCursor;

#[async_trait]
impl CopyStore for PgStore {
    async fn is_empty(&self) -> StoreResult<bool> {
        is_empty(self).await
    }

    async fn copy_page(
        &self,
        table: &'static CopyTable,
        after: Option<RawRow>,
        limit: u32,
    ) -> StoreResult<Vec<RawRow>> {
        page(self, table, after.as_ref(), limit).await
    }

    async fn copy_insert(&self, table: &'static CopyTable, rows: Vec<RawRow>) -> StoreResult<()> {
        insert(self, table, &rows).await
    }

    async fn copy_finish(&self) -> StoreResult<()> {
        finish(self).await
    }
}

/// A [`RawValue`] bound to whatever type its column has.
#[derive(Debug)]
struct Raw<'a>(&'a RawValue);

impl ToSql for Raw<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self.0 {
            RawValue::Null => Ok(IsNull::Yes),
            RawValue::Int(i) if *ty == Type::BOOL => (*i != 0).to_sql(ty, out),
            RawValue::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            RawValue::Int(i) => i.to_sql(ty, out),
            RawValue::Text(t) => t.as_str().to_sql(ty, out),
            RawValue::Bytes(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [Type::BOOL, Type::INT4, Type::INT8, Type::TEXT, Type::BYTEA].contains(ty)
    }

    to_sql_checked!();
}

fn value(row: &Row, i: usize, table: &str) -> Result<RawValue, StoreError> {
    let corrupt = |_| StoreError::Corrupt(format!("{table}: column {i}"));
    let ty = row.columns()[i].type_().clone();
    let v = if ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)
            .map_err(corrupt)?
            .map(|b| RawValue::Int(i64::from(b)))
    } else if ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)
            .map_err(corrupt)?
            .map(RawValue::Int)
    } else if ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)
            .map_err(corrupt)?
            .map(|n| RawValue::Int(i64::from(n)))
    } else if ty == Type::TEXT {
        row.try_get::<_, Option<String>>(i)
            .map_err(corrupt)?
            .map(RawValue::Text)
    } else if ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i)
            .map_err(corrupt)?
            .map(RawValue::Bytes)
    } else {
        return Err(StoreError::Corrupt(format!(
            "{table}: column {i} has type {ty}"
        )));
    };
    Ok(v.unwrap_or(RawValue::Null))
}

async fn is_empty(s: &PgStore) -> Result<bool, StoreError> {
    let c = s.pool.client().await?;
    let row = c
        .query_one(
            "SELECT (SELECT count(*) FROM server_settings) + (SELECT count(*) FROM accounts)
                  + (SELECT count(*) FROM vaults) + (SELECT count(*) FROM audit_log)",
            &[],
        )
        .await
        .map_err(db)?;
    let n = RowCursor::new(&row).int("count")?;
    Ok(n == 0)
}

async fn page(
    s: &PgStore,
    table: &CopyTable,
    after: Option<&RawRow>,
    limit: u32,
) -> Result<Vec<RawRow>, StoreError> {
    let c = s.pool.client().await?;
    let st = c
        .prepare_cached(&page_sql(table, after.is_none(), true, '"'))
        .await
        .map_err(db)?;
    let keys: Vec<Raw<'_>> = after
        .map(|row| row[..table.key].iter().map(Raw).collect())
        .unwrap_or_default();
    let limit = i64::from(limit);
    let mut params: Vec<&(dyn ToSql + Sync)> =
        keys.iter().map(|k| k as &(dyn ToSql + Sync)).collect();
    params.push(&limit);
    let rows = c.query(&st, &params).await.map_err(db)?;
    rows.iter()
        .map(|row| {
            (0..table.columns.len())
                .map(|i| value(row, i, table.name))
                .collect()
        })
        .collect()
}

async fn insert(s: &PgStore, table: &CopyTable, rows: &[RawRow]) -> Result<(), StoreError> {
    let mut c = s.pool.client().await?;
    let tx = c.transaction().await.map_err(db)?;
    let st = tx
        .prepare_cached(&insert_sql(table, true, '"'))
        .await
        .map_err(db)?;
    for row in rows {
        let values: Vec<Raw<'_>> = row.iter().map(Raw).collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        tx.execute(&st, &params).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

/// Moves the audit log's sequence past the copied records, so the next append does
/// not reuse a `seq`.
async fn finish(s: &PgStore) -> Result<(), StoreError> {
    let c = s.pool.client().await?;
    c.execute(
        "SELECT setval(pg_get_serial_sequence('audit_log', 'seq'), coalesce(max(seq), 0) + 1, false) FROM audit_log",
        &[],
    )
    .await
    .map_err(db)?;
    Ok(())
}
