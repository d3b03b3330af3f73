//! Connection health: when a connection is due (a refresh ahead of expiry, a refresh
//! that keeps the refresh token from dying of idleness, a retry after a failure, the
//! `connection.expiring` notice), what a refresh outcome makes of its status, and the
//! events that say so.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde_json::Value;
use tokenwarden_oauth::RefreshSpec;
use tokenwarden_store::{ConnectionRecord, ConnectionStatus, HealthChange, NewEvent, Schedule};
use tokenwarden_webhooks::{Event, EventType};

use crate::Services;

/// Settings of the background lifecycle (refresh, expiry notices, webhook deliveries).
#[derive(Debug, Clone)]
pub struct LifecycleSettings {
    /// Whether this process runs the background workers at all.
    pub background: bool,
    /// How often the workers look at their queues when idle, in milliseconds.
    pub tick_ms: u64,
    /// Rows claimed per look.
    pub batch: u32,
    /// Connections refreshed at once by this process.
    pub concurrency: usize,
    /// `connection.expiring` is sent this long before a token without a refresh token
    /// expires (`TOKENWARDEN_EXPIRING_NOTICE_SECONDS`).
    pub expiring_notice_secs: u64,
    /// How long a claim on a due row lasts: a process killed while it works leaves the
    /// row due again after this long.
    pub claim_secs: u64,
    /// Webhook deliveries in flight at once.
    pub delivery_concurrency: usize,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            background: true,
            tick_ms: 1000,
            batch: 100,
            concurrency: 8,
            expiring_notice_secs: 24 * 3600,
            claim_secs: 120,
            delivery_concurrency: 16,
        }
    }
}

/// The longest wait between retries of a failing connection.
const MAX_BACKOFF: Duration = Duration::hours(1);
/// The first retry after a transient failure.
const FIRST_BACKOFF_SECS: i64 = 30;

/// A random part of `span`: tokens issued together are not all refreshed in the same
/// second.
fn jitter(span: Duration) -> Duration {
    let ms = span.num_milliseconds();
    if ms <= 0 {
        return Duration::zero();
    }
    Duration::milliseconds(rand::thread_rng().gen_range(0..=ms))
}

/// When tokens written `now` are next due for refresh, or `None` when nothing will
/// ever need refreshing (no refresh token, or a token that neither expires nor dies
/// of idleness).
pub(crate) fn next_refresh(
    spec: &RefreshSpec,
    expires_at: Option<DateTime<Utc>>,
    has_refresh: bool,
    skew_secs: u64,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !has_refresh {
        return None;
    }
    let skew = Duration::seconds(i64::try_from(skew_secs).unwrap_or(i64::MAX / 1000));
    // Ahead of expiry by a tenth of the token's lifetime (at least the read skew),
    // minus up to another twentieth: an hour's token is refreshed 6 to 9 minutes
    // early, a day's 2.4 to 3.6 hours early.
    let ahead_of_expiry = expires_at.map(|e| {
        let lifetime = (e - now).max(Duration::zero());
        let margin = (lifetime / 10).max(skew);
        e - margin - jitter(lifetime / 20)
    });
    // Halfway through the refresh token's idle lifetime, so a missed run or a provider
    // outage of days still leaves time.
    let keep_alive = spec
        .idle_expiry()
        .map(|idle| now + idle / 2 - jitter(idle / 20));
    let due = match (ahead_of_expiry, keep_alive) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }?;
    Some(due.max(now))
}

/// The backoff before retry `failures` (1 for the first failure), with jitter.
pub(crate) fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(12);
    let base = Duration::seconds(FIRST_BACKOFF_SECS * (1_i64 << exponent)).min(MAX_BACKOFF);
    base - jitter(base / 5)
}

impl Services {
    /// The schedule of tokens written `now` (connect, import, refresh): `next_refresh_at`
    /// for every vault; the worker's `due_at` where the server itself acts: a managed
    /// vault's refresh, or the expiry notice of a token nothing can refresh.
    pub(crate) fn schedule_tokens(
        &self,
        spec: &RefreshSpec,
        expires_at: Option<DateTime<Utc>>,
        has_refresh: bool,
        server_refreshes: bool,
        now: DateTime<Utc>,
    ) -> Schedule {
        let next_refresh_at = next_refresh(
            spec,
            expires_at,
            has_refresh,
            self.config.refresh_skew_secs,
            now,
        );
        let due_at = if has_refresh {
            next_refresh_at.filter(|_| server_refreshes && self.master_key.is_some())
        } else {
            expires_at.map(|e| (e - self.expiring_notice()).max(now))
        };
        Schedule {
            next_refresh_at,
            due_at,
        }
    }

    pub(crate) fn expiring_notice(&self) -> Duration {
        Duration::seconds(
            i64::try_from(self.config.lifecycle.expiring_notice_secs).unwrap_or(i64::MAX / 1000),
        )
    }

    /// The health after a transient refresh failure: `failing`, tokens kept, retried
    /// with backoff (by the server for a managed vault, else by whoever refreshes).
    pub(crate) fn failing_health(
        &self,
        c: &ConnectionRecord,
        server_refreshes: bool,
        reason: String,
        now: DateTime<Utc>,
    ) -> HealthChange {
        let failures = c.failures.saturating_add(1);
        let retry = now + backoff(failures);
        HealthChange {
            status: ConnectionStatus::Failing,
            status_reason: Some(reason),
            schedule: Schedule {
                next_refresh_at: Some(retry),
                due_at: Some(retry).filter(|_| server_refreshes && self.master_key.is_some()),
            },
            failures,
            expiring_notified_at: None,
            at: now,
        }
    }

    /// An event about connection `c` (ids, app, provider, status and reason: never a
    /// secret), ready for the outbox.
    pub(crate) fn connection_event(
        &self,
        event_type: EventType,
        c: &ConnectionRecord,
        status: ConnectionStatus,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> NewEvent {
        let data = connection_data(
            c.id.as_str(),
            c.app_key.as_str(),
            &c.provider_key,
            status,
            reason,
            c.expires_at,
        );
        new_event(c.vault_id.clone(), event_type, data, at)
    }
}

/// What an event about a connection carries: ids, app, provider, status, reason and
/// expiry; never a secret.
pub(crate) fn connection_data(
    id: &str,
    app: &str,
    provider: &str,
    status: ConnectionStatus,
    reason: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> Value {
    let mut data = serde_json::Map::new();
    data.insert("connection_id".into(), Value::from(id));
    data.insert("app".into(), Value::from(app));
    data.insert("provider".into(), Value::from(provider));
    data.insert("status".into(), Value::from(status.as_str()));
    if let Some(reason) = reason {
        data.insert("status_reason".into(), Value::from(reason));
    }
    if let Some(expires_at) = expires_at {
        data.insert("expires_at".into(), Value::from(expires_at.to_rfc3339()));
    }
    Value::Object(data)
}

/// An event of `vault` for the outbox.
pub(crate) fn new_event(
    vault: tokenwarden_domain::VaultId,
    event_type: EventType,
    data: Value,
    at: DateTime<Utc>,
) -> NewEvent {
    let event = Event::new(event_type, at, data);
    NewEvent {
        payload: event.body(),
        id: event.id,
        vault_id: vault,
        event_type: event_type.as_str().to_owned(),
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(idle_days: Option<u32>) -> RefreshSpec {
        RefreshSpec {
            idle_expiry_days: idle_days,
            ..RefreshSpec::default()
        }
    }

    #[test]
    fn an_hour_token_is_refreshed_six_to_nine_minutes_early() {
        let now = Utc::now();
        for _ in 0..200 {
            let due =
                next_refresh(&spec(None), Some(now + Duration::hours(1)), true, 60, now).unwrap();
            let early = (now + Duration::hours(1)) - due;
            assert!(early >= Duration::minutes(6), "{early}");
            assert!(early <= Duration::minutes(9), "{early}");
        }
    }

    #[test]
    fn jitter_spreads_tokens_issued_together() {
        let now = Utc::now();
        let dues: std::collections::BTreeSet<_> = (0..100)
            .map(|_| next_refresh(&spec(None), Some(now + Duration::hours(1)), true, 60, now))
            .collect();
        assert!(dues.len() > 50, "only {} distinct times", dues.len());
    }

    #[test]
    fn idle_lifetime_brings_the_refresh_forward() {
        let now = Utc::now();
        // A token that never expires but whose refresh token dies after 90 idle days.
        let due = next_refresh(&spec(Some(90)), None, true, 60, now).unwrap();
        assert!(due <= now + Duration::days(45));
        assert!(due >= now + Duration::days(40));
        // Nothing to refresh with, or nothing that expires: never due.
        assert_eq!(next_refresh(&spec(Some(90)), None, false, 60, now), None);
        assert_eq!(next_refresh(&spec(None), None, true, 60, now), None);
    }

    #[test]
    fn an_already_expired_token_is_due_now() {
        let now = Utc::now();
        let due = next_refresh(&spec(None), Some(now - Duration::hours(1)), true, 60, now);
        assert_eq!(due, Some(now));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= Duration::seconds(30) && backoff(1) >= Duration::seconds(24));
        assert!(backoff(3) >= Duration::seconds(96));
        for failures in [10, 50, u32::MAX] {
            assert!(backoff(failures) <= MAX_BACKOFF);
            assert!(backoff(failures) >= MAX_BACKOFF * 4 / 5);
        }
    }
}
