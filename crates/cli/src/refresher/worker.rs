//! The refresher's loop: poll the due connections, refresh those due now (at most
//! `concurrency` at a time), sleep until the next one is due or the interval ends, and
//! back off after failed polls. On stop it starts nothing new and waits a bounded time
//! for the refreshes in flight.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use tokenwarden_domain::ConnectionId;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::api::{Api, CallError, Connection};
use super::plan::{HoldOffs, backoff, earliest, plan, wait};
use super::telemetry::Telemetry;

/// How long a stop waits for refreshes in flight: past the API client's own timeout,
/// so a refresh is normally finished rather than cut off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);

#[derive(Debug)]
pub struct Worker {
    api: Arc<Api>,
    telemetry: Arc<Telemetry>,
    interval: Duration,
    lookahead_secs: u64,
    concurrency: usize,
    holds: HoldOffs,
}

/// Resolves once `stop` is true (or its sender is gone, which also means stop).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

fn is_stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

impl Worker {
    pub fn new(
        api: Arc<Api>,
        telemetry: Arc<Telemetry>,
        interval: Duration,
        lookahead_secs: u64,
        concurrency: usize,
    ) -> Self {
        Self {
            api,
            telemetry,
            interval,
            lookahead_secs,
            concurrency,
            holds: HoldOffs::default(),
        }
    }

    /// Runs until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            let listed = tokio::select! {
                listed = self.api.due(self.lookahead_secs) => listed,
                () = stopped(&mut stop) => return,
            };
            let pause = match listed {
                Ok(list) => {
                    failures = 0;
                    self.round(&list, &mut stop).await
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let pause = backoff(failures, self.interval, rand::thread_rng().r#gen());
                    self.telemetry
                        .poll_failed(e.outcome(), format!("listing due connections: {e}"));
                    warn!(
                        outcome = e.outcome(),
                        error = %e,
                        failures,
                        retry_in_secs = pause.as_secs(),
                        "listing due connections failed"
                    );
                    pause
                }
            };
            if is_stopped(&stop) {
                return;
            }
            debug!(sleep_ms = pause.as_millis(), "waiting for the next poll");
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = stopped(&mut stop) => return,
            }
        }
    }

    /// Refreshes what one poll found due; answers how long to wait before the next.
    async fn round(&mut self, list: &[Connection], stop: &mut watch::Receiver<bool>) -> Duration {
        let now = Utc::now();
        self.holds.prune(now);
        let plan = plan(list, now, &self.holds);
        self.telemetry
            .poll_succeeded(plan.due.len(), plan.upcoming, plan.skipped);
        debug!(
            listed = list.len(),
            due = plan.due.len(),
            upcoming = plan.upcoming,
            skipped = plan.skipped,
            held_off = self.holds.len(),
            "polled due connections"
        );
        let mut next_at = plan.next_at;
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut running = JoinSet::new();
        for id in plan.due {
            let permit = tokio::select! {
                biased;
                () = stopped(stop) => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let api = self.api.clone();
            let telemetry = self.telemetry.clone();
            running.spawn(async move {
                let result = refresh_one(&api, &telemetry, &id).await;
                drop(permit);
                (id, result)
            });
        }

        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let grace_over = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                done = running.join_next() => match done {
                    None => break,
                    Some(Ok((id, result))) => {
                        next_at = earliest(next_at, self.settle(id, result.as_ref().ok()));
                    }
                    Some(Err(e)) => warn!(error = %e, "a refresh task ended abnormally"),
                },
                () = stopped(stop), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
                    if !running.is_empty() {
                        info!(in_flight = running.len(), "stopping: waiting for refreshes in flight");
                    }
                }
                () = grace_over => {
                    warn!(abandoned = running.len(), "stopping: refreshes still in flight were abandoned");
                    running.abort_all();
                    break;
                }
            }
        }
        wait(next_at, Utc::now(), self.interval)
    }

    /// Books a refresh's result: when the connection is due next, or a hold-off when the
    /// refresh failed or did not move its due time forward. Answers the next due time
    /// to wake for, if any.
    fn settle(
        &mut self,
        id: ConnectionId,
        refreshed: Option<&Connection>,
    ) -> Option<DateTime<Utc>> {
        let now = Utc::now();
        let next = refreshed.and_then(|c| c.next_refresh_at);
        match next {
            Some(at) if at > now => Some(at),
            _ if refreshed.is_some_and(|c| c.next_refresh_at.is_none()) => None,
            _ => {
                let until = now
                    + TimeDelta::from_std(self.interval).unwrap_or_else(|_| TimeDelta::minutes(5));
                self.holds.hold(id, until);
                Some(until)
            }
        }
    }
}

/// One refresh, logged and counted: the connection id, the outcome and the new status;
/// never a token (the answer holds none).
async fn refresh_one(
    api: &Api,
    telemetry: &Telemetry,
    id: &ConnectionId,
) -> Result<Connection, CallError> {
    let result = api.refresh(id).await;
    match &result {
        Ok(c) => {
            telemetry.refreshed("success");
            info!(
                connection.id = %id,
                outcome = "success",
                status = c.status.as_str(),
                status_reason = c.status_reason.as_deref(),
                next_refresh_at = ?c.next_refresh_at,
                "connection refreshed"
            );
        }
        Err(e) => {
            telemetry.refreshed(e.outcome());
            // The problem tells the new status only when the provider refused for good;
            // transient failures leave it to the server (`failing` while it retries).
            let status = match e.outcome() {
                "needs_reauth" => "needs_reauth",
                "not_found" => "deleted",
                _ => "unknown",
            };
            warn!(
                connection.id = %id,
                outcome = e.outcome(),
                status,
                error = %e,
                "connection refresh failed"
            );
        }
    }
    result
}
