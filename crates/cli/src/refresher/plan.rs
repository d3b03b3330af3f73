//! What to do after a poll: which connections to refresh now, when to look again, and
//! how long to back off after a failed poll. Time and randomness are parameters, so the
//! schedule is tested without sleeping.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokenwarden_domain::ConnectionId;

use super::api::Connection;

/// The shortest sleep between polls: a server whose clock runs ahead of ours, or one
/// that answers a `next_refresh_at` in the past, must not make us spin.
pub const MIN_WAIT: Duration = Duration::from_secs(1);
/// The longest back-off after failed polls.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The outcome of one poll.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Refresh these now.
    pub due: Vec<ConnectionId>,
    /// Due later within the lookahead (or held off): waited for, not refreshed yet.
    pub upcoming: usize,
    /// Listed, but a person must act first (`needs_reauth`, `expired`, `revoked`).
    pub skipped: usize,
    /// The earliest moment one of the upcoming ones is due.
    pub next_at: Option<DateTime<Utc>>,
}

/// Connections not to try again before a moment: after a failed refresh, or one whose
/// answer did not move `next_refresh_at` forward, so one bad connection cannot make the
/// refresher hammer the server.
#[derive(Debug, Default)]
pub struct HoldOffs(HashMap<ConnectionId, DateTime<Utc>>);

impl HoldOffs {
    pub fn hold(&mut self, id: ConnectionId, until: DateTime<Utc>) {
        self.0.insert(id, until);
    }

    /// Forgets the holds that have run out.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        self.0.retain(|_, until| *until > now);
    }

    fn until(&self, id: &ConnectionId, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.get(id).copied().filter(|until| *until > now)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Sorts a poll's connections into due now, due later and not refreshable.
pub fn plan(connections: &[Connection], now: DateTime<Utc>, holds: &HoldOffs) -> Plan {
    let mut plan = Plan::default();
    for c in connections {
        if !c.status.refreshable() {
            plan.skipped += 1;
            continue;
        }
        // No next_refresh_at: the server says nothing is to be refreshed.
        let Some(at) = c.next_refresh_at else {
            continue;
        };
        let at = holds.until(&c.id, now).map_or(at, |until| until.max(at));
        if at <= now {
            plan.due.push(c.id.clone());
        } else {
            plan.upcoming += 1;
            plan.next_at = Some(plan.next_at.map_or(at, |next| next.min(at)));
        }
    }
    plan
}

/// The earlier of two optional moments.
pub fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How long to sleep before the next poll: until the earliest upcoming refresh or the
/// interval, whichever comes first, and never less than [`MIN_WAIT`].
pub fn wait(next_at: Option<DateTime<Utc>>, now: DateTime<Utc>, interval: Duration) -> Duration {
    let until_next = next_at
        .and_then(|at| (at - now).to_std().ok())
        .unwrap_or(Duration::ZERO);
    match next_at {
        Some(_) => until_next.min(interval).max(MIN_WAIT),
        None => interval.max(MIN_WAIT),
    }
}

/// The wait after `failures` failed polls in a row (at least 1): the interval doubled
/// per failure, capped at [`MAX_BACKOFF`], with "equal jitter" (`jitter` in [0, 1)
/// picks a point in the upper half) so refreshers that failed together spread out.
pub fn backoff(failures: u32, interval: Duration, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(failures.clamp(1, 16));
    let full = interval
        .max(MIN_WAIT)
        .saturating_mul(factor)
        .min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::refresher::api::Status;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn conn(id: &str, status: Status, next: Option<i64>) -> Connection {
        Connection {
            id: ConnectionId::parse(id).unwrap(),
            status,
            status_reason: None,
            next_refresh_at: next.map(at),
        }
    }

    fn ids(plan: &Plan) -> Vec<&str> {
        plan.due.iter().map(ConnectionId::as_str).collect()
    }

    #[test]
    fn only_connections_due_by_now_are_refreshed_and_the_rest_are_waited_for() {
        let list = [
            conn("overdue", Status::Failing, Some(-30)),
            conn("now", Status::Active, Some(0)),
            conn("soon", Status::Active, Some(40)),
            conn("sooner", Status::Active, Some(12)),
            conn("nothing-to-refresh", Status::Active, None),
        ];
        let plan = plan(&list, at(0), &HoldOffs::default());
        assert_eq!(ids(&plan), ["overdue", "now"]);
        assert_eq!(plan.upcoming, 2);
        assert_eq!(plan.skipped, 0);
        assert_eq!(plan.next_at, Some(at(12)));
    }

    #[test]
    fn connections_a_person_must_reconnect_are_skipped() {
        let list = [
            conn("a", Status::NeedsReauth, Some(-5)),
            conn("b", Status::Expired, Some(-5)),
            conn("c", Status::Revoked, None),
            conn("d", Status::Other, Some(-5)),
        ];
        let plan = plan(&list, at(0), &HoldOffs::default());
        assert_eq!(plan.due, Vec::<ConnectionId>::new());
        assert_eq!(plan.skipped, 4);
        assert_eq!(plan.next_at, None);
    }

    #[test]
    fn a_held_off_connection_waits_until_its_hold_ends() {
        let mut holds = HoldOffs::default();
        holds.hold(ConnectionId::parse("flaky").unwrap(), at(30));
        holds.hold(ConnectionId::parse("old").unwrap(), at(-1));
        let list = [
            conn("flaky", Status::Failing, Some(-10)),
            conn("old", Status::Active, Some(-10)),
        ];
        let plan = plan(&list, at(0), &holds);
        assert_eq!(ids(&plan), ["old"]);
        assert_eq!(plan.next_at, Some(at(30)));
        holds.prune(at(0));
        assert_eq!(holds.len(), 1);
        holds.prune(at(30));
        assert_eq!(holds.len(), 0);
    }

    #[test]
    fn the_wait_is_the_interval_or_less_when_a_refresh_comes_due_sooner() {
        let interval = Duration::from_secs(30);
        assert_eq!(wait(None, at(0), interval), interval);
        assert_eq!(wait(Some(at(12)), at(0), interval), Duration::from_secs(12));
        assert_eq!(wait(Some(at(300)), at(0), interval), interval);
        let half = at(0) + TimeDelta::milliseconds(500);
        assert_eq!(wait(Some(half), at(0), interval), MIN_WAIT);
        assert_eq!(wait(Some(at(-60)), at(0), interval), MIN_WAIT);
        assert_eq!(
            wait(None, at(0), Duration::from_millis(10)),
            MIN_WAIT,
            "never a busy loop"
        );
    }

    #[test]
    fn failed_polls_back_off_exponentially_with_jitter_up_to_five_minutes() {
        let interval = Duration::from_secs(10);
        let low: Vec<u64> = (1..=7)
            .map(|n| backoff(n, interval, 0.0).as_secs())
            .collect();
        let high: Vec<u64> = (1..=7)
            .map(|n| backoff(n, interval, 1.0).as_secs())
            .collect();
        assert_eq!(low, [10, 20, 40, 80, 150, 150, 150]);
        assert_eq!(high, [20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(2, interval, 0.5), Duration::from_secs(30));
        assert_eq!(backoff(u32::MAX, interval, 1.0), MAX_BACKOFF);
    }

    #[test]
    fn earliest_picks_the_sooner_moment() {
        assert_eq!(earliest(Some(at(5)), Some(at(3))), Some(at(3)));
        assert_eq!(earliest(None, Some(at(3))), Some(at(3)));
        assert_eq!(earliest(Some(at(5)), None), Some(at(5)));
        assert_eq!(earliest(None, None), None);
    }
}
