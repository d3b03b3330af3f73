//! The connection pool, and the few ways the aggregates use it: a pooled client, one
//! cached prepared statement run for a row or for all its rows.

use deadpool_postgres::{Manager, ManagerConfig, Object, RecyclingMethod};
use tokenwarden_store::StoreError;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::convert::{db, pool};
use crate::url::PgUrl;

/// A deadpool pool of tokio-postgres connections.
#[derive(Debug)]
pub(crate) struct Pool {
    pool: deadpool_postgres::Pool,
}

impl Pool {
    pub(crate) fn connect(url: &PgUrl) -> Result<Self, StoreError> {
        let manager = Manager::from_config(
            url.config().clone(),
            NoTls,
            ManagerConfig {
                // A broken connection shows as an error on its next query and is
                // dropped then; a probe query on every checkout would double the round
                // trips of a token read.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(url.pool_size())
            .build()
            .map_err(StoreError::backend)?;
        Ok(Self { pool })
    }

    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool)
    }

    /// Whether the database answers.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.simple_query("SELECT 1").await.map_err(db)?;
        Ok(())
    }

    /// One cached prepared statement on a pooled connection: at most one row.
    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql).await.map_err(db)?;
        c.query_opt(&st, params).await.map_err(db)
    }

    /// One cached prepared statement on a pooled connection: every row.
    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql).await.map_err(db)?;
        c.query(&st, params).await.map_err(db)
    }
}
