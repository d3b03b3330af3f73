//! The background lifecycle worker: takes due connections from the queue in the
//! database (`due_at`, indexed) and tends each one: refreshes a managed vault's
//! connection ahead of expiry or before its refresh token dies of idleness, retries a
//! failing one with backoff, sends `connection.expiring` before a token nothing can
//! refresh expires, and marks it `expired` when it does.
//!
//! Nothing here scans the table: each look is a range over the due index from its
//! oldest row, `batch` rows at most. A claim moves the row's `due_at` forward by a
//! compare-and-set, so one process tends a connection at a time; the refresh itself is
//! still under the connection's lease and version fence, so a clock jump, a restart or
//! a second replica cannot refresh a connection twice for one due time.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokenwarden_store::{
    ConnectionForToken, ConnectionStatus, DueConnection, HealthChange, NewEvent, Schedule,
};
use tokenwarden_webhooks::EventType;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info, warn};

use crate::audit::{RequestContext, record};
use crate::refresh_provider::KeyHolder;
use crate::{ServiceError, Services};

/// The queue depth is counted up to this many rows (a bounded index range).
const QUEUE_COUNT_CAP: u32 = 100_000;
/// How often the queue gauges are refreshed.
const GAUGE_EVERY: StdDuration = StdDuration::from_secs(15);

impl Services {
    /// Runs the connection worker until `stop` turns true. Tends at most
    /// `lifecycle.concurrency` connections at once.
    pub async fn run_connection_worker(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let settings = self.config.lifecycle.clone();
        let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let tick = StdDuration::from_millis(settings.tick_ms.max(10));
        let mut last_gauge: Option<std::time::Instant> = None;
        info!(
            tick_ms = settings.tick_ms,
            concurrency = settings.concurrency,
            background_refresh = self.master_key.is_some(),
            "connection lifecycle worker started"
        );
        loop {
            if *stop.borrow() {
                break;
            }
            if last_gauge.is_none_or(|at| at.elapsed() >= GAUGE_EVERY) {
                self.update_connection_gauge().await;
                last_gauge = Some(std::time::Instant::now());
            }
            let claimed = self.claim_connections(&settings).await;
            let full = claimed.len() >= settings.batch as usize;
            for due in claimed {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    me.tend(due).await;
                    drop(permit);
                });
            }
            if full {
                // More is due: look again at once, as soon as a permit frees.
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = stop.changed() => {}
            }
        }
        // Let the connections being tended finish (bounded by the refresh lease).
        let _ = tokio::time::timeout(
            StdDuration::from_secs(self.config.refresh_lease_secs),
            permits.acquire_many(settings.concurrency.max(1) as u32),
        )
        .await;
        info!("connection lifecycle worker stopped");
    }

    async fn claim_connections(&self, settings: &crate::LifecycleSettings) -> Vec<DueConnection> {
        let now = self.clock.now();
        let claim_until =
            now + Duration::seconds(i64::try_from(settings.claim_secs).unwrap_or(120));
        match self
            .connections_store()
            .claim_due_connections(now, settings.batch, claim_until)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                warn!(error = %e, "could not read the connection queue");
                Vec::new()
            }
        }
    }

    async fn update_connection_gauge(&self) {
        let now = self.clock.now();
        match self
            .connections_store()
            .connection_queue(now, QUEUE_COUNT_CAP)
            .await
        {
            Ok(depth) => {
                let overdue = depth
                    .oldest_due
                    .map_or(0.0, |o| (now - o).num_milliseconds().max(0) as f64 / 1000.0);
                self.lifecycle_metrics
                    .queue("connections", depth.due, overdue);
            }
            Err(e) => warn!(error = %e, "could not measure the connection queue"),
        }
    }

    /// Does what a claimed connection is due for.
    async fn tend(&self, due: DueConnection) {
        let row = match self
            .connections_store()
            .connection_for_token(&due.vault_id, &due.id)
            .await
        {
            Ok(Some(row)) => row,
            Ok(None) => return, // deleted since it was claimed
            Err(e) => {
                warn!(error = %e, connection.id = %due.id, "could not read a due connection; it stays due");
                return;
            }
        };
        let now = self.clock.now();
        let c = &row.connection;
        let outcome = match c.status {
            ConnectionStatus::NeedsReauth
            | ConnectionStatus::Expired
            | ConnectionStatus::Revoked => {
                // Nothing to do until someone connects again: leave the queue.
                self.reschedule(&row, Schedule::default(), now).await
            }
            _ if c.has_refresh => self.tend_refreshable(&row, now).await,
            _ => self.tend_unrefreshable(&row, now).await,
        };
        if let Err(e) = outcome {
            warn!(error = %e, connection.id = %c.id, "tending a due connection failed; it is looked at again later");
        }
    }

    async fn tend_refreshable(
        &self,
        row: &ConnectionForToken,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let c = &row.connection;
        if !row.vault_managed || self.master_key.is_none() || row.master_slot.is_none() {
            // Only a key holder can refresh a zero-knowledge vault (the refresher).
            return self
                .reschedule(
                    row,
                    Schedule {
                        next_refresh_at: c.next_refresh_at,
                        due_at: None,
                    },
                    now,
                )
                .await;
        }
        if let Some(next) = c.next_refresh_at
            && next > now
        {
            // Claimed early (a stale due time): wait for the real one.
            return self
                .reschedule(
                    row,
                    Schedule {
                        next_refresh_at: Some(next),
                        due_at: Some(next),
                    },
                    now,
                )
                .await;
        }
        let dek = self.holder_data_key(KeyHolder::Master, row)?;
        let ctx = RequestContext::default();
        match self
            .refresh_coordinated(KeyHolder::Master, &dek, row.clone(), true, &ctx)
            .await
        {
            Ok(_) => {
                debug!(connection.id = %c.id, "refreshed in the background");
                Ok(())
            }
            // The refresh path recorded the health (failing or needs_reauth) and the
            // next retry; nothing more to do here.
            Err(ServiceError::NeedsReauth)
            | Err(ServiceError::ProviderUnavailable { .. })
            | Err(ServiceError::ProviderError(_)) => Ok(()),
            Err(ServiceError::AppBlocked) => {
                // A blocked app serves nothing, background refresh included; look
                // again in an hour in case it is unblocked.
                self.reschedule(
                    row,
                    Schedule {
                        next_refresh_at: c.next_refresh_at,
                        due_at: Some(now + Duration::hours(1)),
                    },
                    now,
                )
                .await
            }
            Err(e) => Err(e),
        }
    }

    async fn tend_unrefreshable(
        &self,
        row: &ConnectionForToken,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let c = &row.connection;
        let Some(expires_at) = c.expires_at else {
            return self.reschedule(row, Schedule::default(), now).await;
        };
        if expires_at <= now {
            let reason = "the access token expired and there is no refresh token";
            let event = self.connection_event(
                EventType::ConnectionExpired,
                c,
                ConnectionStatus::Expired,
                Some(reason),
                now,
            );
            let change = HealthChange {
                status: ConnectionStatus::Expired,
                status_reason: Some(reason.into()),
                schedule: Schedule::default(),
                failures: 0,
                expiring_notified_at: None,
                at: now,
            };
            let audit = self.server_audit(c, "connection.expired", now);
            if self
                .connections_store()
                .set_health(
                    &c.vault_id,
                    &c.id,
                    c.version,
                    None,
                    change,
                    Some(audit),
                    vec![event],
                )
                .await?
            {
                self.lifecycle_metrics
                    .status_change(c.status.as_str(), "expired");
                info!(connection.id = %c.id, "connection expired");
            }
            return Ok(());
        }
        if c.expiring_notified_at.is_none() && expires_at - self.expiring_notice() <= now {
            let event = self.connection_event(
                EventType::ConnectionExpiring,
                c,
                c.status,
                Some("the access token expires soon and there is no refresh token"),
                now,
            );
            return self
                .set_schedule(
                    row,
                    Schedule {
                        next_refresh_at: None,
                        due_at: Some(expires_at),
                    },
                    Some(now),
                    vec![event],
                    now,
                )
                .await;
        }
        let next = if c.expiring_notified_at.is_some() {
            expires_at
        } else {
            expires_at - self.expiring_notice()
        };
        self.reschedule(
            row,
            Schedule {
                next_refresh_at: None,
                due_at: Some(next),
            },
            now,
        )
        .await
    }

    /// Keeps the status, changes when the connection is due.
    async fn reschedule(
        &self,
        row: &ConnectionForToken,
        schedule: Schedule,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        self.set_schedule(row, schedule, None, Vec::new(), now)
            .await
    }

    async fn set_schedule(
        &self,
        row: &ConnectionForToken,
        schedule: Schedule,
        expiring_notified_at: Option<DateTime<Utc>>,
        events: Vec<NewEvent>,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        let c = &row.connection;
        let change = HealthChange {
            status: c.status,
            status_reason: c.status_reason.clone(),
            schedule,
            failures: c.failures,
            expiring_notified_at,
            at: now,
        };
        // Fenced on the version: if new tokens were written meanwhile, their own
        // schedule stands.
        self.connections_store()
            .set_health(&c.vault_id, &c.id, c.version, None, change, None, events)
            .await?;
        Ok(())
    }

    fn server_audit(
        &self,
        c: &tokenwarden_store::ConnectionRecord,
        action: &'static str,
        now: DateTime<Utc>,
    ) -> tokenwarden_store::NewAuditRecord {
        record(
            &RequestContext::default(),
            now,
            Some(&c.vault_id),
            tokenwarden_store::Actor::Anonymous,
            action,
            Some(c.id.to_string()),
            "success",
        )
    }
}
