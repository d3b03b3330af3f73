//! The webhook delivery worker: takes due deliveries from the outbox (a claim moves
//! each one's due time forward, so one process sends it, and a process killed mid-send
//! leaves it due again with the same event id), signs each with the endpoint's secret
//! (and the previous one during a rotation), sends it under the proxy's outbound
//! policy, and records the attempt and what comes next (Standard Webhooks' retry
//! schedule, about a day; a 410 disables the endpoint). No request ever waits for it.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokenwarden_store::{AttemptRecord, ClaimedDelivery, DeliveryOutcome, WebhookStore};
use tokenwarden_webhooks::{OutcomeKind, SendOutcome, Sender, WebhookSecret, next_delay, sign};
use tokio::sync::{Semaphore, watch};
use tracing::{info, warn};

use crate::Services;

/// Delivery history is kept this long.
const HISTORY_DAYS: i64 = 30;
const PRUNE_EVERY: StdDuration = StdDuration::from_secs(3600);
const GAUGE_EVERY: StdDuration = StdDuration::from_secs(15);
const QUEUE_COUNT_CAP: u32 = 100_000;

fn claim_owner() -> String {
    crate::random_hex_id::<12>("")
}

fn attempt_id() -> String {
    crate::random_hex_id::<12>("att_")
}

impl Services {
    /// Whether this process runs the background workers.
    pub fn background_enabled(&self) -> bool {
        self.config.lifecycle.background
    }

    /// Runs the delivery worker until `stop` turns true.
    pub async fn run_delivery_worker(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let settings = self.config.lifecycle.clone();
        let sender = match Sender::new(self.config.allow_loopback_providers) {
            Ok(sender) => Arc::new(sender),
            Err(e) => {
                warn!(error = %e, "webhook deliveries are off: the HTTP client could not be built");
                return;
            }
        };
        let permits = Arc::new(Semaphore::new(settings.delivery_concurrency.max(1)));
        let tick = StdDuration::from_millis(settings.tick_ms.max(10));
        let owner = claim_owner();
        let mut last_prune: Option<std::time::Instant> = None;
        let mut last_gauge: Option<std::time::Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            if last_gauge.is_none_or(|at| at.elapsed() >= GAUGE_EVERY) {
                self.update_delivery_gauge().await;
                last_gauge = Some(std::time::Instant::now());
            }
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                let before = self.clock.now() - Duration::days(HISTORY_DAYS);
                match self.webhooks().prune_webhook_history(before).await {
                    Ok(0) => {}
                    Ok(n) => info!(events = n, "pruned webhook history older than 30 days"),
                    Err(e) => warn!(error = %e, "could not prune webhook history"),
                }
                last_prune = Some(std::time::Instant::now());
            }
            let now = self.clock.now();
            let claim_until =
                now + Duration::seconds(i64::try_from(settings.claim_secs).unwrap_or(120));
            let claimed = match self
                .webhooks()
                .claim_deliveries(now, settings.batch, &owner, claim_until)
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    warn!(error = %e, "could not read the webhook outbox");
                    Vec::new()
                }
            };
            let full = claimed.len() >= settings.batch as usize;
            for delivery in claimed {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let me = self.clone();
                let sender = sender.clone();
                let owner = owner.clone();
                tokio::spawn(async move {
                    me.deliver(&sender, &owner, delivery).await;
                    drop(permit);
                });
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.changed() => {}
            }
        }
        let _ = tokio::time::timeout(
            StdDuration::from_secs(20),
            permits.acquire_many(settings.delivery_concurrency.max(1) as u32),
        )
        .await;
    }

    fn webhooks(&self) -> &dyn WebhookStore {
        &*self.store
    }

    async fn update_delivery_gauge(&self) {
        let now = self.clock.now();
        match self.webhooks().delivery_queue(now, QUEUE_COUNT_CAP).await {
            Ok(depth) => {
                let overdue = depth
                    .oldest_due
                    .map_or(0.0, |o| (now - o).num_milliseconds().max(0) as f64 / 1000.0);
                self.lifecycle_metrics
                    .queue("webhook_deliveries", depth.due, overdue);
            }
            Err(e) => warn!(error = %e, "could not measure the webhook outbox"),
        }
    }

    /// The secrets that sign now: the current one, and the previous one during a
    /// rotation's overlap.
    fn signing_secrets(
        &self,
        d: &ClaimedDelivery,
        now: DateTime<Utc>,
    ) -> Result<Vec<WebhookSecret>, String> {
        let unreadable = |_| {
            "the signing secret does not open with this server's key (was the master key or server key file changed?)".to_owned()
        };
        let mut secrets = vec![
            self.open_secret(&d.vault_id, &d.endpoint_id, &d.secret)
                .map_err(unreadable)?,
        ];
        if let (Some(previous), Some(until)) = (&d.previous_secret, d.previous_until)
            && until > now
        {
            secrets.push(
                self.open_secret(&d.vault_id, &d.endpoint_id, previous)
                    .map_err(unreadable)?,
            );
        }
        Ok(secrets)
    }

    async fn deliver(&self, sender: &Sender, owner: &str, d: ClaimedDelivery) {
        let now = self.clock.now();
        let sent = match self.signing_secrets(&d, now) {
            Ok(secrets) => {
                let timestamp = now.timestamp();
                let refs: Vec<&WebhookSecret> = secrets.iter().collect();
                let signature = sign(&d.event_id, timestamp, d.payload.as_bytes(), &refs);
                sender
                    .send(&d.url, &d.event_id, timestamp, &d.payload, &signature)
                    .await
            }
            Err(error) => SendOutcome {
                status_code: None,
                error: Some(error),
                kind: OutcomeKind::Retry,
            },
        };
        let answered = self.clock.now();
        let attempt = d.attempts.saturating_add(1);
        let (outcome, label) = match sent.kind {
            OutcomeKind::Delivered => (DeliveryOutcome::Delivered, "delivered"),
            OutcomeKind::Gone => (
                DeliveryOutcome::EndpointGone {
                    reason: "the receiver answered 410 Gone: the endpoint was disabled".into(),
                },
                "gone",
            ),
            OutcomeKind::Retry => match next_delay(attempt) {
                Some(delay) => (
                    DeliveryOutcome::Retry {
                        next_attempt_at: answered
                            + Duration::from_std(delay).unwrap_or(Duration::hours(1)),
                    },
                    "retry",
                ),
                None => (DeliveryOutcome::GaveUp, "gave_up"),
            },
        };
        let next_attempt_at = match &outcome {
            DeliveryOutcome::Retry { next_attempt_at } => Some(*next_attempt_at),
            _ => None,
        };
        let record = AttemptRecord {
            id: attempt_id(),
            endpoint_id: d.endpoint_id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            attempt,
            status_code: sent.status_code,
            error: sent.error.clone(),
            at: answered,
            next_attempt_at,
        };
        let latency = (answered - d.event_created_at).num_milliseconds().max(0) as f64 / 1000.0;
        self.lifecycle_metrics.delivery(label, latency);
        match label {
            "gone" => {
                warn!(webhook.id = %d.endpoint_id, event.id = %d.event_id, "the receiver answered 410 Gone: endpoint disabled, its pending deliveries dropped")
            }
            "gave_up" => {
                warn!(webhook.id = %d.endpoint_id, event.id = %d.event_id, attempts = attempt, "webhook delivery given up after the last retry")
            }
            "retry" => {
                info!(webhook.id = %d.endpoint_id, event.id = %d.event_id, attempt, status = ?sent.status_code, error = ?sent.error, "webhook delivery failed; retrying later")
            }
            _ => {
                info!(webhook.id = %d.endpoint_id, event.id = %d.event_id, event.type = %d.event_type, attempt, "webhook delivered")
            }
        }
        match self
            .webhooks()
            .finish_delivery(&d.event_id, &d.endpoint_id, owner, record, outcome)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                warn!(event.id = %d.event_id, "a delivery's claim ran out before it finished; it may be sent again (same webhook-id)")
            }
            Err(e) => {
                warn!(error = %e, event.id = %d.event_id, "could not record a delivery; it is sent again after its claim (same webhook-id)")
            }
        }
    }
}
