//! The refresher's own health and metrics, and the small HTTP server that shows them:
//! `GET /healthz` (200 while polls succeed, 503 with a reason otherwise) and
//! `GET /metrics` (Prometheus text). Labels are fixed words (outcomes), never an id.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// What `/healthz` judges by.
#[derive(Debug, Default)]
struct Health {
    last_success: Option<Instant>,
    last_error: Option<String>,
}

#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    refreshes: Family<OutcomeLabels, Counter>,
    polls: Family<OutcomeLabels, Counter>,
    due: Gauge,
    upcoming: Gauge,
    skipped: Gauge,
    last_success_time: Gauge<f64, AtomicU64>,
    health: Mutex<Health>,
    /// A poll older than this makes the refresher unhealthy.
    stale_after: Duration,
}

impl Telemetry {
    /// Healthy while a poll succeeded within three intervals.
    pub fn new(interval: Duration) -> Self {
        let mut registry = Registry::with_prefix("tokenwarden_refresher");
        let refreshes = Family::<OutcomeLabels, Counter>::default();
        let polls = Family::<OutcomeLabels, Counter>::default();
        let due = Gauge::default();
        let upcoming = Gauge::default();
        let skipped = Gauge::default();
        let last_success_time = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "refreshes",
            "Refreshes asked of the server, by outcome: success or the server's problem code",
            refreshes.clone(),
        );
        registry.register(
            "polls",
            "Polls of the due connections, by outcome: success or why it failed",
            polls.clone(),
        );
        registry.register(
            "connections_due",
            "Connections due for a refresh at the last poll",
            due.clone(),
        );
        registry.register(
            "connections_upcoming",
            "Connections due later within the lookahead at the last poll",
            upcoming.clone(),
        );
        registry.register(
            "connections_skipped",
            "Connections listed at the last poll that need a person (needs_reauth, expired, revoked)",
            skipped.clone(),
        );
        registry.register(
            "last_successful_poll_timestamp_seconds",
            "When the last poll succeeded, in Unix seconds",
            last_success_time.clone(),
        );
        Self {
            registry,
            refreshes,
            polls,
            due,
            upcoming,
            skipped,
            last_success_time,
            health: Mutex::new(Health::default()),
            stale_after: interval.saturating_mul(3),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        // The guarded values are plain data, consistent even after a panic elsewhere.
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn poll_succeeded(&self, due: usize, upcoming: usize, skipped: usize) {
        self.polls
            .get_or_create(&OutcomeLabels { outcome: "success" })
            .inc();
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.due.set(gauge(due));
        self.upcoming.set(gauge(upcoming));
        self.skipped.set(gauge(skipped));
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_success_time.set(unix);
        let mut health = self.health();
        health.last_success = Some(Instant::now());
        health.last_error = None;
    }

    /// `outcome` is a fixed word; `reason` is shown on `/healthz` (no secret in it).
    pub fn poll_failed(&self, outcome: &'static str, reason: String) {
        self.polls.get_or_create(&OutcomeLabels { outcome }).inc();
        self.health().last_error = Some(reason);
    }

    pub fn refreshed(&self, outcome: &'static str) {
        self.refreshes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// `Ok(seconds since the last successful poll)`, or why the refresher is unhealthy.
    pub fn check(&self, now: Instant) -> Result<u64, String> {
        let health = self.health();
        let last_error = health
            .last_error
            .as_deref()
            .map_or(String::new(), |e| format!("; last error: {e}"));
        match health.last_success {
            None => Err(format!("no poll has succeeded yet{last_error}")),
            Some(at) => {
                let age = now.saturating_duration_since(at);
                if age <= self.stale_after {
                    Ok(age.as_secs())
                } else {
                    Err(format!(
                        "the last successful poll was {} s ago, more than three intervals ({} s){last_error}",
                        age.as_secs(),
                        self.stale_after.as_secs()
                    ))
                }
            }
        }
    }
}

async fn healthz(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    match telemetry.check(Instant::now()) {
        Ok(age) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ok", "last_poll_secs_ago": age})),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unhealthy", "reason": reason})),
        ),
    }
}

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        telemetry.render(),
    )
}

/// Serves `/healthz` and `/metrics` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(telemetry);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_unhealthy_until_a_poll_succeeds_and_again_after_three_intervals() {
        let t = Telemetry::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(t.check(start), Err("no poll has succeeded yet".to_owned()));
        t.poll_failed("unreachable", "could not reach the server: refused".into());
        assert_eq!(
            t.check(start),
            Err(
                "no poll has succeeded yet; last error: could not reach the server: refused".into()
            )
        );
        t.poll_succeeded(1, 2, 0);
        assert_eq!(t.check(Instant::now()), Ok(0));
        let later = Instant::now() + Duration::from_secs(31);
        assert_eq!(
            t.check(later),
            Err("the last successful poll was 31 s ago, more than three intervals (30 s)".into())
        );
    }

    #[test]
    fn metrics_count_refreshes_and_polls_by_outcome() {
        let t = Telemetry::new(Duration::from_secs(10));
        t.poll_succeeded(3, 1, 2);
        t.poll_failed("unauthorized", "401".into());
        t.refreshed("success");
        t.refreshed("success");
        t.refreshed("needs_reauth");
        let text = t.render();
        for line in [
            "tokenwarden_refresher_refreshes_total{outcome=\"success\"} 2",
            "tokenwarden_refresher_refreshes_total{outcome=\"needs_reauth\"} 1",
            "tokenwarden_refresher_polls_total{outcome=\"success\"} 1",
            "tokenwarden_refresher_polls_total{outcome=\"unauthorized\"} 1",
            "tokenwarden_refresher_connections_due 3",
            "tokenwarden_refresher_connections_upcoming 1",
            "tokenwarden_refresher_connections_skipped 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        assert!(text.contains("tokenwarden_refresher_last_successful_poll_timestamp_seconds "));
    }
}
