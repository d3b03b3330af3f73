//! [`WebhookStore`] on PostgreSQL: endpoints and their subscriptions here, the outbox
//! (events, deliveries, claims, the attempt log) in [`outbox`].

mod outbox;

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
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

use crate::PgStore;
use crate::audit::write_audit;
use crate::convert::{changed_one, db, ms, sql_error};
use crate::cursor::all;

pub(crate) use outbox::write_events;

/// A vault's endpoints (one of them when `id` is given), oldest first, with their
/// subscriptions. Callers that need both reads to agree run them in one transaction.
async fn endpoints(
    c: &impl GenericClient,
    vault: &str,
    id: Option<&str>,
) -> StoreResult<Vec<WebhookEndpointRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM webhook_endpoints w
             WHERE w.vault_id = $1 AND ($2::text IS NULL OR w.id = $2)
             ORDER BY w.created_at, w.id",
            Columns::select(Dialect::Postgres, &[&WEBHOOK_COLUMNS])
        )
    });
    static TYPES: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM webhook_endpoint_events s
             JOIN webhook_endpoints w ON w.id = s.endpoint_id
             WHERE w.vault_id = $1 AND ($2::text IS NULL OR w.id = $2)
             ORDER BY s.endpoint_id, s.type",
            Columns::select(Dialect::Postgres, &[&SUBSCRIPTION_COLUMNS])
        )
    });
    let st = c.prepare_cached(&TYPES).await.map_err(db)?;
    let rows = c.query(&st, &[&vault, &id]).await.map_err(db)?;
    let mut types = group_subscriptions(all(&rows, |c| subscription(c))?);
    let st = c.prepare_cached(&SQL).await.map_err(db)?;
    let rows = c.query(&st, &[&vault, &id]).await.map_err(db)?;
    all(&rows, |c| {
        webhook_endpoint(c, |id| types.remove(id).unwrap_or_default())
    })
}

/// Replaces an endpoint's subscription rows with `events` (none for every type).
async fn write_subscriptions(
    tx: &Transaction<'_>,
    id: &str,
    events: Option<&[String]>,
) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM webhook_endpoint_events WHERE endpoint_id = $1",
        &[&id],
    )
    .await
    .map_err(db)?;
    let types = subscribed_types(events);
    if !types.is_empty() {
        tx.execute(
            "INSERT INTO webhook_endpoint_events (endpoint_id, type) SELECT $1, t FROM unnest($2::text[]) t",
            &[&id, &types],
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

async fn update_endpoint(
    tx: &Transaction<'_>,
    vault: &VaultId,
    id: &str,
    u: &WebhookEndpointUpdate,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let changed = tx
        .execute(
            "UPDATE webhook_endpoints SET
                url = coalesce($3, url),
                description = CASE WHEN $4::boolean THEN $5::text ELSE description END,
                all_events = coalesce($6, all_events),
                enabled = coalesce($7, enabled),
                disabled_reason = CASE WHEN $7::boolean THEN NULL ELSE disabled_reason END,
                updated_at = $8
             WHERE vault_id = $1 AND id = $2",
            &[
                &vault.as_str(),
                &id,
                &u.url,
                &u.description.is_some(),
                &u.description.clone().flatten(),
                &u.events.as_ref().map(Option::is_none),
                &u.enabled,
                &ms(at),
            ],
        )
        .await
        .map_err(db)?;
    if !changed_one(changed) {
        return Ok(false);
    }
    if let Some(events) = &u.events {
        write_subscriptions(tx, id, events.as_deref()).await?;
    }
    let sql = match u.enabled {
        // Parked: off the due index, so a disabled endpoint's backlog is not read by
        // every claim.
        Some(false) => {
            "UPDATE webhook_deliveries SET next_attempt_at = NULL, updated_at = $2
             WHERE endpoint_id = $1 AND state = 'pending'"
        }
        Some(true) => {
            "UPDATE webhook_deliveries SET next_attempt_at = $2, updated_at = $2
             WHERE endpoint_id = $1 AND state = 'pending' AND next_attempt_at IS NULL"
        }
        None => return Ok(true),
    };
    tx.execute(sql, &[&id, &ms(at)]).await.map_err(db)?;
    Ok(true)
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_webhook(
        &self,
        e: NewWebhookEndpoint,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        tx.execute(
            "INSERT INTO webhook_endpoints (id, vault_id, url, description, all_events, enabled, disabled_reason, secret, previous_secret, previous_until, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, TRUE, NULL, $6, NULL, NULL, $7, $7)",
            &[
                &e.id,
                &e.vault_id.as_str(),
                &e.url,
                &e.description,
                &e.events.is_none(),
                &e.secret.as_bytes(),
                &ms(e.at),
            ],
        )
        .await
        .map_err(sql_error("webhook"))?;
        write_subscriptions(&tx, &e.id, e.events.as_deref()).await?;
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn list_webhooks(&self, vault: &VaultId) -> StoreResult<Vec<WebhookEndpointRecord>> {
        let mut c = self.pool.client().await?;
        let tx = c
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let list = endpoints(&tx, vault.as_str(), None).await?;
        tx.commit().await.map_err(db)?;
        Ok(list)
    }

    async fn webhook(
        &self,
        vault: &VaultId,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpointRecord>> {
        let mut c = self.pool.client().await?;
        let tx = c
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let found = endpoints(&tx, vault.as_str(), Some(id)).await?;
        tx.commit().await.map_err(db)?;
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
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        if !update_endpoint(&tx, vault, id, &update, at).await? {
            return Ok(None);
        }
        write_audit(&tx, &audit).await?;
        let record = endpoints(&tx, vault.as_str(), Some(id)).await?;
        tx.commit().await.map_err(db)?;
        Ok(record.into_iter().next())
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
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let changed = tx
            .execute(
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = $3,
                    secret = $4, updated_at = $5
                 WHERE vault_id = $1 AND id = $2",
                &[
                    &vault.as_str(),
                    &id,
                    &ms(previous_until),
                    &secret.as_bytes(),
                    &ms(at),
                ],
            )
            .await
            .map_err(db)?;
        if !changed_one(changed) {
            return Ok(false);
        }
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn delete_webhook(
        &self,
        vault: &VaultId,
        id: &str,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        // Subscriptions, deliveries and the log go by their foreign keys.
        let deleted = tx
            .execute(
                "DELETE FROM webhook_endpoints WHERE vault_id = $1 AND id = $2",
                &[&vault.as_str(), &id],
            )
            .await
            .map_err(db)?;
        if !changed_one(deleted) {
            return Ok(false);
        }
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn emit_events(&self, events: &[NewEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        write_events(&tx, events).await?;
        tx.commit().await.map_err(db)
    }

    async fn emit_event_to(&self, event: NewEvent, endpoint_id: &str) -> StoreResult<bool> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        if !outbox::write_event_to(&tx, &event, endpoint_id).await? {
            return Ok(false);
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
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
        outbox::claim(&self.pool, now, limit, owner, claim_until).await
    }

    async fn finish_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        owner: &str,
        attempt: AttemptRecord,
        outcome: DeliveryOutcome,
    ) -> StoreResult<bool> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let held = outbox::finish(&tx, event_id, endpoint_id, owner, &attempt, &outcome).await?;
        tx.commit().await.map_err(db)?;
        Ok(held)
    }

    async fn list_attempts(
        &self,
        vault: &VaultId,
        endpoint_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<AttemptRecord>> {
        outbox::attempts(&self.pool, vault.as_str(), endpoint_id, limit).await
    }

    async fn delivery_queue(&self, now: DateTime<Utc>, cap: u32) -> StoreResult<QueueDepth> {
        outbox::queue(&self.pool, now, cap).await
    }

    async fn prune_webhook_history(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let pruned = outbox::prune(&tx, before).await?;
        tx.commit().await.map_err(db)?;
        Ok(pruned)
    }
}
