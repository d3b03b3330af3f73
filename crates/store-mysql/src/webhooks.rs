//! [`WebhookStore`] on MySQL/MariaDB: endpoints and their subscriptions here, the
//! outbox (events, deliveries, claims, the attempt log) in [`outbox`].

mod outbox;

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mysql_async::Transaction;
use mysql_async::prelude::Queryable;
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

use crate::MysqlStore;
use crate::audit::write_audit;
use crate::convert::{db, ms, params, sql_error};
use crate::cursor::all;
use crate::pool::write_tx;

pub(crate) use outbox::write_events;

/// A vault's endpoints (one of them when `id` is given), oldest first, with their
/// subscriptions. Callers that need both reads to agree run them in one transaction.
async fn endpoints(
    q: &mut impl Queryable,
    vault: &str,
    id: Option<&str>,
) -> StoreResult<Vec<WebhookEndpointRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM webhook_endpoints w
             WHERE w.vault_id = ? AND (? IS NULL OR w.id = ?)
             ORDER BY w.created_at, w.id",
            Columns::select(Dialect::Mysql, &[&WEBHOOK_COLUMNS])
        )
    });
    static TYPES: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM webhook_endpoint_events s
             JOIN webhook_endpoints w ON w.id = s.endpoint_id
             WHERE w.vault_id = ? AND (? IS NULL OR w.id = ?)
             ORDER BY s.endpoint_id, s.type",
            Columns::select(Dialect::Mysql, &[&SUBSCRIPTION_COLUMNS])
        )
    });
    let rows = all(q, &TYPES, params![vault, id, id], subscription).await?;
    let mut types = group_subscriptions(rows);
    all(q, &SQL, params![vault, id, id], |c| {
        webhook_endpoint(c, |id| types.remove(id).unwrap_or_default())
    })
    .await
}

/// Replaces an endpoint's subscription rows with `events` (none for every type).
async fn write_subscriptions(
    tx: &mut Transaction<'static>,
    id: &str,
    events: Option<&[String]>,
) -> StoreResult<()> {
    tx.exec_drop(
        "DELETE FROM webhook_endpoint_events WHERE endpoint_id = ?",
        params![id],
    )
    .await
    .map_err(db)?;
    let types = subscribed_types(events);
    if !types.is_empty() {
        tx.exec_batch(
            "INSERT INTO webhook_endpoint_events (endpoint_id, type) VALUES (?, ?)",
            types.iter().map(|t| params![id, t.as_str()]),
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

async fn update_endpoint(
    tx: &mut Transaction<'static>,
    vault: &VaultId,
    id: &str,
    u: &WebhookEndpointUpdate,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    tx.exec_drop(
        "UPDATE webhook_endpoints SET
            url = coalesce(?, url),
            description = CASE WHEN ? THEN ? ELSE description END,
            all_events = coalesce(?, all_events),
            disabled_reason = CASE WHEN ? = 1 THEN NULL ELSE disabled_reason END,
            enabled = coalesce(?, enabled),
            updated_at = ?
         WHERE vault_id = ? AND id = ?",
        params![
            u.url.as_deref(),
            u.description.is_some(),
            u.description.clone().flatten(),
            u.events.as_ref().map(Option::is_none),
            u.enabled,
            u.enabled,
            ms(at),
            vault.as_str(),
            id
        ],
    )
    .await
    .map_err(db)?;
    // The URL options make this the rows matched, changed or not.
    if tx.affected_rows() == 0 {
        return Ok(false);
    }
    if let Some(events) = &u.events {
        write_subscriptions(tx, id, events.as_deref()).await?;
    }
    let sql = match u.enabled {
        // Parked: off the due index, so a disabled endpoint's backlog is not read by
        // every claim.
        Some(false) => {
            "UPDATE webhook_deliveries SET next_attempt_at = NULL, updated_at = ?
             WHERE endpoint_id = ? AND state = 'pending'"
        }
        Some(true) => {
            "UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ?
             WHERE endpoint_id = ? AND state = 'pending' AND next_attempt_at IS NULL"
        }
        None => return Ok(true),
    };
    let p = if u.enabled == Some(true) {
        params![ms(at), ms(at), id]
    } else {
        params![ms(at), id]
    };
    tx.exec_drop(sql, p).await.map_err(db)?;
    Ok(true)
}

#[async_trait]
impl WebhookStore for MysqlStore {
    async fn create_webhook(
        &self,
        e: NewWebhookEndpoint,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        write_tx!(self, tx => {
            tx.exec_drop(
                "INSERT INTO webhook_endpoints (id, vault_id, url, description, all_events, enabled, disabled_reason, secret, previous_secret, previous_until, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, 1, NULL, ?, NULL, NULL, ?, ?)",
                params![
                    e.id.as_str(),
                    e.vault_id.as_str(),
                    e.url.as_str(),
                    e.description.as_deref(),
                    e.events.is_none(),
                    e.secret.as_bytes(),
                    ms(e.at),
                    ms(e.at)
                ],
            )
            .await
            .map_err(sql_error("webhook"))?;
            write_subscriptions(&mut tx, &e.id, e.events.as_deref()).await?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn list_webhooks(&self, vault: &VaultId) -> StoreResult<Vec<WebhookEndpointRecord>> {
        write_tx!(self, tx => {
            endpoints(&mut tx, vault.as_str(), None).await?
        })
    }

    async fn webhook(
        &self,
        vault: &VaultId,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpointRecord>> {
        let found = write_tx!(self, tx => {
            endpoints(&mut tx, vault.as_str(), Some(id)).await?
        })?;
        Ok(found.into_iter().next())
    }

    async fn update_webhook(
        &self,
        vault: &VaultId,
        id: &str,
        update: WebhookEndpointUpdate,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<Option<WebhookEndpointRecord>> {
        write_tx!(self, tx => {
            if update_endpoint(&mut tx, vault, id, &update, at).await? {
                write_audit(&mut tx, &audit).await?;
                endpoints(&mut tx, vault.as_str(), Some(id)).await?.into_iter().next()
            } else {
                None
            }
        })
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
        write_tx!(self, tx => {
            // MySQL assigns left to right: previous_secret takes the old secret first.
            tx.exec_drop(
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = ?,
                    secret = ?, updated_at = ?
                 WHERE vault_id = ? AND id = ?",
                params![
                    ms(previous_until),
                    secret.as_bytes(),
                    ms(at),
                    vault.as_str(),
                    id
                ],
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

    async fn delete_webhook(
        &self,
        vault: &VaultId,
        id: &str,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        write_tx!(self, tx => {
            // Subscriptions, deliveries and the log go by their foreign keys.
            tx.exec_drop(
                "DELETE FROM webhook_endpoints WHERE vault_id = ? AND id = ?",
                params![vault.as_str(), id],
            )
            .await
            .map_err(db)?;
            let deleted = tx.affected_rows() == 1;
            if deleted {
                write_audit(&mut tx, &audit).await?;
            }
            deleted
        })
    }

    async fn emit_events(&self, events: &[NewEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        write_tx!(self, tx => {
            write_events(&mut tx, events).await?;
        })
    }

    async fn emit_event_to(&self, event: NewEvent, endpoint_id: &str) -> StoreResult<bool> {
        write_tx!(self, tx => {
            outbox::write_event_to(&mut tx, &event, endpoint_id).await?
        })
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
        write_tx!(self, tx => {
            outbox::claim(&mut tx, now, limit, owner, claim_until).await?
        })
    }

    async fn finish_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        owner: &str,
        attempt: AttemptRecord,
        outcome: DeliveryOutcome,
    ) -> StoreResult<bool> {
        write_tx!(self, tx => {
            outbox::finish(&mut tx, event_id, endpoint_id, owner, &attempt, &outcome).await?
        })
    }

    async fn list_attempts(
        &self,
        vault: &VaultId,
        endpoint_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<AttemptRecord>> {
        outbox::attempts(&mut self.conn().await?, vault.as_str(), endpoint_id, limit).await
    }

    async fn delivery_queue(&self, now: DateTime<Utc>, cap: u32) -> StoreResult<QueueDepth> {
        outbox::queue(&mut self.conn().await?, now, cap).await
    }

    async fn prune_webhook_history(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        write_tx!(self, tx => {
            outbox::prune(&mut tx, before).await?
        })
    }
}
