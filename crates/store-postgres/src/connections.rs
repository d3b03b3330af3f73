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
    Ciphertext, ConnectionFilter, ConnectionForToken, ConnectionRecord, ConnectionStore,
    ConnectionUpsert, DueConnection, HealthChange, NewAuditRecord, NewEvent, QueueDepth,
    StoreError, StoreResult, TokenWrite,
};
use tokio_postgres::types::ToSql;

use crate::PgStore;
use crate::audit::write_audit;
use crate::convert::{changed_one, db, ms, opt_ms, sql_error};
use crate::cursor::{all, one};
use crate::webhooks::write_events;

/// Inserts a connection or replaces its tokens in place. A connection of another app
/// is never taken over: that is a conflict.
pub(crate) async fn upsert_connection(
    tx: &Transaction<'_>,
    c: &ConnectionUpsert,
) -> StoreResult<()> {
    let t = &c.tokens;
    // `xmax = 0` on the returned row: the row was inserted, not updated.
    let row = tx
        .query_opt(
            "INSERT INTO connections (vault_id, id, app_id, status, scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at, refreshed_at, updated_at,
                    status_reason, next_refresh_at, due_at, failures, expiring_notified_at)
             VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, 1, NULL, NULL, $9, NULL, $9, NULL, $10, $11, 0, NULL)
             ON CONFLICT (vault_id, id) DO UPDATE SET
                app_id = excluded.app_id, status = 'active', scopes = excluded.scopes,
                token_set = excluded.token_set, token_format = excluded.token_format,
                expires_at = excluded.expires_at, has_refresh = excluded.has_refresh,
                version = connections.version + 1, lease_owner = NULL, lease_until = NULL,
                updated_at = excluded.updated_at, status_reason = NULL,
                next_refresh_at = excluded.next_refresh_at, due_at = excluded.due_at,
                failures = 0, expiring_notified_at = NULL
             WHERE connections.app_id = excluded.app_id
             RETURNING (xmax = 0) AS inserted",
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
                &opt_ms(t.schedule.next_refresh_at),
                &opt_ms(t.schedule.due_at),
            ],
        )
        .await
        .map_err(db)?;
    let Some(row) = row else {
        return Err(StoreError::Conflict("connection of another app"));
    };
    if let Some(events) = &c.events {
        let inserted: bool = row.try_get(0).map_err(db)?;
        let event = if inserted {
            &events.created
        } else {
            &events.reconnected
        };
        write_events(tx, std::slice::from_ref(event)).await?;
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
            "INSERT INTO connections (vault_id, id, app_id, status, scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at, refreshed_at, updated_at,
                    status_reason, next_refresh_at, due_at, failures, expiring_notified_at)
             VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, 1, NULL, NULL, $9, NULL, $9, NULL, $10, $11, 0, NULL)",
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
                &opt_ms(t.schedule.next_refresh_at),
                &opt_ms(t.schedule.due_at),
            ],
        )
        .await
        .map_err(sql_error("connection"))?;
        write_audit(&tx, &audit).await?;
        if let Some(events) = &cu.events {
            write_events(&tx, std::slice::from_ref(&events.created)).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn list_connections(
        &self,
        vault: &VaultId,
        filter: &ConnectionFilter,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM connections c JOIN apps a ON a.id = c.app_id
                 WHERE c.vault_id = $1 AND ($2::text IS NULL OR c.status = $2)
                   AND ($3::text IS NULL OR a.key = $3)
                   AND ($4::bigint IS NULL OR c.next_refresh_at <= $4)
                 ORDER BY c.created_at, c.id",
                Columns::select(Dialect::Postgres, &[&CONNECTION_COLUMNS])
            )
        });
        let status = filter.status.map(|s| s.as_str());
        let app = filter.app.as_ref().map(|a| a.as_str());
        let due_by = filter.refresh_due_by.map(ms);
        let rows = self
            .pool
            .query(&SQL, &[&vault.as_str(), &status, &app, &due_by])
            .await?;
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
        events: Vec<NewEvent>,
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
                refreshed_at = $9, updated_at = $9, status = 'active', status_reason = NULL,
                next_refresh_at = $10, due_at = $11, failures = 0, expiring_notified_at = NULL
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
                &opt_ms(t.schedule.next_refresh_at),
                &opt_ms(t.schedule.due_at),
            ],
        )
        .await?;
        if changed {
            write_audit(&tx, &audit).await?;
            write_events(&tx, &events).await?;
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

    async fn set_health(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        owner: Option<&str>,
        h: HealthChange,
        audit: Option<NewAuditRecord>,
        events: Vec<NewEvent>,
    ) -> StoreResult<bool> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let changed = update_one(
            &tx,
            "UPDATE connections SET status = $5, status_reason = $6, next_refresh_at = $7,
                due_at = $8, failures = $9,
                expiring_notified_at = COALESCE($10, expiring_notified_at), updated_at = $11,
                lease_owner = CASE WHEN $4::text IS NULL THEN lease_owner END,
                lease_until = CASE WHEN $4::text IS NULL THEN lease_until END
             WHERE vault_id = $1 AND id = $2 AND version = $3
               AND ($4::text IS NULL OR lease_owner = $4)",
            &[
                &vault.as_str(),
                &id.as_str(),
                &version,
                &owner,
                &h.status.as_str(),
                &h.status_reason,
                &opt_ms(h.schedule.next_refresh_at),
                &opt_ms(h.schedule.due_at),
                &i64::from(h.failures),
                &opt_ms(h.expiring_notified_at),
                &ms(h.at),
            ],
        )
        .await?;
        if changed {
            if let Some(audit) = &audit {
                write_audit(&tx, audit).await?;
            }
            write_events(&tx, &events).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    async fn claim_due_connections(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<DueConnection>> {
        // SKIP LOCKED: replicas claiming at once take disjoint rows instead of waiting
        // on each other's.
        let rows = self
            .pool
            .query(
                "UPDATE connections SET due_at = $2
                 WHERE (vault_id, id) IN (
                    SELECT vault_id, id FROM connections
                    WHERE due_at IS NOT NULL AND due_at <= $1
                    ORDER BY due_at LIMIT $3
                    FOR UPDATE SKIP LOCKED)
                 RETURNING vault_id, id",
                &[&ms(now), &ms(claim_until), &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let vault: &str = r.try_get(0).map_err(db)?;
                let id: &str = r.try_get(1).map_err(db)?;
                Ok(DueConnection {
                    vault_id: VaultId::parse(vault)
                        .map_err(|_| StoreError::Corrupt("connections.vault_id".into()))?,
                    id: ConnectionId::parse(id)
                        .map_err(|_| StoreError::Corrupt("connections.id".into()))?,
                })
            })
            .collect()
    }

    async fn connection_queue(&self, now: DateTime<Utc>, cap: u32) -> StoreResult<QueueDepth> {
        let rows = self
            .pool
            .query(
                "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM connections
                          WHERE due_at IS NOT NULL AND due_at <= $1 LIMIT $2) d),
                        (SELECT MIN(due_at) FROM connections WHERE due_at IS NOT NULL)",
                &[&ms(now), &i64::from(cap)],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(QueueDepth::default());
        };
        let due: i64 = row.try_get(0).map_err(db)?;
        let oldest: Option<i64> = row.try_get(1).map_err(db)?;
        Ok(QueueDepth {
            due: u64::try_from(due).unwrap_or_default(),
            oldest_due: oldest
                .filter(|o| *o <= ms(now))
                .and_then(DateTime::from_timestamp_millis),
        })
    }

    async fn delete_connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        audit: NewAuditRecord,
        events: Vec<NewEvent>,
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
            write_events(&tx, &events).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(deleted)
    }
}
