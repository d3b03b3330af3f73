//! [`ConnectionStore`] on SQLite: connections, the token read's query, and the refresh
//! lease and fenced commit.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use tokenwarden_domain::{ConnectionId, VaultId};
use tokenwarden_store::connections::{
    CONNECTION_COLUMNS, CONNECTION_FOR_TOKEN_COLUMNS, connection, connection_for_token as token_row,
};
use tokenwarden_store::rows::{Columns, Dialect, scopes_json};
use tokenwarden_store::{
    Ciphertext, ConnectionFilter, ConnectionForToken, ConnectionRecord, ConnectionStore,
    ConnectionUpsert, DueConnection, HealthChange, NewAuditRecord, NewEvent, QueueDepth,
    StoreError, StoreResult, TokenWrite,
};

use crate::SqliteStore;
use crate::audit::write_audit;
use crate::convert::{db, ms, opt_ms, savepoint};
use crate::cursor::{all, one};
use crate::webhooks::write_events;

/// Every token read's query (the statement cache is keyed by its text, so it is built
/// once).
pub(crate) fn connection_for_token(
    conn: &Connection,
    vault: &str,
    id: &str,
) -> StoreResult<Option<ConnectionForToken>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}
             FROM connections c
             JOIN apps a ON a.id = c.app_id
             JOIN vaults v ON v.id = c.vault_id
             LEFT JOIN providers p ON p.vault_id = a.vault_id AND p.key = a.provider_key
             WHERE c.vault_id = ?1 AND c.id = ?2",
            Columns::select(Dialect::Sqlite, CONNECTION_FOR_TOKEN_COLUMNS)
        )
    });
    let mut st = conn.prepare_cached(&SQL).map_err(db)?;
    one(&mut st, [vault, id], |c| token_row(c))
}

/// Inserts a connection or replaces its tokens in place, with the event that says
/// which. A connection of another app is never taken over: that is a conflict.
pub(crate) fn upsert_connection(tx: &Connection, c: &ConnectionUpsert) -> StoreResult<()> {
    let t = &c.tokens;
    let existed: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM connections WHERE vault_id = ?1 AND id = ?2",
            [c.vault_id.as_str(), c.id.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    let changed = tx.execute(
        "INSERT INTO connections (vault_id, id, app_id, status, scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at, refreshed_at, updated_at,
                status_reason, next_refresh_at, due_at, failures, expiring_notified_at)
         VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?7, ?8, 1, NULL, NULL, ?9, NULL, ?9, NULL, ?10, ?11, 0, NULL)
         ON CONFLICT (vault_id, id) DO UPDATE SET
            app_id = excluded.app_id, status = 'active', scopes = excluded.scopes,
            token_set = excluded.token_set, token_format = excluded.token_format,
            expires_at = excluded.expires_at, has_refresh = excluded.has_refresh,
            version = connections.version + 1, lease_owner = NULL, lease_until = NULL,
            updated_at = excluded.updated_at, status_reason = NULL,
            next_refresh_at = excluded.next_refresh_at, due_at = excluded.due_at, failures = 0,
            expiring_notified_at = NULL
         WHERE connections.app_id = excluded.app_id",
        params![
            c.vault_id.as_str(),
            c.id.as_str(),
            c.app_id.as_str(),
            scopes_json(&t.scopes),
            t.token_set.as_bytes(),
            t.token_format as i64,
            opt_ms(t.expires_at),
            t.has_refresh,
            ms(t.at),
            opt_ms(t.schedule.next_refresh_at),
            opt_ms(t.schedule.due_at),
        ],
    )
    .map_err(db)?;
    if changed == 0 {
        return Err(StoreError::Conflict("connection of another app"));
    }
    if let Some(events) = &c.events {
        let event = if existed.is_some() {
            &events.reconnected
        } else {
            &events.created
        };
        write_events(tx, std::slice::from_ref(event))?;
    }
    Ok(())
}

fn key(vault: &VaultId, id: &ConnectionId) -> (String, String) {
    (vault.as_str().to_owned(), id.as_str().to_owned())
}

#[async_trait]
impl ConnectionStore for SqliteStore {
    async fn insert_connection(
        &self,
        c: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let exists: Option<i64> = tx
                    .query_row(
                        "SELECT 1 FROM connections WHERE vault_id = ?1 AND id = ?2",
                        [c.vault_id.as_str(), c.id.as_str()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                if exists.is_some() {
                    return Err(StoreError::Conflict("connection"));
                }
                upsert_connection(&tx, &c)?;
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn list_connections(
        &self,
        vault: &VaultId,
        filter: &ConnectionFilter,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM connections c JOIN apps a ON a.id = c.app_id
                 WHERE c.vault_id = ?1 AND (?2 IS NULL OR c.status = ?2)
                   AND (?3 IS NULL OR a.key = ?3)
                   AND (?4 IS NULL OR c.next_refresh_at <= ?4)
                 ORDER BY c.created_at, c.id",
                Columns::select(Dialect::Sqlite, &[&CONNECTION_COLUMNS])
            )
        });
        let vault = vault.as_str().to_owned();
        let status = filter.status.map(|s| s.as_str());
        let app = filter.app.as_ref().map(|a| a.as_str().to_owned());
        let due_by = filter.refresh_due_by.map(ms);
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                all(&mut st, params![vault, status, app, due_by], |c| {
                    connection(c)
                })
            })
            .await
    }

    async fn connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM connections c JOIN apps a ON a.id = c.app_id
                 WHERE c.vault_id = ?1 AND c.id = ?2",
                Columns::select(Dialect::Sqlite, &[&CONNECTION_COLUMNS])
            )
        });
        let (vault, id) = key(vault, id);
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                one(&mut st, [vault, id], |c| connection(c))
            })
            .await
    }

    async fn connection_for_token(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionForToken>> {
        self.pool
            .read_now(|conn| connection_for_token(conn, vault.as_str(), id.as_str()))
    }

    async fn rewrap_tokens(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        token_set: Ciphertext,
    ) -> StoreResult<bool> {
        let (vault, id) = key(vault, id);
        self.pool
            .write_relaxed(move |conn| {
                let changed = conn
                    .execute(
                        "UPDATE connections SET token_set = ?4, token_format = 1
                         WHERE vault_id = ?1 AND id = ?2 AND version = ?3 AND token_format = 2",
                        params![vault, id, version, token_set.as_bytes()],
                    )
                    .map_err(db)?;
                Ok(changed == 1)
            })
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
        let (vault, id) = key(vault, id);
        let owner = owner.to_owned();
        self.pool
            .write_relaxed(move |conn| {
                let changed = conn
                    .execute(
                        "UPDATE connections SET lease_owner = ?4, lease_until = ?5
                         WHERE vault_id = ?1 AND id = ?2 AND version = ?3
                           AND (lease_owner IS NULL OR lease_until <= ?6 OR lease_owner = ?4)",
                        params![vault, id, version, owner, ms(until), ms(now)],
                    )
                    .map_err(db)?;
                Ok(changed == 1)
            })
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
        let (vault, id) = key(vault, id);
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                // Fenced on the version alone: every token write bumps it, so a newer
                // token is never overwritten; and a refresher whose lease ran out but
                // whose write is still the newest keeps its rotated refresh token
                // instead of throwing it away.
                let changed = tx
                    .execute(
                        "UPDATE connections SET token_set = ?4, token_format = ?5, expires_at = ?6, has_refresh = ?7,
                            scopes = ?8, version = version + 1, lease_owner = NULL, lease_until = NULL,
                            refreshed_at = ?9, updated_at = ?9, status = 'active', status_reason = NULL,
                            next_refresh_at = ?10, due_at = ?11, failures = 0, expiring_notified_at = NULL
                         WHERE vault_id = ?1 AND id = ?2 AND version = ?3",
                        params![
                            vault,
                            id,
                            version,
                            t.token_set.as_bytes(),
                            t.token_format as i64,
                            opt_ms(t.expires_at),
                            t.has_refresh,
                            scopes_json(&t.scopes),
                            ms(t.at),
                            opt_ms(t.schedule.next_refresh_at),
                            opt_ms(t.schedule.due_at),
                        ],
                    )
                    .map_err(db)?;
                if changed == 1 {
                    write_audit(&tx, &audit)?;
                    write_events(&tx, &events)?;
                }
                tx.commit().map_err(db)?;
                Ok(changed == 1)
            })
            .await
    }

    async fn release_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        owner: &str,
    ) -> StoreResult<()> {
        let (vault, id) = key(vault, id);
        let owner = owner.to_owned();
        self.pool
            .write_relaxed(move |conn| {
                conn.execute(
                    "UPDATE connections SET lease_owner = NULL, lease_until = NULL WHERE vault_id = ?1 AND id = ?2 AND lease_owner = ?3",
                    params![vault, id, owner],
                )
                .map_err(db)?;
                Ok(())
            })
            .await
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
        let (vault, id) = key(vault, id);
        let owner = owner.map(str::to_owned);
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let changed = tx
                    .execute(
                        "UPDATE connections SET status = ?5, status_reason = ?6, next_refresh_at = ?7,
                            due_at = ?8, failures = ?9,
                            expiring_notified_at = COALESCE(?10, expiring_notified_at),
                            updated_at = ?11,
                            lease_owner = CASE WHEN ?4 IS NULL THEN lease_owner END,
                            lease_until = CASE WHEN ?4 IS NULL THEN lease_until END
                         WHERE vault_id = ?1 AND id = ?2 AND version = ?3
                           AND (?4 IS NULL OR lease_owner = ?4)",
                        params![
                            vault,
                            id,
                            version,
                            owner,
                            h.status.as_str(),
                            h.status_reason,
                            opt_ms(h.schedule.next_refresh_at),
                            opt_ms(h.schedule.due_at),
                            h.failures,
                            opt_ms(h.expiring_notified_at),
                            ms(h.at),
                        ],
                    )
                    .map_err(db)?;
                if changed == 1 {
                    if let Some(audit) = &audit {
                        write_audit(&tx, audit)?;
                    }
                    write_events(&tx, &events)?;
                }
                tx.commit().map_err(db)?;
                Ok(changed == 1)
            })
            .await
    }

    async fn claim_due_connections(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<DueConnection>> {
        self.pool
            .write(move |conn| {
                // One writer at a time on SQLite: the select and the moves are one
                // transaction, so no other process claims in between.
                let tx = savepoint(conn)?;
                let due: Vec<(String, String)> = {
                    let mut st = tx
                        .prepare_cached(
                            "SELECT vault_id, id FROM connections INDEXED BY connections_due
                             WHERE due_at IS NOT NULL AND due_at <= ?1 ORDER BY due_at LIMIT ?2",
                        )
                        .map_err(db)?;
                    let rows = st
                        .query_map(params![ms(now), limit], |r| Ok((r.get(0)?, r.get(1)?)))
                        .map_err(db)?;
                    rows.collect::<Result<_, _>>().map_err(db)?
                };
                let mut claimed = Vec::with_capacity(due.len());
                for (vault, id) in due {
                    tx.execute(
                        "UPDATE connections SET due_at = ?3 WHERE vault_id = ?1 AND id = ?2",
                        params![vault, id, ms(claim_until)],
                    )
                    .map_err(db)?;
                    claimed.push(DueConnection {
                        vault_id: VaultId::parse(&vault)
                            .map_err(|_| StoreError::Corrupt("connections.vault_id".into()))?,
                        id: ConnectionId::parse(&id)
                            .map_err(|_| StoreError::Corrupt("connections.id".into()))?,
                    });
                }
                tx.commit().map_err(db)?;
                Ok(claimed)
            })
            .await
    }

    async fn connection_queue(&self, now: DateTime<Utc>, cap: u32) -> StoreResult<QueueDepth> {
        self.pool
            .read(move |conn| {
                let (due, oldest): (i64, Option<i64>) = conn
                    .query_row(
                        "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM connections INDEXED BY connections_due
                                  WHERE due_at IS NOT NULL AND due_at <= ?1 LIMIT ?2)),
                                (SELECT MIN(due_at) FROM connections INDEXED BY connections_due WHERE due_at IS NOT NULL)",
                        params![ms(now), cap],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map_err(db)?;
                Ok(QueueDepth {
                    due: u64::try_from(due).unwrap_or_default(),
                    oldest_due: oldest
                        .filter(|o| *o <= ms(now))
                        .and_then(chrono::DateTime::from_timestamp_millis),
                })
            })
            .await
    }

    async fn delete_connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        audit: NewAuditRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<bool> {
        let (vault, id) = key(vault, id);
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let deleted = tx
                    .execute(
                        "DELETE FROM connections WHERE vault_id = ?1 AND id = ?2",
                        [vault, id],
                    )
                    .map_err(db)?;
                if deleted == 1 {
                    write_audit(&tx, &audit)?;
                    write_events(&tx, &events)?;
                }
                tx.commit().map_err(db)?;
                Ok(deleted == 1)
            })
            .await
    }
}
