//! [`WebhookStore`] on SQLite: endpoints and their subscriptions here, the outbox (events,
//! deliveries, claims, the attempt log) in [`outbox`].

mod outbox;

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use tokenwarden_domain::VaultId;
use tokenwarden_store::rows::{Columns, Dialect};
use tokenwarden_store::webhooks::{
    SUBSCRIPTION_COLUMNS, WEBHOOK_COLUMNS, group_subscriptions, subscribed_types, subscription,
    webhook_endpoint,
};
use tokenwarden_store::{
    AttemptRecord, Ciphertext, ClaimedDelivery, DeliveryOutcome, NewAuditRecord, NewEvent,
    NewWebhookEndpoint, QueueDepth, StoreResult, WebhookEndpointRecord, WebhookEndpointUpdate,
    WebhookStore,
};

use crate::SqliteStore;
use crate::audit::write_audit;
use crate::convert::{db, ms, savepoint, sql_error};
use crate::cursor::all;

pub(crate) use outbox::write_events;

/// A vault's endpoints (one of them when `id` is given), oldest first, with their
/// subscriptions read in the same transaction.
fn endpoints(
    conn: &Connection,
    vault: &str,
    id: Option<&str>,
) -> StoreResult<Vec<WebhookEndpointRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM webhook_endpoints w
             WHERE w.vault_id = ?1 AND (?2 IS NULL OR w.id = ?2)
             ORDER BY w.created_at, w.id",
            Columns::select(Dialect::Sqlite, &[&WEBHOOK_COLUMNS])
        )
    });
    static TYPES: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM webhook_endpoint_events s
             JOIN webhook_endpoints w ON w.id = s.endpoint_id
             WHERE w.vault_id = ?1 AND (?2 IS NULL OR w.id = ?2)
             ORDER BY s.endpoint_id, s.type",
            Columns::select(Dialect::Sqlite, &[&SUBSCRIPTION_COLUMNS])
        )
    });
    let mut st = conn.prepare_cached(&TYPES).map_err(db)?;
    let mut types = group_subscriptions(all(&mut st, params![vault, id], |c| subscription(c))?);
    let mut st = conn.prepare_cached(&SQL).map_err(db)?;
    all(&mut st, params![vault, id], |c| {
        webhook_endpoint(c, |id| types.remove(id).unwrap_or_default())
    })
}

fn endpoint(
    conn: &Connection,
    vault: &str,
    id: &str,
) -> StoreResult<Option<WebhookEndpointRecord>> {
    Ok(endpoints(conn, vault, Some(id))?.into_iter().next())
}

/// Replaces an endpoint's subscription rows with `events` (none for every type).
fn write_subscriptions(conn: &Connection, id: &str, events: Option<&[String]>) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM webhook_endpoint_events WHERE endpoint_id = ?1")
        .and_then(|mut st| st.execute([id]))
        .map_err(db)?;
    let mut insert = conn
        .prepare_cached("INSERT INTO webhook_endpoint_events (endpoint_id, type) VALUES (?1, ?2)")
        .map_err(db)?;
    for t in subscribed_types(events) {
        insert.execute(params![id, t]).map_err(db)?;
    }
    Ok(())
}

fn update_endpoint(
    conn: &Connection,
    vault: &VaultId,
    id: &str,
    u: &WebhookEndpointUpdate,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let changed = conn
        .execute(
            "UPDATE webhook_endpoints SET
                url = coalesce(?3, url),
                description = CASE WHEN ?4 THEN ?5 ELSE description END,
                all_events = coalesce(?6, all_events),
                enabled = coalesce(?7, enabled),
                disabled_reason = CASE WHEN ?7 = 1 THEN NULL ELSE disabled_reason END,
                updated_at = ?8
             WHERE vault_id = ?1 AND id = ?2",
            params![
                vault.as_str(),
                id,
                u.url,
                u.description.is_some(),
                u.description.clone().flatten(),
                u.events.as_ref().map(Option::is_none),
                u.enabled,
                ms(at)
            ],
        )
        .map_err(db)?;
    if changed == 0 {
        return Ok(false);
    }
    if let Some(events) = &u.events {
        write_subscriptions(conn, id, events.as_deref())?;
    }
    match u.enabled {
        // Parked: off the due index, so a disabled endpoint's backlog is not read by
        // every claim.
        Some(false) => conn.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = NULL, updated_at = ?2
             WHERE endpoint_id = ?1 AND state = 'pending'",
            params![id, ms(at)],
        ),
        Some(true) => conn.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = ?2, updated_at = ?2
             WHERE endpoint_id = ?1 AND state = 'pending' AND next_attempt_at IS NULL",
            params![id, ms(at)],
        ),
        None => Ok(0),
    }
    .map_err(db)?;
    Ok(true)
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(
        &self,
        e: NewWebhookEndpoint,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                tx.execute(
                    "INSERT INTO webhook_endpoints (id, vault_id, url, description, all_events, enabled, disabled_reason, secret, previous_secret, previous_until, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1, NULL, ?6, NULL, NULL, ?7, ?7)",
                    params![
                        e.id,
                        e.vault_id.as_str(),
                        e.url,
                        e.description,
                        e.events.is_none(),
                        e.secret.as_bytes(),
                        ms(e.at)
                    ],
                )
                .map_err(sql_error("webhook"))?;
                write_subscriptions(&tx, &e.id, e.events.as_deref())?;
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn list_webhooks(&self, vault: &VaultId) -> StoreResult<Vec<WebhookEndpointRecord>> {
        let vault = vault.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let tx = conn.transaction().map_err(db)?;
                endpoints(&tx, &vault, None)
            })
            .await
    }

    async fn webhook(
        &self,
        vault: &VaultId,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpointRecord>> {
        let (vault, id) = (vault.as_str().to_owned(), id.to_owned());
        self.pool
            .read(move |conn| {
                let tx = conn.transaction().map_err(db)?;
                endpoint(&tx, &vault, &id)
            })
            .await
    }

    async fn update_webhook(
        &self,
        vault: &VaultId,
        id: &str,
        update: WebhookEndpointUpdate,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<Option<WebhookEndpointRecord>> {
        let (vault, id) = (vault.clone(), id.to_owned());
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                if !update_endpoint(&tx, &vault, &id, &update, at)? {
                    return Ok(None);
                }
                write_audit(&tx, &audit)?;
                let record = endpoint(&tx, vault.as_str(), &id)?;
                tx.commit().map_err(db)?;
                Ok(record)
            })
            .await
    }

    async fn rotate_webhook_secret(
        &self,
        vault: &VaultId,
        id: &str,
        secret: Ciphertext,
        previous_until: DateTime<Utc>,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let (vault, id) = (vault.clone(), id.to_owned());
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let changed = tx
                    .execute(
                        "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = ?3,
                            secret = ?4, updated_at = ?5
                         WHERE vault_id = ?1 AND id = ?2",
                        params![
                            vault.as_str(),
                            id,
                            ms(previous_until),
                            secret.as_bytes(),
                            ms(at)
                        ],
                    )
                    .map_err(db)?;
                if changed == 0 {
                    return Ok(false);
                }
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)?;
                Ok(true)
            })
            .await
    }

    async fn delete_webhook(
        &self,
        vault: &VaultId,
        id: &str,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let (vault, id) = (vault.clone(), id.to_owned());
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                // Subscriptions, deliveries and the log go by their foreign keys.
                let deleted = tx
                    .execute(
                        "DELETE FROM webhook_endpoints WHERE vault_id = ?1 AND id = ?2",
                        params![vault.as_str(), id],
                    )
                    .map_err(db)?;
                if deleted == 0 {
                    return Ok(false);
                }
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)?;
                Ok(true)
            })
            .await
    }

    async fn emit_events(&self, events: &[NewEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let events = events.to_vec();
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                write_events(&tx, &events)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn emit_event_to(&self, event: NewEvent, endpoint_id: &str) -> StoreResult<bool> {
        let endpoint_id = endpoint_id.to_owned();
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                if !outbox::write_event_to(&tx, &event, &endpoint_id)? {
                    return Ok(false);
                }
                tx.commit().map_err(db)?;
                Ok(true)
            })
            .await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        owner: &str,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let owner = owner.to_owned();
        // A claim lost to a power cut only makes its deliveries due again sooner, which
        // at-least-once delivery allows: relaxed, like the refresh lease.
        self.pool
            .write_relaxed(move |conn| {
                let tx = savepoint(conn)?;
                let won = outbox::claim(&tx, now, limit, &owner, claim_until)?;
                tx.commit().map_err(db)?;
                Ok(won)
            })
            .await
    }

    async fn finish_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        owner: &str,
        attempt: AttemptRecord,
        outcome: DeliveryOutcome,
    ) -> StoreResult<bool> {
        let ids = (
            event_id.to_owned(),
            endpoint_id.to_owned(),
            owner.to_owned(),
        );
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let (event_id, endpoint_id, owner) = &ids;
                let held = outbox::finish(&tx, event_id, endpoint_id, owner, &attempt, &outcome)?;
                tx.commit().map_err(db)?;
                Ok(held)
            })
            .await
    }

    async fn list_attempts(
        &self,
        vault: &VaultId,
        endpoint_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<AttemptRecord>> {
        let (vault, endpoint_id) = (vault.as_str().to_owned(), endpoint_id.to_owned());
        self.pool
            .read(move |conn| outbox::attempts(conn, &vault, &endpoint_id, limit))
            .await
    }

    async fn delivery_queue(&self, now: DateTime<Utc>, cap: u32) -> StoreResult<QueueDepth> {
        self.pool
            .read(move |conn| outbox::queue(conn, now, cap))
            .await
    }

    async fn prune_webhook_history(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let pruned = outbox::prune(&tx, before)?;
                tx.commit().map_err(db)?;
                Ok(pruned)
            })
            .await
    }
}
