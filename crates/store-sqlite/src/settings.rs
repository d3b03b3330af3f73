//! [`SettingsStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use tokenwarden_store::{SettingsStore, StoreResult};

use crate::SqliteStore;
use crate::convert::{db, savepoint};

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.pool
            .read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db))
            .await
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let name = name.to_owned();
        self.pool
            .read(move |conn| {
                conn.query_row(
                    "SELECT value FROM server_settings WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)
            })
            .await
    }

    async fn init_setting(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let name = name.to_owned();
        let value = value.to_vec();
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                tx.execute(
                    "INSERT INTO server_settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                    params![name, value],
                )
                .map_err(db)?;
                let stored: Vec<u8> = tx
                    .query_row(
                        "SELECT value FROM server_settings WHERE name = ?1",
                        [&name],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                tx.commit().map_err(db)?;
                Ok(stored)
            })
            .await
    }
}
