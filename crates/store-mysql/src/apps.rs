//! [`AppStore`] on MySQL: apps and a vault's own providers.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mysql_async::Transaction;
use mysql_async::prelude::Queryable;
use tokenwarden_domain::{AppKey, VaultId};
use tokenwarden_store::apps::{APP_COLUMNS, PROVIDER_COLUMNS, app, provider};
use tokenwarden_store::rows::{Columns, Dialect, scopes_json};
use tokenwarden_store::{
    AppRecord, AppStatus, AppStore, AppUpdate, Ciphertext, NewAuditRecord, ProviderRecord,
    StoreError, StoreResult,
};

use crate::MysqlStore;
use crate::audit::write_audit;
use crate::convert::{db, is_still_referenced, ms, params, sql_error};
use crate::cursor::{all, one};
use crate::pool::write_tx;

async fn insert_app(tx: &mut Transaction<'static>, a: &AppRecord) -> Result<(), StoreError> {
    tx.exec_drop(
        "INSERT INTO apps (id, vault_id, `key`, provider_key, client_id, client_secret, scopes, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            a.id.as_str(),
            a.vault_id.as_str(),
            a.key.as_str(),
            a.provider_key.as_str(),
            a.client_id.as_str(),
            a.client_secret.as_bytes(),
            scopes_json(&a.scopes),
            a.status.as_str(),
            ms(a.created_at),
            ms(a.updated_at)
        ],
    )
    .await
    .map_err(sql_error("app"))
}

async fn app_by_key(
    q: &mut impl Queryable,
    vault: &str,
    key: &str,
) -> Result<Option<AppRecord>, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM apps a WHERE a.vault_id = ? AND a.`key` = ?",
            Columns::select(Dialect::Mysql, &[&APP_COLUMNS])
        )
    });
    one(q, &SQL, params![vault, key], app).await
}

async fn update_app(
    tx: &mut Transaction<'static>,
    vault: &VaultId,
    key: &AppKey,
    u: &AppUpdate,
    at: DateTime<Utc>,
    audit: &NewAuditRecord,
) -> Result<Option<AppRecord>, StoreError> {
    tx.exec_drop(
        "UPDATE apps SET
            status = coalesce(?, status),
            scopes = coalesce(?, scopes),
            client_id = coalesce(?, client_id),
            client_secret = coalesce(?, client_secret),
            updated_at = ?
         WHERE vault_id = ? AND `key` = ?",
        params![
            u.status.map(AppStatus::as_str),
            u.scopes.as_ref().map(scopes_json),
            u.client_id.as_deref(),
            u.client_secret.as_ref().map(Ciphertext::as_bytes),
            ms(at),
            vault.as_str(),
            key.as_str()
        ],
    )
    .await
    .map_err(db)?;
    if tx.affected_rows() == 0 {
        return Ok(None);
    }
    write_audit(tx, audit).await?;
    app_by_key(tx, vault.as_str(), key.as_str()).await
}

async fn delete_app(
    tx: &mut Transaction<'static>,
    vault: &VaultId,
    key: &AppKey,
    audit: &NewAuditRecord,
) -> Result<bool, StoreError> {
    let in_use: Option<i64> = tx
        .exec_first(
            "SELECT count(*) FROM connections c JOIN apps a ON a.id = c.app_id WHERE a.vault_id = ? AND a.`key` = ?",
            params![vault.as_str(), key.as_str()],
        )
        .await
        .map_err(db)?;
    if in_use.unwrap_or(0) > 0 {
        return Err(StoreError::Conflict("connection of this app"));
    }
    // A connection added by another process since the count is caught by the foreign
    // key (ON DELETE RESTRICT), and is the same conflict.
    tx.exec_drop(
        "DELETE FROM apps WHERE vault_id = ? AND `key` = ?",
        params![vault.as_str(), key.as_str()],
    )
    .await
    .map_err(|e| {
        if is_still_referenced(&e) {
            StoreError::Conflict("connection of this app")
        } else {
            db(e)
        }
    })?;
    let deleted = tx.affected_rows() == 1;
    if deleted {
        write_audit(tx, audit).await?;
    }
    Ok(deleted)
}

#[async_trait]
impl AppStore for MysqlStore {
    async fn create_provider(
        &self,
        provider: ProviderRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        write_tx!(self, tx => {
            tx.exec_drop(
                "INSERT INTO providers (vault_id, `key`, spec, created_at) VALUES (?, ?, ?, ?)",
                params![
                    provider.vault_id.as_str(),
                    provider.key.as_str(),
                    provider.spec.as_str(),
                    ms(provider.created_at)
                ],
            )
            .await
            .map_err(sql_error("provider"))?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn list_providers(&self, vault: &VaultId) -> StoreResult<Vec<ProviderRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM providers p WHERE p.vault_id = ? ORDER BY p.`key`",
                Columns::select(Dialect::Mysql, &[&PROVIDER_COLUMNS])
            )
        });
        all(
            &mut self.conn().await?,
            &SQL,
            params![vault.as_str()],
            provider,
        )
        .await
    }

    async fn provider(&self, vault: &VaultId, key: &str) -> StoreResult<Option<ProviderRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM providers p WHERE p.vault_id = ? AND p.`key` = ?",
                Columns::select(Dialect::Mysql, &[&PROVIDER_COLUMNS])
            )
        });
        one(
            &mut self.conn().await?,
            &SQL,
            params![vault.as_str(), key],
            provider,
        )
        .await
    }

    async fn create_app(&self, app: AppRecord, audit: NewAuditRecord) -> StoreResult<()> {
        write_tx!(self, tx => {
            insert_app(&mut tx, &app).await?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn list_apps(&self, vault: &VaultId) -> StoreResult<Vec<AppRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM apps a WHERE a.vault_id = ? ORDER BY a.`key`",
                Columns::select(Dialect::Mysql, &[&APP_COLUMNS])
            )
        });
        all(&mut self.conn().await?, &SQL, params![vault.as_str()], app).await
    }

    async fn app_by_key(&self, vault: &VaultId, key: &AppKey) -> StoreResult<Option<AppRecord>> {
        app_by_key(&mut self.conn().await?, vault.as_str(), key.as_str()).await
    }

    async fn update_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        update: AppUpdate,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<Option<AppRecord>> {
        write_tx!(self, tx => {
            update_app(&mut tx, vault, key, &update, at, &audit).await?
        })
    }

    async fn delete_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        write_tx!(self, tx => {
            delete_app(&mut tx, vault, key, &audit).await?
        })
    }
}
