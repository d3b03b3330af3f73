//! [`AppStore`] on SQLite: apps and a vault's own providers.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use tokenwarden_domain::{AppKey, VaultId};
use tokenwarden_store::apps::{APP_COLUMNS, PROVIDER_COLUMNS, app, provider};
use tokenwarden_store::rows::{Columns, Dialect, scopes_json};
use tokenwarden_store::{
    AppRecord, AppStatus, AppStore, AppUpdate, Ciphertext, NewAuditRecord, ProviderRecord,
    StoreError, StoreResult,
};

use crate::SqliteStore;
use crate::audit::write_audit;
use crate::convert::{db, ms, savepoint, sql_error};
use crate::cursor::{all, one};

fn app_by_key(conn: &Connection, vault: &str, key: &str) -> StoreResult<Option<AppRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM apps a WHERE a.vault_id = ?1 AND a.key = ?2",
            Columns::select(Dialect::Sqlite, &[&APP_COLUMNS])
        )
    });
    let mut st = conn.prepare_cached(&SQL).map_err(db)?;
    one(&mut st, [vault, key], |c| app(c))
}

#[async_trait]
impl AppStore for SqliteStore {
    async fn create_provider(&self, p: ProviderRecord, audit: NewAuditRecord) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                tx.execute(
                    "INSERT INTO providers (vault_id, key, spec, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![p.vault_id.as_str(), p.key, p.spec, ms(p.created_at)],
                )
                .map_err(sql_error("provider"))?;
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn list_providers(&self, vault: &VaultId) -> StoreResult<Vec<ProviderRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM providers p WHERE p.vault_id = ?1 ORDER BY p.key",
                Columns::select(Dialect::Sqlite, &[&PROVIDER_COLUMNS])
            )
        });
        let vault = vault.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                all(&mut st, [vault], |c| provider(c))
            })
            .await
    }

    async fn provider(&self, vault: &VaultId, key: &str) -> StoreResult<Option<ProviderRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM providers p WHERE p.vault_id = ?1 AND p.key = ?2",
                Columns::select(Dialect::Sqlite, &[&PROVIDER_COLUMNS])
            )
        });
        let (vault, key) = (vault.as_str().to_owned(), key.to_owned());
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                one(&mut st, [vault, key], |c| provider(c))
            })
            .await
    }

    async fn create_app(&self, a: AppRecord, audit: NewAuditRecord) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                tx.execute(
                    "INSERT INTO apps (id, vault_id, key, provider_key, client_id, client_secret, scopes, status, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        a.id.as_str(),
                        a.vault_id.as_str(),
                        a.key.as_str(),
                        a.provider_key,
                        a.client_id,
                        a.client_secret.as_bytes(),
                        scopes_json(&a.scopes),
                        a.status.as_str(),
                        ms(a.created_at),
                        ms(a.updated_at)
                    ],
                )
                .map_err(sql_error("app"))?;
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn list_apps(&self, vault: &VaultId) -> StoreResult<Vec<AppRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM apps a WHERE a.vault_id = ?1 ORDER BY a.key",
                Columns::select(Dialect::Sqlite, &[&APP_COLUMNS])
            )
        });
        let vault = vault.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                all(&mut st, [vault], |c| app(c))
            })
            .await
    }

    async fn app_by_key(&self, vault: &VaultId, key: &AppKey) -> StoreResult<Option<AppRecord>> {
        let (vault, key) = (vault.as_str().to_owned(), key.as_str().to_owned());
        self.pool
            .read(move |conn| app_by_key(conn, &vault, &key))
            .await
    }

    async fn update_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        u: AppUpdate,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<Option<AppRecord>> {
        let (vault, key) = (vault.clone(), key.clone());
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let changed = tx
                    .execute(
                        "UPDATE apps SET
                            status = coalesce(?3, status),
                            scopes = coalesce(?4, scopes),
                            client_id = coalesce(?5, client_id),
                            client_secret = coalesce(?6, client_secret),
                            updated_at = ?7
                         WHERE vault_id = ?1 AND key = ?2",
                        params![
                            vault.as_str(),
                            key.as_str(),
                            u.status.map(AppStatus::as_str),
                            u.scopes.as_ref().map(scopes_json),
                            u.client_id,
                            u.client_secret.as_ref().map(Ciphertext::as_bytes),
                            ms(at)
                        ],
                    )
                    .map_err(db)?;
                if changed == 0 {
                    return Ok(None);
                }
                write_audit(&tx, &audit)?;
                let app = app_by_key(&tx, vault.as_str(), key.as_str())?;
                tx.commit().map_err(db)?;
                Ok(app)
            })
            .await
    }

    async fn delete_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let (vault, key) = (vault.clone(), key.clone());
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let in_use: i64 = tx
                    .query_row(
                        "SELECT count(*) FROM connections c JOIN apps a ON a.id = c.app_id WHERE a.vault_id = ?1 AND a.key = ?2",
                        [vault.as_str(), key.as_str()],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                if in_use > 0 {
                    return Err(StoreError::Conflict("connection of this app"));
                }
                let deleted = tx
                    .execute(
                        "DELETE FROM apps WHERE vault_id = ?1 AND key = ?2",
                        [vault.as_str(), key.as_str()],
                    )
                    .map_err(db)?;
                if deleted == 1 {
                    write_audit(&tx, &audit)?;
                }
                tx.commit().map_err(db)?;
                Ok(deleted == 1)
            })
            .await
    }
}
