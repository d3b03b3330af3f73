//! [`ConnectionStore`] on MySQL: connections, the token read's query, and the refresh
//! lease and fenced commit.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mysql_async::Transaction;
use mysql_async::prelude::Queryable;
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

use crate::MysqlStore;
use crate::audit::write_audit;
use crate::convert::{db, is_duplicate, ms, opt_ms, params, sql_error};
use crate::cursor::{all, one};
use crate::pool::write_tx;
use crate::webhooks::write_events;

async fn insert_connection_row(
    tx: &mut Transaction<'static>,
    c: &ConnectionUpsert,
) -> Result<(), mysql_async::Error> {
    let t = &c.tokens;
    tx.exec_drop(
        "INSERT INTO connections (vault_id, id, app_id, status, scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at, refreshed_at, updated_at,
                status_reason, next_refresh_at, due_at, failures, expiring_notified_at)
         VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?, 1, NULL, NULL, ?, NULL, ?, NULL, ?, ?, 0, NULL)",
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
            ms(t.at),
            opt_ms(t.schedule.next_refresh_at),
            opt_ms(t.schedule.due_at)
        ],
    )
    .await
}

/// The event of an upsert: `created` when the id was new, `reconnected` otherwise.
async fn write_upsert_event(
    tx: &mut Transaction<'static>,
    c: &ConnectionUpsert,
    inserted: bool,
) -> Result<(), StoreError> {
    if let Some(events) = &c.events {
        let event = if inserted {
            &events.created
        } else {
            &events.reconnected
        };
        write_events(tx, std::slice::from_ref(event)).await?;
    }
    Ok(())
}

/// Inserts a connection or replaces its tokens in place. A connection of another app
/// is never taken over: that is a conflict. (MySQL's upsert has no condition, so the
/// row is locked and looked at first.)
pub(crate) async fn upsert_connection(
    tx: &mut Transaction<'static>,
    c: &ConnectionUpsert,
) -> Result<(), StoreError> {
    // Twice at most: when another process inserts the row between our look and our
    // insert, the duplicate error leaves this transaction alive, and the second look
    // (a locking read: it waits for that insert to commit) finds the row.
    for _ in 0..2 {
        let app: Option<String> = tx
            .exec_first(
                "SELECT app_id FROM connections WHERE vault_id = ? AND id = ? FOR UPDATE",
                params![c.vault_id.as_str(), c.id.as_str()],
            )
            .await
            .map_err(db)?;
        match app {
            Some(app) if app != c.app_id.as_str() => {
                return Err(StoreError::Conflict("connection of another app"));
            }
            Some(_) => {
                let t = &c.tokens;
                tx.exec_drop(
                    "UPDATE connections SET status = 'active', scopes = ?, token_set = ?, token_format = ?,
                        expires_at = ?, has_refresh = ?, version = version + 1,
                        lease_owner = NULL, lease_until = NULL, updated_at = ?,
                        status_reason = NULL, next_refresh_at = ?, due_at = ?, failures = 0,
                        expiring_notified_at = NULL
                     WHERE vault_id = ? AND id = ?",
                    params![
                        scopes_json(&t.scopes),
                        t.token_set.as_bytes(),
                        t.token_format as i64,
                        opt_ms(t.expires_at),
                        t.has_refresh,
                        ms(t.at),
                        opt_ms(t.schedule.next_refresh_at),
                        opt_ms(t.schedule.due_at),
                        c.vault_id.as_str(),
                        c.id.as_str()
                    ],
                )
                .await
                .map_err(db)?;
                return write_upsert_event(tx, c, false).await;
            }
            None => match insert_connection_row(tx, c).await {
                Ok(()) => return write_upsert_event(tx, c, true).await,
                Err(e) if is_duplicate(&e) => continue,
                Err(e) => return Err(db(e)),
            },
        }
    }
    Err(StoreError::Conflict("connection"))
}

async fn commit_refresh(
    tx: &mut Transaction<'static>,
    vault: &VaultId,
    id: &ConnectionId,
    version: i64,
    t: &TokenWrite,
    audit: &NewAuditRecord,
    events: &[NewEvent],
) -> Result<bool, StoreError> {
    // Fenced on the version alone: every token write bumps it, so a newer token is
    // never overwritten; and a refresher whose lease ran out but whose write is still
    // the newest keeps its rotated refresh token instead of throwing it away.
    tx.exec_drop(
        "UPDATE connections SET token_set = ?, token_format = ?, expires_at = ?, has_refresh = ?,
            scopes = ?, version = version + 1, lease_owner = NULL, lease_until = NULL,
            refreshed_at = ?, updated_at = ?, status = 'active', status_reason = NULL,
            next_refresh_at = ?, due_at = ?, failures = 0, expiring_notified_at = NULL
         WHERE vault_id = ? AND id = ? AND version = ?",
        params![
            t.token_set.as_bytes(),
            t.token_format as i64,
            opt_ms(t.expires_at),
            t.has_refresh,
            scopes_json(&t.scopes),
            ms(t.at),
            ms(t.at),
            opt_ms(t.schedule.next_refresh_at),
            opt_ms(t.schedule.due_at),
            vault.as_str(),
            id.as_str(),
            version
        ],
    )
    .await
    .map_err(db)?;
    let changed = tx.affected_rows() == 1;
    if changed {
        write_audit(tx, audit).await?;
        write_events(tx, events).await?;
    }
    Ok(changed)
}

#[async_trait]
impl ConnectionStore for MysqlStore {
    async fn insert_connection(
        &self,
        connection: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        write_tx!(self, tx => {
            insert_connection_row(&mut tx, &connection)
                .await
                .map_err(sql_error("connection"))?;
            write_audit(&mut tx, &audit).await?;
            write_upsert_event(&mut tx, &connection, true).await?;
        })
    }

    async fn list_connections(
        &self,
        vault: &VaultId,
        filter: &ConnectionFilter,
    ) -> StoreResult<Vec<ConnectionRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM connections c JOIN apps a ON a.id = c.app_id
                 WHERE c.vault_id = ? AND (? IS NULL OR c.status = ?)
                   AND (? IS NULL OR a.`key` = ?)
                   AND (? IS NULL OR c.next_refresh_at <= ?)
                 ORDER BY c.created_at, c.id",
                Columns::select(Dialect::Mysql, &[&CONNECTION_COLUMNS])
            )
        });
        let status = filter.status.map(|s| s.as_str());
        let app = filter.app.as_ref().map(|a| a.as_str().to_owned());
        let due_by = filter.refresh_due_by.map(ms);
        all(
            &mut self.conn().await?,
            &SQL,
            params![
                vault.as_str(),
                status,
                status,
                app.clone(),
                app,
                due_by,
                due_by
            ],
            connection,
        )
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
                 WHERE c.vault_id = ? AND c.id = ?",
                Columns::select(Dialect::Mysql, &[&CONNECTION_COLUMNS])
            )
        });
        one(
            &mut self.conn().await?,
            &SQL,
            params![vault.as_str(), id.as_str()],
            connection,
        )
        .await
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
                 LEFT JOIN providers p ON p.vault_id = a.vault_id AND p.`key` = a.provider_key
                 WHERE c.vault_id = ? AND c.id = ?",
                Columns::select(Dialect::Mysql, CONNECTION_FOR_TOKEN_COLUMNS)
            )
        });
        one(
            &mut self.conn().await?,
            &SQL,
            params![vault.as_str(), id.as_str()],
            connection_for_token,
        )
        .await
    }

    async fn rewrap_tokens(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        token_set: Ciphertext,
    ) -> StoreResult<bool> {
        let changed = self
            .exec(
                "UPDATE connections SET token_set = ?, token_format = 1
                 WHERE vault_id = ? AND id = ? AND version = ? AND token_format = 2",
                params![token_set.into_bytes(), vault.as_str(), id.as_str(), version],
            )
            .await?;
        Ok(changed == 1)
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
        // One conditional UPDATE: InnoDB evaluates the condition on the latest committed
        // row under its row lock, so of two processes racing for a lease one wins.
        let changed = self
            .exec(
                "UPDATE connections SET lease_owner = ?, lease_until = ?
                 WHERE vault_id = ? AND id = ? AND version = ?
                   AND (lease_owner IS NULL OR lease_until <= ? OR lease_owner = ?)",
                params![
                    owner,
                    ms(until),
                    vault.as_str(),
                    id.as_str(),
                    version,
                    ms(now),
                    owner
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn commit_refresh(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        tokens: TokenWrite,
        audit: NewAuditRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<bool> {
        write_tx!(self, tx => {
            commit_refresh(&mut tx, vault, id, version, &tokens, &audit, &events).await?
        })
    }

    async fn release_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        owner: &str,
    ) -> StoreResult<()> {
        self.exec(
            "UPDATE connections SET lease_owner = NULL, lease_until = NULL
             WHERE vault_id = ? AND id = ? AND lease_owner = ?",
            params![vault.as_str(), id.as_str(), owner],
        )
        .await
        .map(drop)
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
        write_tx!(self, tx => {
            tx.exec_drop(
                "UPDATE connections SET status = ?, status_reason = ?, next_refresh_at = ?,
                    due_at = ?, failures = ?,
                    expiring_notified_at = COALESCE(?, expiring_notified_at), updated_at = ?,
                    lease_owner = CASE WHEN ? IS NULL THEN lease_owner END,
                    lease_until = CASE WHEN ? IS NULL THEN lease_until END
                 WHERE vault_id = ? AND id = ? AND version = ? AND (? IS NULL OR lease_owner = ?)",
                params![
                    h.status.as_str(),
                    h.status_reason.clone(),
                    opt_ms(h.schedule.next_refresh_at),
                    opt_ms(h.schedule.due_at),
                    h.failures,
                    opt_ms(h.expiring_notified_at),
                    ms(h.at),
                    owner,
                    owner,
                    vault.as_str(),
                    id.as_str(),
                    version,
                    owner,
                    owner
                ],
            )
            .await
            .map_err(db)?;
            let changed = tx.affected_rows() == 1;
            if changed {
                if let Some(audit) = &audit {
                    write_audit(&mut tx, audit).await?;
                }
                write_events(&mut tx, &events).await?;
            }
            changed
        })
    }

    async fn claim_due_connections(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<DueConnection>> {
        write_tx!(self, tx => {
            // SKIP LOCKED: replicas claiming at once take disjoint rows.
            let due: Vec<(String, String)> = tx
                .exec(
                    "SELECT vault_id, id FROM connections FORCE INDEX (connections_due)
                     WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?
                     FOR UPDATE SKIP LOCKED",
                    params![ms(now), limit],
                )
                .await
                .map_err(db)?;
            let mut claimed = Vec::with_capacity(due.len());
            for (vault, id) in due {
                tx.exec_drop(
                    "UPDATE connections SET due_at = ? WHERE vault_id = ? AND id = ?",
                    params![ms(claim_until), vault.as_str(), id.as_str()],
                )
                .await
                .map_err(db)?;
                claimed.push(DueConnection {
                    vault_id: VaultId::parse(&vault)
                        .map_err(|_| StoreError::Corrupt("connections.vault_id".into()))?,
                    id: ConnectionId::parse(&id)
                        .map_err(|_| StoreError::Corrupt("connections.id".into()))?,
                });
            }
            claimed
        })
    }

    async fn connection_queue(&self, now: DateTime<Utc>, cap: u32) -> StoreResult<QueueDepth> {
        let row: Option<(i64, Option<i64>)> = self
            .conn()
            .await?
            .exec_first(
                "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM connections FORCE INDEX (connections_due)
                          WHERE due_at IS NOT NULL AND due_at <= ? LIMIT ?) d),
                        (SELECT MIN(due_at) FROM connections WHERE due_at IS NOT NULL)",
                params![ms(now), cap],
            )
            .await
            .map_err(db)?;
        let (due, oldest) = row.unwrap_or_default();
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
        write_tx!(self, tx => {
            tx.exec_drop(
                "DELETE FROM connections WHERE vault_id = ? AND id = ?",
                params![vault.as_str(), id.as_str()],
            )
            .await
            .map_err(db)?;
            let deleted = tx.affected_rows() == 1;
            if deleted {
                write_audit(&mut tx, &audit).await?;
                write_events(&mut tx, &events).await?;
            }
            deleted
        })
    }
}
