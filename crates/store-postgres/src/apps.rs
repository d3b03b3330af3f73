//! [`AppStore`] on PostgreSQL: apps and a vault's own providers.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenwarden_domain::{AppKey, VaultId};
use tokenwarden_store::apps::{APP_COLUMNS, PROVIDER_COLUMNS, app, provider};
use tokenwarden_store::rows::{Columns, Cursor, Dialect, scopes_json};
use tokenwarden_store::{
    AppRecord, AppStatus, AppStore, AppUpdate, Ciphertext, NewAuditRecord, ProviderRecord,
    StoreError, StoreResult,
};
use tokio_postgres::error::SqlState;

use crate::PgStore;
use crate::audit::write_audit;
use crate::convert::{changed_one, db, ms, sql_error};
use crate::cursor::{RowCursor, all, one};

#[async_trait]
impl AppStore for PgStore {
    async fn create_provider(&self, p: ProviderRecord, audit: NewAuditRecord) -> StoreResult<()> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        tx.execute(
            "INSERT INTO providers (vault_id, key, spec, created_at) VALUES ($1, $2, $3, $4)",
            &[&p.vault_id.as_str(), &p.key, &p.spec, &ms(p.created_at)],
        )
        .await
        .map_err(sql_error("provider"))?;
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn list_providers(&self, vault: &VaultId) -> StoreResult<Vec<ProviderRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM providers p WHERE p.vault_id = $1 ORDER BY p.key",
                Columns::select(Dialect::Postgres, &[&PROVIDER_COLUMNS])
            )
        });
        let rows = self.pool.query(&SQL, &[&vault.as_str()]).await?;
        all(&rows, |c| provider(c))
    }

    async fn provider(&self, vault: &VaultId, key: &str) -> StoreResult<Option<ProviderRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM providers p WHERE p.vault_id = $1 AND p.key = $2",
                Columns::select(Dialect::Postgres, &[&PROVIDER_COLUMNS])
            )
        });
        let row = self.pool.query_opt(&SQL, &[&vault.as_str(), &key]).await?;
        one(row, |c| provider(c))
    }

    async fn create_app(&self, a: AppRecord, audit: NewAuditRecord) -> StoreResult<()> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        tx.execute(
            "INSERT INTO apps (id, vault_id, key, provider_key, client_id, client_secret, scopes, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &a.id.as_str(),
                &a.vault_id.as_str(),
                &a.key.as_str(),
                &a.provider_key,
                &a.client_id,
                &a.client_secret.as_bytes(),
                &scopes_json(&a.scopes),
                &a.status.as_str(),
                &ms(a.created_at),
                &ms(a.updated_at),
            ],
        )
        .await
        .map_err(sql_error("app"))?;
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn list_apps(&self, vault: &VaultId) -> StoreResult<Vec<AppRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM apps a WHERE a.vault_id = $1 ORDER BY a.key",
                Columns::select(Dialect::Postgres, &[&APP_COLUMNS])
            )
        });
        let rows = self.pool.query(&SQL, &[&vault.as_str()]).await?;
        all(&rows, |c| app(c))
    }

    async fn app_by_key(&self, vault: &VaultId, key: &AppKey) -> StoreResult<Option<AppRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM apps a WHERE a.vault_id = $1 AND a.key = $2",
                Columns::select(Dialect::Postgres, &[&APP_COLUMNS])
            )
        });
        let row = self
            .pool
            .query_opt(&SQL, &[&vault.as_str(), &key.as_str()])
            .await?;
        one(row, |c| app(c))
    }

    async fn update_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        u: AppUpdate,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<Option<AppRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE apps a SET
                    status = coalesce($3, a.status),
                    scopes = coalesce($4, a.scopes),
                    client_id = coalesce($5, a.client_id),
                    client_secret = coalesce($6, a.client_secret),
                    updated_at = $7
                 WHERE a.vault_id = $1 AND a.key = $2
                 RETURNING {}",
                Columns::select(Dialect::Postgres, &[&APP_COLUMNS])
            )
        });
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let row = tx
            .query_opt(
                SQL.as_str(),
                &[
                    &vault.as_str(),
                    &key.as_str(),
                    &u.status.map(AppStatus::as_str),
                    &u.scopes.as_ref().map(scopes_json),
                    &u.client_id,
                    &u.client_secret.as_ref().map(Ciphertext::as_bytes),
                    &ms(at),
                ],
            )
            .await
            .map_err(db)?;
        let Some(app) = one(row, |c| app(c))? else {
            return Ok(None);
        };
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(Some(app))
    }

    async fn delete_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let row = tx
            .query_one(
                "SELECT count(*) FROM connections c JOIN apps a ON a.id = c.app_id WHERE a.vault_id = $1 AND a.key = $2",
                &[&vault.as_str(), &key.as_str()],
            )
            .await
            .map_err(db)?;
        let in_use = RowCursor::new(&row).int("connections.count")?;
        if in_use > 0 {
            return Err(StoreError::Conflict("connection of this app"));
        }
        // A connection inserted since the count makes the RESTRICT foreign key refuse.
        let deleted = tx
            .execute(
                "DELETE FROM apps WHERE vault_id = $1 AND key = $2",
                &[&vault.as_str(), &key.as_str()],
            )
            .await
            .map_err(|e| {
                if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                    StoreError::Conflict("connection of this app")
                } else {
                    db(e)
                }
            })?;
        let deleted = changed_one(deleted);
        if deleted {
            write_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(deleted)
    }
}
