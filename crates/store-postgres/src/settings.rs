//! [`SettingsStore`] on PostgreSQL.

use async_trait::async_trait;
use tokenwarden_store::rows::Cursor;
use tokenwarden_store::{SettingsStore, StoreResult};

use crate::PgStore;
use crate::convert::db;
use crate::cursor::{RowCursor, one};

#[async_trait]
impl SettingsStore for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        self.pool.ping().await
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = self
            .pool
            .query_opt(
                "SELECT value FROM server_settings WHERE name = $1",
                &[&name],
            )
            .await?;
        one(row, |c| c.bytes("server_settings.value"))
    }

    async fn init_setting(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        tx.execute(
            "INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &value],
        )
        .await
        .map_err(db)?;
        // A fresh statement snapshot: sees the row of a racing replica that won.
        let row = tx
            .query_one(
                "SELECT value FROM server_settings WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(db)?;
        let stored = RowCursor::new(&row).bytes("server_settings.value")?;
        tx.commit().await.map_err(db)?;
        Ok(stored)
    }
}
