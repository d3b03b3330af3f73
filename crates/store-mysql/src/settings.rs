//! [`SettingsStore`] on MySQL.

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use tokenwarden_store::rows::Cursor;
use tokenwarden_store::{SettingsStore, StoreError, StoreResult};

use crate::MysqlStore;
use crate::convert::{db, params};
use crate::cursor::one;
use crate::pool::write_tx;

#[async_trait]
impl SettingsStore for MysqlStore {
    async fn ping(&self) -> StoreResult<()> {
        self.conn().await?.ping().await.map_err(db)
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        one(
            &mut self.conn().await?,
            "SELECT value FROM server_settings WHERE name = ?",
            params![name],
            |c| c.bytes("server_settings.value"),
        )
        .await
    }

    async fn init_setting(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        write_tx!(self, tx => {
            // A no-op on a duplicate, unlike INSERT IGNORE, which would hide other errors.
            tx.exec_drop(
                "INSERT INTO server_settings (name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE name = name",
                params![name, value],
            )
            .await
            .map_err(db)?;
            let stored: Option<Vec<u8>> = tx
                .exec_first("SELECT value FROM server_settings WHERE name = ?", params![name])
                .await
                .map_err(db)?;
            stored.ok_or_else(|| StoreError::Corrupt("server_settings row vanished".into()))?
        })
    }
}
