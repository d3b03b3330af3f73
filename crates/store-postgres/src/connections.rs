//! [`ConnectionStore`] on PostgreSQL: connections, the token read's query, and the
//! refresh lease and fenced commit. The calls that decide a race (the lease and its
//! fenced writes) are each one conditional UPDATE: PostgreSQL re-checks its WHERE clause
//! against the newest row version once a competing writer commits, so exactly one
//! caller, in any process, sees its row changed.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use tokenwarden_domain::{ConnectionId, VaultId};
use tokenwarden_store::connections::{
    CONNECTION_COLUMNS, CONNECTION_FOR_TOKEN_COLUMNS, connection, connection_for_token,
};
use tokenwarden_store::rows::{Columns, Dialect, scopes_json};
use tokenwarden_store::{
    Ciphertext, ConnectionForToken, ConnectionRecord, ConnectionStore, ConnectionUpsert,
    NewAuditRecord, StoreError, StoreResult, TokenWrite,
};
use tokio_postgres::types::ToSql;

use crate::PgStore;
use crate::audit::write_audit;
use crate::convert::{changed_one, db, ms, opt_ms, sql_error};
use crate::cursor::{all, one};

/// Inserts a connection or replaces its tokens in place. A connection of another app
/// is never taken over: that is a conflict.
pub(crate) async fn upsert_connection(
    tx: &Transaction<'_>,
    c: &ConnectionUpsert,
) -> StoreResult<()> {
    let t = &c.tokens;
    let changed = tx
        .execute(
            "INSERT INTO connections (vault_id, id, app_id, status, scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at, refreshed_at, updated_at)
             VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, 1, NULL, NULL, $9, NULL, $9)
             ON CONFLICT (vault_id, id) DO UPDATE SET
                app_id = excluded.app_id, status = 'active', scopes = excluded.scopes,
                token_set = excluded.token_set, token_format = excluded.token_format,
                expires_at = excluded.expires_at, has_refresh = excluded.has_refresh,
                version = connections.version + 1, lease_owner = NULL, lease_until = NULL,
                updated_at = excluded.updated_at
             WHERE connections.app_id = excluded.app_id",
            &[
                &c.vault_id.as_str(),
                &c.id.as_str(),
                &c.app_id.as_str(),
                &scopes_json(&t.scopes),
                &t.token_set.as_bytes(),
                &(t.token_format as i64),
                &opt_ms(t.expires_at),
                &t.has_refresh,
                &ms(t.at),
            ],
        )
        .await
        .map_err(db)?;
    if changed == 0 {
        return Err(StoreError::Conflict("connection of another app"));
    }
    Ok(())
}

/// One cached statement; whether it changed exactly one row.
async fn update_one(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<bool> {
    let st = c.prepare_cached(sql).await.map_err(db)?;
    let changed = c.execute(&st, params).await.map_err(db)?;
    Ok(changed_one(changed))
}

#[async_trait]
impl ConnectionStore for PgStore {
    async fn insert_connection(
        &self,
        cu: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let t = &cu.tokens;
        // A plain INSERT: of two racing inserts of one id, the second fails on the
        // primary key (SQLite's single writer gives the same answer by checking first).
        tx.execute(
            "INSERT INTO connections (vault_id, id, app_id, status, scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at, refreshed_at, updated_at)
             VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, 1, NULL, NULL, $9, NULL, $9)",
            &[
                &cu.vault_id.as_str(),
                &cu.id.as_str(),
                &cu.app_id.as_str(),
                &scopes_json(&t.scopes),
                &t.token_set.as_bytes(),
                &(t.token_format as i64),
                &opt_ms(t.expires_at),
                &t.has_refresh,
                &ms(t.at),
            ],
        )
        .await
        .map_err(sql_error("connection"))?;
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn list_connections(&self, vault: &VaultId) -> StoreResult<Vec<ConnectionRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM connections c JOIN apps a ON a.id = c.app_id WHERE c.vault_id = $1 ORDER BY c.created_at, c.id",
                Columns::select(Dialect::Postgres, &[&CONNECTION_COLUMNS])
            )
        });
        let rows = self.pool.query(&SQL, &[&vault.as_str()]).await?;
        all(&rows, |c| connection(c))
    }

    async fn connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM connections c JOIN apps a ON a.id = c.app_id WHERE c.vault_id = $1 AND c.id = $2",
                Columns::select(Dialect::Postgres, &[&CONNECTION_COLUMNS])
            )
        });
        let row = self
            .pool
            .query_opt(&SQL, &[&vault.as_str(), &id.as_str()])
            .await?;
        one(row, |c| connection(c))
    }

    async fn connection_for_token(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionForToken>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}
                 FROM connections c
                 JOIN apps a ON a.id = c.app_id
                 JOIN vaults v ON v.id = c.vault_id
                 LEFT JOIN providers p ON p.vault_id = a.vault_id AND p.key = a.provider_key
                 WHERE c.vault_id = $1 AND c.id = $2",
                Columns::select(Dialect::Postgres, CONNECTION_FOR_TOKEN_COLUMNS)
            )
        });
        let row = self
            .pool
            .query_opt(&SQL, &[&vault.as_str(), &id.as_str()])
            .await?;
        one(row, |c| connection_for_token(c))
    }

    async fn rewrap_tokens(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        token_set: Ciphertext,
    ) -> StoreResult<bool> {
        let c = self.pool.client().await?;
        update_one(
            &c,
            "UPDATE connections SET token_set = $4, token_format = 1
             WHERE vault_id = $1 AND id = $2 AND version = $3 AND token_format = 2",
            &[
                &vault.as_str(),
                &id.as_str(),
                &version,
                &token_set.as_bytes(),
            ],
        )
        .await
    }

    async fn acquire_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let c = self.pool.client().await?;
        update_one(
            &c,
            "UPDATE connections SET lease_owner = $4, lease_until = $5
             WHERE vault_id = $1 AND id = $2 AND version = $3
               AND (lease_owner IS NULL OR lease_until <= $6 OR lease_owner = $4)",
            &[
                &vault.as_str(),
                &id.as_str(),
                &version,
                &owner,
                &ms(until),
                &ms(now),
            ],
        )
        .await
    }

    async fn commit_refresh(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        t: TokenWrite,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Fenced on the version alone, as on SQLite: every token write bumps it, so a
        // newer token is never overwritten, and a refresher whose lease ran out but
        // whose write is still the newest keeps its rotated refresh token.
        let changed = update_one(
            &tx,
            "UPDATE connections SET token_set = $4, token_format = $5, expires_at = $6, has_refresh = $7,
                scopes = $8, version = version + 1, lease_owner = NULL, lease_until = NULL,
                refreshed_at = $9, updated_at = $9, status = 'active'
             WHERE vault_id = $1 AND id = $2 AND version = $3",
            &[
                &vault.as_str(),
                &id.as_str(),
                &version,
                &t.token_set.as_bytes(),
                &(t.token_format as i64),
                &opt_ms(t.expires_at),
                &t.has_refresh,
                &scopes_json(&t.scopes),
                &ms(t.at),
            ],
        )
        .await?;
        if changed {
            write_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    async fn release_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        owner: &str,
    ) -> StoreResult<()> {
        let c = self.pool.client().await?;
        update_one(
            &c,
            "UPDATE connections SET lease_owner = NULL, lease_until = NULL WHERE vault_id = $1 AND id = $2 AND lease_owner = $3",
            &[&vault.as_str(), &id.as_str(), &owner],
        )
        .await?;
        Ok(())
    }

    async fn mark_needs_reauth(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        owner: &str,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let changed = update_one(
            &tx,
            "UPDATE connections SET status = 'needs_reauth', lease_owner = NULL, lease_until = NULL
             WHERE vault_id = $1 AND id = $2 AND version = $3 AND lease_owner = $4",
            &[&vault.as_str(), &id.as_str(), &version, &owner],
        )
        .await?;
        if changed {
            write_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    async fn delete_connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let deleted = update_one(
            &tx,
            "DELETE FROM connections WHERE vault_id = $1 AND id = $2",
            &[&vault.as_str(), &id.as_str()],
        )
        .await?;
        if deleted {
            write_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(deleted)
    }
}
