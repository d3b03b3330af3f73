//! [`KeyStore`] on PostgreSQL.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use tokenwarden_domain::{ApiKeyId, ConnectionId, VaultId};
use tokenwarden_store::connections::{CONNECTION_FOR_TOKEN_COLUMNS, opt_connection_for_token};
use tokenwarden_store::keys::{API_KEY_COLUMNS, KEY_AUTH_COLUMNS, api_key, key_auth};
use tokenwarden_store::rows::{Columns, Dialect, key_scope_json};
use tokenwarden_store::{
    ApiKeyAuthRecord, ApiKeyRecord, KeyStore, KeyWithConnection, NewApiKey, NewAuditRecord,
    StoreResult,
};

use crate::PgStore;
use crate::audit::write_audit;
use crate::convert::{changed_one, db, ms, opt_ms, sql_error};
use crate::cursor::{all, one};

pub(crate) async fn insert_api_key(tx: &Transaction<'_>, k: &NewApiKey) -> StoreResult<()> {
    let scope = key_scope_json(&k.scope)?;
    let st = tx
        .prepare_cached(
            "INSERT INTO api_keys (id, vault_id, name, roles, scope, lookup_hash, slot, created_at, expires_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .await
        .map_err(db)?;
    tx.execute(
        &st,
        &[
            &k.id.as_str(),
            &k.vault_id.as_str(),
            &k.name.as_str(),
            &k.roles.to_list(),
            &scope,
            &k.lookup_hash.as_bytes(),
            &k.slot.as_bytes(),
            &ms(k.created_at),
            &opt_ms(k.expires_at),
            &k.created_by,
        ],
    )
    .await
    .map_err(sql_error("api key"))?;
    Ok(())
}

#[async_trait]
impl KeyStore for PgStore {
    async fn create_api_key(&self, key: NewApiKey, audit: NewAuditRecord) -> StoreResult<()> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        insert_api_key(&tx, &key).await?;
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn api_key_auth(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKeyAuthRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM api_keys k WHERE k.id = $1",
                Columns::select(Dialect::Postgres, &[&KEY_AUTH_COLUMNS])
            )
        });
        let row = self.pool.query_opt(&SQL, &[&id.as_str()]).await?;
        one(row, |c| key_auth(id, c))
    }

    /// The key and the connection in one round trip: outer joins, so an unknown
    /// connection still answers the key (with NULL connection columns).
    async fn api_key_auth_with_connection(
        &self,
        key: &ApiKeyId,
        connection: &ConnectionId,
    ) -> StoreResult<Option<KeyWithConnection>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            let mut lists = vec![&KEY_AUTH_COLUMNS];
            lists.extend_from_slice(CONNECTION_FOR_TOKEN_COLUMNS);
            format!(
                "SELECT {}
                 FROM api_keys k
                 LEFT JOIN connections c ON c.vault_id = k.vault_id AND c.id = $2
                 LEFT JOIN apps a ON a.id = c.app_id
                 LEFT JOIN vaults v ON v.id = c.vault_id
                 LEFT JOIN providers p ON p.vault_id = a.vault_id AND p.key = a.provider_key
                 WHERE k.id = $1",
                Columns::select(Dialect::Postgres, &lists)
            )
        });
        let row = self
            .pool
            .query_opt(&SQL, &[&key.as_str(), &connection.as_str()])
            .await?;
        // The connection's first column (its vault id, never NULL in a row) is NULL
        // exactly when the join found no connection.
        one(row, |c| {
            Ok((key_auth(key, c)?, opt_connection_for_token(c)?))
        })
    }

    async fn list_api_keys(&self, vault: &VaultId) -> StoreResult<Vec<ApiKeyRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM api_keys k WHERE k.vault_id = $1 ORDER BY k.created_at, k.id",
                Columns::select(Dialect::Postgres, &[&API_KEY_COLUMNS])
            )
        });
        let rows = self.pool.query(&SQL, &[&vault.as_str()]).await?;
        all(&rows, |c| api_key(c))
    }

    async fn revoke_api_key(
        &self,
        vault: &VaultId,
        id: &ApiKeyId,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let changed = tx
            .execute(
                "UPDATE api_keys SET revoked_at = $1, slot = NULL, lookup_hash = NULL
                 WHERE id = $2 AND vault_id = $3 AND revoked_at IS NULL",
                &[&ms(at), &id.as_str(), &vault.as_str()],
            )
            .await
            .map_err(db)?;
        let changed = changed_one(changed);
        if changed {
            write_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    async fn touch_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        let c = self.pool.client().await?;
        let st = c
            .prepare_cached("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .await
            .map_err(db)?;
        c.execute(&st, &[&ms(at), &id.as_str()]).await.map_err(db)?;
        Ok(())
    }
}
