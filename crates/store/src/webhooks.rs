//! Webhook endpoints, the events emitted for a vault, and the durable outbox that
//! delivers them (one row per event and endpoint, claimed by one process at a time).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenwarden_domain::VaultId;

use crate::audit::records::NewAuditRecord;
use crate::error::{StoreError, StoreResult};
use crate::rows::{Columns, Cursor};
use crate::secret::Ciphertext;

/// An event to deliver to every enabled endpoint of its vault that subscribed to its
/// type. Written in the same transaction as the change it reports, where the store
/// method takes events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// `msg_...`: the `webhook-id` of every delivery and retry of this event.
    pub id: String,
    pub vault_id: VaultId,
    pub event_type: String,
    /// The JSON body exactly as it is signed and sent. Ids and words only.
    pub payload: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct WebhookEndpointRecord {
    pub id: String,
    pub vault_id: VaultId,
    pub url: String,
    pub description: Option<String>,
    /// `None`: every event type. Sorted, each type once.
    pub events: Option<Vec<String>>,
    pub enabled: bool,
    /// Why the server disabled it (the receiver answered 410), in words.
    pub disabled_reason: Option<String>,
    /// The signing secret under the server key.
    pub secret: Ciphertext,
    /// The secret before the last rotation, still signing until `previous_until`.
    pub previous_secret: Option<Ciphertext>,
    pub previous_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewWebhookEndpoint {
    pub id: String,
    pub vault_id: VaultId,
    pub url: String,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub secret: Ciphertext,
    pub at: DateTime<Utc>,
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookEndpointUpdate {
    pub url: Option<String>,
    /// `Some(None)`: every event type from now on.
    pub events: Option<Option<Vec<String>>>,
    /// Disabling parks the endpoint's pending deliveries (no longer due); enabling
    /// makes them due at once and clears `disabled_reason`.
    pub enabled: Option<bool>,
    pub description: Option<Option<String>>,
}

/// A claimed delivery with everything needed to send it: one query.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub event_id: String,
    pub endpoint_id: String,
    pub vault_id: VaultId,
    pub event_type: String,
    pub payload: String,
    pub event_created_at: DateTime<Utc>,
    /// Attempts made before this one.
    pub attempts: u32,
    pub url: String,
    pub secret: Ciphertext,
    pub previous_secret: Option<Ciphertext>,
    pub previous_until: Option<DateTime<Utc>>,
}

/// One attempt in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
    /// When the next attempt is due, if there is one.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx: done.
    Delivered,
    /// Try again at this time.
    Retry { next_attempt_at: DateTime<Utc> },
    /// Retries exhausted: given up.
    GaveUp,
    /// The receiver answered 410: the endpoint is disabled with this reason and every
    /// pending delivery to it is given up.
    EndpointGone { reason: String },
}

/// The outbox's state, for metrics: a range over the due index, never a table scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Rows due at `now` (up to the counting cap the caller passed).
    pub due: u64,
    /// The oldest due time among them.
    pub oldest_due: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook(
        &self,
        endpoint: NewWebhookEndpoint,
        audit: NewAuditRecord,
    ) -> StoreResult<()>;
    /// A vault's endpoints, oldest first.
    async fn list_webhooks(&self, vault: &VaultId) -> StoreResult<Vec<WebhookEndpointRecord>>;
    async fn webhook(
        &self,
        vault: &VaultId,
        id: &str,
    ) -> StoreResult<Option<WebhookEndpointRecord>>;
    /// `None` when the endpoint does not exist in the vault.
    async fn update_webhook(
        &self,
        vault: &VaultId,
        id: &str,
        update: WebhookEndpointUpdate,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<Option<WebhookEndpointRecord>>;
    /// Makes `secret` the signing secret and keeps the old one signing until
    /// `previous_until`. `false` when the endpoint does not exist.
    async fn rotate_webhook_secret(
        &self,
        vault: &VaultId,
        id: &str,
        secret: Ciphertext,
        previous_until: DateTime<Utc>,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool>;
    /// Removes the endpoint, its deliveries and its log. `false` when absent.
    async fn delete_webhook(
        &self,
        vault: &VaultId,
        id: &str,
        audit: NewAuditRecord,
    ) -> StoreResult<bool>;
    /// Writes events (one transaction) and a pending delivery for each enabled,
    /// subscribed endpoint of their vault, due at the event's time.
    async fn emit_events(&self, events: &[NewEvent]) -> StoreResult<()>;
    /// Writes `event` with one pending delivery to `endpoint_id` only, whatever its
    /// filter (`webhook.test`). `false` when the endpoint is not in the event's vault
    /// (nothing is written then). A disabled endpoint's delivery is parked until it is
    /// enabled again, as its other pending deliveries are.
    async fn emit_event_to(&self, event: NewEvent, endpoint_id: &str) -> StoreResult<bool>;
    /// Claims up to `limit` pending deliveries due at `now` (oldest first) for `owner`:
    /// each one's `next_attempt_at` moves to `claim_until` by a compare-and-set, so a
    /// delivery is claimed by one process, and one killed mid-delivery leaves it due
    /// again at `claim_until`.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        owner: &str,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records an attempt in the log and applies `outcome`, if `owner` still holds the
    /// claim (`false` otherwise: the attempt is still logged). The log row belongs to
    /// the delivery named by `event_id` and `endpoint_id`, whatever `attempt` says; once
    /// the endpoint is deleted nothing is logged. A retry of a delivery whose endpoint
    /// was disabled meanwhile is parked rather than due.
    async fn finish_delivery(
        &self,
        event_id: &str,
        endpoint_id: &str,
        owner: &str,
        attempt: AttemptRecord,
        outcome: DeliveryOutcome,
    ) -> StoreResult<bool>;
    /// An endpoint's delivery log, newest first.
    async fn list_attempts(
        &self,
        vault: &VaultId,
        endpoint_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<AttemptRecord>>;
    /// How many deliveries are due at `now` (counting at most `cap`), and the oldest.
    /// Only pending deliveries of enabled endpoints have a `next_attempt_at` (every
    /// write here keeps it so), so this reads the due index alone.
    async fn delivery_queue(&self, now: DateTime<Utc>, cap: u32) -> StoreResult<QueueDepth>;
    /// Deletes events created before `before` that have no pending delivery, with their
    /// deliveries, and log rows older than `before`. Answers how many events went.
    async fn prune_webhook_history(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// The columns [`webhook_endpoint`] reads, from `webhook_endpoints w`; the subscribed
/// types come from `webhook_endpoint_events` in a second query.
pub const WEBHOOK_COLUMNS: Columns = Columns(&[
    "w.id",
    "w.vault_id",
    "w.url",
    "w.description",
    "w.all_events",
    "w.enabled",
    "w.disabled_reason",
    "w.secret",
    "w.previous_secret",
    "w.previous_until",
    "w.created_at",
    "w.updated_at",
]);

/// Maps [`WEBHOOK_COLUMNS`]; `events` is filled from the subscription rows: `types` is
/// what the backend read for this endpoint.
pub fn webhook_endpoint(
    c: &mut impl Cursor,
    types: impl FnOnce(&str) -> Vec<String>,
) -> StoreResult<WebhookEndpointRecord> {
    let id = c.text("webhook_endpoints.id")?;
    let vault_id = c.parse("webhook_endpoints.vault_id", VaultId::parse)?;
    let url = c.text("webhook_endpoints.url")?;
    let description = c.opt_text("webhook_endpoints.description")?;
    let all_events = c.flag("webhook_endpoints.all_events")?;
    let events = (!all_events).then(|| types(&id));
    Ok(WebhookEndpointRecord {
        id,
        vault_id,
        url,
        description,
        events,
        enabled: c.flag("webhook_endpoints.enabled")?,
        disabled_reason: c.opt_text("webhook_endpoints.disabled_reason")?,
        secret: c.bytes("webhook_endpoints.secret")?.into(),
        previous_secret: c
            .opt_bytes("webhook_endpoints.previous_secret")?
            .map(Into::into),
        previous_until: c.opt_time("webhook_endpoints.previous_until")?,
        created_at: c.time("webhook_endpoints.created_at")?,
        updated_at: c.time("webhook_endpoints.updated_at")?,
    })
}

/// The columns [`subscription`] reads, from `webhook_endpoint_events s`.
pub const SUBSCRIPTION_COLUMNS: Columns = Columns(&["s.endpoint_id", "s.type"]);

/// One subscription row: the endpoint's id and an event type.
pub fn subscription(c: &mut impl Cursor) -> StoreResult<(String, String)> {
    Ok((
        c.text("webhook_endpoint_events.endpoint_id")?,
        c.text("webhook_endpoint_events.type")?,
    ))
}

/// Subscription rows by endpoint, for [`webhook_endpoint`]'s `types` (each list in the
/// order the rows came, which the backends make type order).
pub fn group_subscriptions(rows: Vec<(String, String)>) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (endpoint, event_type) in rows {
        out.entry(endpoint).or_default().push(event_type);
    }
    out
}

/// The subscription rows to store for `events`: sorted, each type once. `None` (every
/// type) stores none.
pub fn subscribed_types(events: Option<&[String]>) -> Vec<String> {
    let mut types = events.map(<[String]>::to_vec).unwrap_or_default();
    types.sort();
    types.dedup();
    types
}

/// The columns [`claimed_delivery`] reads: `webhook_deliveries d` joined with
/// `webhook_events e` and `webhook_endpoints w`.
pub const CLAIMED_DELIVERY_COLUMNS: Columns = Columns(&[
    "d.event_id",
    "d.endpoint_id",
    "e.vault_id",
    "e.type",
    "e.payload",
    "e.created_at",
    "d.attempts",
    "w.url",
    "w.secret",
    "w.previous_secret",
    "w.previous_until",
]);

pub fn claimed_delivery(c: &mut impl Cursor) -> StoreResult<ClaimedDelivery> {
    Ok(ClaimedDelivery {
        event_id: c.text("webhook_deliveries.event_id")?,
        endpoint_id: c.text("webhook_deliveries.endpoint_id")?,
        vault_id: c.parse("webhook_events.vault_id", VaultId::parse)?,
        event_type: c.text("webhook_events.type")?,
        payload: c.text("webhook_events.payload")?,
        event_created_at: c.time("webhook_events.created_at")?,
        attempts: c.small("webhook_deliveries.attempts")?,
        url: c.text("webhook_endpoints.url")?,
        secret: c.bytes("webhook_endpoints.secret")?.into(),
        previous_secret: c
            .opt_bytes("webhook_endpoints.previous_secret")?
            .map(Into::into),
        previous_until: c.opt_time("webhook_endpoints.previous_until")?,
    })
}

/// The columns [`attempt`] reads, from `webhook_attempts t`.
pub const ATTEMPT_COLUMNS: Columns = Columns(&[
    "t.id",
    "t.endpoint_id",
    "t.event_id",
    "t.type",
    "t.attempt",
    "t.status_code",
    "t.error",
    "t.at",
    "t.next_attempt_at",
]);

pub fn attempt(c: &mut impl Cursor) -> StoreResult<AttemptRecord> {
    Ok(AttemptRecord {
        id: c.text("webhook_attempts.id")?,
        endpoint_id: c.text("webhook_attempts.endpoint_id")?,
        event_id: c.text("webhook_attempts.event_id")?,
        event_type: c.text("webhook_attempts.type")?,
        attempt: c.small("webhook_attempts.attempt")?,
        status_code: match c.opt_int("webhook_attempts.status_code")? {
            None => None,
            Some(code) => Some(
                u16::try_from(code)
                    .map_err(|_| StoreError::Corrupt("webhook_attempts.status_code".into()))?,
            ),
        },
        error: c.opt_text("webhook_attempts.error")?,
        at: c.time("webhook_attempts.at")?,
        next_attempt_at: c.opt_time("webhook_attempts.next_attempt_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribed_types_are_sorted_once_each() {
        let events = vec!["b.x".to_owned(), "a.y".to_owned(), "b.x".to_owned()];
        assert_eq!(subscribed_types(Some(&events)), vec!["a.y", "b.x"]);
        assert!(subscribed_types(None).is_empty());
    }

    #[test]
    fn subscriptions_group_by_endpoint_in_row_order() {
        let rows = vec![
            ("we_1".to_owned(), "a".to_owned()),
            ("we_2".to_owned(), "c".to_owned()),
            ("we_1".to_owned(), "b".to_owned()),
        ];
        let grouped = group_subscriptions(rows);
        assert_eq!(grouped["we_1"], vec!["a", "b"]);
        assert_eq!(grouped["we_2"], vec!["c"]);
    }
}
