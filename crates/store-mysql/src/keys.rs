//! [`KeyStore`] on MySQL, with the token call's one-query key-and-connection read.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mysql_async::Transaction;
use mysql_async::prelude::Queryable;
use tokenwarden_domain::{ApiKeyId, ConnectionId, VaultId};
use tokenwarden_store::connections::{CONNECTION_FOR_TOKEN_COLUMNS, opt_connection_for_token};
use tokenwarden_store::keys::{API_KEY_COLUMNS, KEY_AUTH_COLUMNS, api_key, key_auth};
use tokenwarden_store::rows::{Columns, Dialect, key_scope_json};
use tokenwarden_store::{
    ApiKeyAuthRecord, ApiKeyRecord, KeyStore, KeyWithConnection, NewApiKey, NewAuditRecord,
    StoreError, StoreResult,
};

use crate::MysqlStore;
use crate::audit::write_audit;
use crate::convert::{db, ms, opt_ms, params, sql_error};
use crate::cursor::{all, one};
use crate::pool::write_tx;

pub(crate) async fn insert_api_key(
    tx: &mut Transaction<'static>,
    k: &NewApiKey,
) -> Result<(), StoreError> {
    tx.exec_drop(
        "INSERT INTO api_keys (id, vault_id, name, roles, scope, lookup_hash, slot, created_at, expires_at, created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            k.created_by.as_str(),
        ],
    )
    .await
    .map_err(sql_error("api key"))
}

#[async_trait]
impl KeyStore for MysqlStore {
    async fn create_api_key(&self, key: NewApiKey, audit: NewAuditRecord) -> StoreResult<()> {
        write_tx!(self, tx => {
            insert_api_key(&mut tx, &key).await?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn api_key_auth(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKeyAuthRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM api_keys k WHERE k.id = ?",
                Columns::select(Dialect::Mysql, &[&KEY_AUTH_COLUMNS])
            )
        });
        one(&mut self.conn().await?, &SQL, params![id.as_str()], |c| {
            key_auth(id, c)
        })
        .await
    }

    async fn api_key_auth_with_connection(
        &self,
        key: &ApiKeyId,
        connection: &ConnectionId,
    ) -> StoreResult<Option<KeyWithConnection>> {
        // Outer joins, so an unknown connection still answers the key (with NULL
        // connection columns).
        static SQL: LazyLock<String> = LazyLock::new(|| {
            let mut lists = vec![&KEY_AUTH_COLUMNS];
            lists.extend_from_slice(CONNECTION_FOR_TOKEN_COLUMNS);
            format!(
                "SELECT {}
                 FROM api_keys k
                 LEFT JOIN connections c ON c.vault_id = k.vault_id AND c.id = ?
                 LEFT JOIN apps a ON a.id = c.app_id
                 LEFT JOIN vaults v ON v.id = c.vault_id
                 LEFT JOIN providers p ON p.vault_id = a.vault_id AND p.`key` = a.provider_key
                 WHERE k.id = ?",
                Columns::select(Dialect::Mysql, &lists)
            )
        });
        one(
            &mut self.conn().await?,
            &SQL,
            params![connection.as_str(), key.as_str()],
            |c| Ok((key_auth(key, c)?, opt_connection_for_token(c)?)),
        )
        .await
    }

    async fn list_api_keys(&self, vault: &VaultId) -> StoreResult<Vec<ApiKeyRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM api_keys k WHERE k.vault_id = ? ORDER BY k.created_at, k.id",
                Columns::select(Dialect::Mysql, &[&API_KEY_COLUMNS])
            )
        });
        all(
            &mut self.conn().await?,
            &SQL,
            params![vault.as_str()],
            api_key,
        )
        .await
    }

    async fn revoke_api_key(
        &self,
        vault: &VaultId,
        id: &ApiKeyId,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        write_tx!(self, tx => {
            tx.exec_drop(
                "UPDATE api_keys SET revoked_at = ?, slot = NULL, lookup_hash = NULL
                 WHERE id = ? AND vault_id = ? AND revoked_at IS NULL",
                params![ms(at), id.as_str(), vault.as_str()],
            )
            .await
            .map_err(db)?;
            let changed = tx.affected_rows() == 1;
            if changed {
                write_audit(&mut tx, &audit).await?;
            }
            changed
        })
    }

    async fn touch_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        self.exec(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
            params![ms(at), id.as_str()],
        )
        .await
        .map(drop)
    }
}
