//! [`KeyStore`] on SQLite.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use tokenwarden_domain::{ApiKeyId, ConnectionId, VaultId};
use tokenwarden_store::keys::{API_KEY_COLUMNS, KEY_AUTH_COLUMNS, api_key, key_auth};
use tokenwarden_store::rows::{Columns, Dialect, key_scope_json};
use tokenwarden_store::{
    ApiKeyAuthRecord, ApiKeyRecord, KeyStore, KeyWithConnection, NewApiKey, NewAuditRecord,
    StoreResult,
};

use crate::SqliteStore;
use crate::audit::write_audit;
use crate::connections::connection_for_token;
use crate::convert::{db, ms, opt_ms, savepoint, sql_error};
use crate::cursor::{all, one};

pub(crate) fn insert_api_key(conn: &Connection, k: &NewApiKey) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO api_keys (id, vault_id, name, roles, scope, lookup_hash, slot, created_at, expires_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            k.id.as_str(),
            k.vault_id.as_str(),
            k.name.as_str(),
            k.roles.to_list(),
            key_scope_json(&k.scope)?,
            k.lookup_hash.as_bytes(),
            k.slot.as_bytes(),
            ms(k.created_at),
            opt_ms(k.expires_at),
            k.created_by,
        ],
    )
    .map_err(sql_error("api key"))?;
    Ok(())
}

fn api_key_auth_row(conn: &Connection, id: &ApiKeyId) -> StoreResult<Option<ApiKeyAuthRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM api_keys k WHERE k.id = ?1",
            Columns::select(Dialect::Sqlite, &[&KEY_AUTH_COLUMNS])
        )
    });
    let mut st = conn.prepare_cached(&SQL).map_err(db)?;
    one(&mut st, [id.as_str()], |c| key_auth(id, c))
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn create_api_key(&self, key: NewApiKey, audit: NewAuditRecord) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                insert_api_key(&tx, &key)?;
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn api_key_auth(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKeyAuthRecord>> {
        self.pool.read_now(|conn| api_key_auth_row(conn, id))
    }

    async fn api_key_auth_with_connection(
        &self,
        key: &ApiKeyId,
        connection: &ConnectionId,
    ) -> StoreResult<Option<KeyWithConnection>> {
        self.pool.read_now(|conn| {
            // One snapshot, and one round of SQLite's read locks instead of two.
            let tx = conn.transaction().map_err(db)?;
            let Some(key_row) = api_key_auth_row(&tx, key)? else {
                return Ok(None);
            };
            let row = connection_for_token(&tx, key_row.vault_id.as_str(), connection.as_str())?;
            Ok(Some((key_row, row)))
        })
    }

    async fn list_api_keys(&self, vault: &VaultId) -> StoreResult<Vec<ApiKeyRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM api_keys k WHERE k.vault_id = ?1 ORDER BY k.created_at, k.id",
                Columns::select(Dialect::Sqlite, &[&API_KEY_COLUMNS])
            )
        });
        let vault = vault.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                all(&mut st, [vault], |c| api_key(c))
            })
            .await
    }

    async fn revoke_api_key(
        &self,
        vault: &VaultId,
        id: &ApiKeyId,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let vault = vault.as_str().to_owned();
        let id = id.as_str().to_owned();
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let changed = tx
                    .execute(
                        "UPDATE api_keys SET revoked_at = ?1, slot = NULL, lookup_hash = NULL
                         WHERE id = ?2 AND vault_id = ?3 AND revoked_at IS NULL",
                        params![ms(at), id, vault],
                    )
                    .map_err(db)?;
                if changed == 1 {
                    write_audit(&tx, &audit)?;
                }
                tx.commit().map_err(db)?;
                Ok(changed == 1)
            })
            .await
    }

    async fn touch_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.pool
            .write_relaxed(move |conn| {
                conn.prepare_cached("UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2")
                    .and_then(|mut st| st.execute(params![ms(at), id]))
                    .map_err(db)?;
                Ok(())
            })
            .await
    }
}
