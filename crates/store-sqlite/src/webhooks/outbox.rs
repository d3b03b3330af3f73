//! The outbox on SQLite: writing events with their deliveries, claiming due deliveries
//! by compare-and-set, applying an attempt's outcome, and reading the log and queue.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use tokenwarden_store::rows::{Columns, Cursor, Dialect};
use tokenwarden_store::webhooks::{
    ATTEMPT_COLUMNS, CLAIMED_DELIVERY_COLUMNS, attempt, claimed_delivery,
};
use tokenwarden_store::{
    AttemptRecord, ClaimedDelivery, DeliveryOutcome, NewEvent, QueueDepth, StoreError, StoreResult,
};

use crate::convert::{db, ms, opt_ms, sql_error};
use crate::cursor::{all, one};

fn insert_event(conn: &Connection, e: &NewEvent) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_events (id, vault_id, type, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(db)?
    .execute(params![e.id, e.vault_id.as_str(), e.event_type, e.payload, ms(e.at)])
    .map_err(sql_error("webhook event"))?;
    Ok(())
}

/// Writes `events` inside the caller's write transaction, each with one pending
/// delivery (due at the event's time) per enabled endpoint of its vault that takes
/// every type or subscribed to its type. The fan-out is one INSERT ... SELECT per event.
pub(crate) fn write_events(conn: &Connection, events: &[NewEvent]) -> StoreResult<()> {
    for e in events {
        insert_event(conn, e)?;
        conn.prepare_cached(
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, next_attempt_at, claim_owner, created_at, updated_at)
             SELECT ?1, w.id, 'pending', 0, ?3, NULL, ?3, ?3 FROM webhook_endpoints w
             WHERE w.vault_id = ?2 AND w.enabled = 1
               AND (w.all_events = 1 OR EXISTS (
                    SELECT 1 FROM webhook_endpoint_events s WHERE s.endpoint_id = w.id AND s.type = ?4))",
        )
        .map_err(db)?
        .execute(params![e.id, e.vault_id.as_str(), ms(e.at), e.event_type])
        .map_err(db)?;
    }
    Ok(())
}

/// Writes `e` with one delivery to `endpoint` whatever its filter; `false` (and the
/// caller rolls back) when the endpoint is not in the event's vault.
pub(super) fn write_event_to(conn: &Connection, e: &NewEvent, endpoint: &str) -> StoreResult<bool> {
    insert_event(conn, e)?;
    let added = conn
        .execute(
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, next_attempt_at, claim_owner, created_at, updated_at)
             SELECT ?1, w.id, 'pending', 0, CASE WHEN w.enabled = 1 THEN ?3 END, NULL, ?3, ?3
             FROM webhook_endpoints w WHERE w.id = ?4 AND w.vault_id = ?2",
            params![e.id, e.vault_id.as_str(), ms(e.at), endpoint],
        )
        .map_err(db)?;
    Ok(added == 1)
}

/// Reads the due deliveries (oldest first, through the partial due index), then takes
/// each by a compare-and-set on the `next_attempt_at` it read: a row another process
/// claimed in between no longer matches and is left out.
pub(super) fn claim(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: u32,
    owner: &str,
    until: DateTime<Utc>,
) -> StoreResult<Vec<ClaimedDelivery>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}, d.next_attempt_at
             FROM webhook_deliveries d INDEXED BY webhook_deliveries_due
             JOIN webhook_events e ON e.id = d.event_id
             JOIN webhook_endpoints w ON w.id = d.endpoint_id
             WHERE d.next_attempt_at <= ?1 AND d.state = 'pending' AND w.enabled = 1
             ORDER BY d.next_attempt_at LIMIT ?2",
            Columns::select(Dialect::Sqlite, &[&CLAIMED_DELIVERY_COLUMNS])
        )
    });
    let mut st = conn.prepare_cached(&SQL).map_err(db)?;
    let due = all(&mut st, params![ms(now), limit], |c| {
        let d = claimed_delivery(c)?;
        let was = c.int("webhook_deliveries.next_attempt_at")?;
        Ok((d, was))
    })?;
    let mut take = conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET next_attempt_at = ?1, claim_owner = ?2, updated_at = ?3
             WHERE event_id = ?4 AND endpoint_id = ?5 AND next_attempt_at = ?6 AND state = 'pending'",
        )
        .map_err(db)?;
    let mut won = Vec::with_capacity(due.len());
    for (d, was) in due {
        let taken = take
            .execute(params![
                ms(until),
                owner,
                ms(now),
                d.event_id,
                d.endpoint_id,
                was
            ])
            .map_err(db)?;
        if taken == 1 {
            won.push(d);
        }
    }
    Ok(won)
}

/// Logs the attempt, then applies `outcome` if `owner` still holds the claim.
pub(super) fn finish(
    conn: &Connection,
    event_id: &str,
    endpoint_id: &str,
    owner: &str,
    a: &AttemptRecord,
    outcome: &DeliveryOutcome,
) -> StoreResult<bool> {
    // Through the endpoint's row, so an endpoint deleted mid-delivery logs nothing
    // instead of failing on the foreign key.
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (id, endpoint_id, event_id, type, attempt, status_code, error, at, next_attempt_at)
         SELECT ?1, w.id, ?3, ?4, ?5, ?6, ?7, ?8, ?9 FROM webhook_endpoints w WHERE w.id = ?2",
    )
    .map_err(db)?
    .execute(params![
        a.id,
        endpoint_id,
        event_id,
        a.event_type,
        a.attempt,
        a.status_code,
        a.error,
        ms(a.at),
        opt_ms(a.next_attempt_at)
    ])
    .map_err(sql_error("webhook attempt"))?;
    let at = ms(a.at);
    let held = match outcome {
        DeliveryOutcome::Delivered => conn.execute(
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1,
                next_attempt_at = NULL, claim_owner = NULL, updated_at = ?4
             WHERE event_id = ?1 AND endpoint_id = ?2 AND claim_owner = ?3 AND state = 'pending'",
            params![event_id, endpoint_id, owner, at],
        ),
        // An endpoint disabled while this attempt ran has its deliveries parked; this
        // one joins them rather than sitting due at the head of the index.
        DeliveryOutcome::Retry { next_attempt_at } => conn.execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, claim_owner = NULL, updated_at = ?4,
                next_attempt_at = (SELECT CASE WHEN w.enabled = 1 THEN ?5 END
                                   FROM webhook_endpoints w WHERE w.id = ?2)
             WHERE event_id = ?1 AND endpoint_id = ?2 AND claim_owner = ?3 AND state = 'pending'",
            params![event_id, endpoint_id, owner, at, ms(*next_attempt_at)],
        ),
        DeliveryOutcome::GaveUp | DeliveryOutcome::EndpointGone { .. } => conn.execute(
            "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1,
                next_attempt_at = NULL, claim_owner = NULL, updated_at = ?4
             WHERE event_id = ?1 AND endpoint_id = ?2 AND claim_owner = ?3 AND state = 'pending'",
            params![event_id, endpoint_id, owner, at],
        ),
    }
    .map_err(db)?
        == 1;
    if let (true, DeliveryOutcome::EndpointGone { reason }) = (held, outcome) {
        conn.execute(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1",
            params![endpoint_id, reason, at],
        )
        .map_err(db)?;
        conn.execute(
            "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL, claim_owner = NULL, updated_at = ?2
             WHERE endpoint_id = ?1 AND state = 'pending'",
            params![endpoint_id, at],
        )
        .map_err(db)?;
    }
    Ok(held)
}

pub(super) fn attempts(
    conn: &Connection,
    vault: &str,
    endpoint: &str,
    limit: u32,
) -> StoreResult<Vec<AttemptRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM webhook_attempts t JOIN webhook_endpoints w ON w.id = t.endpoint_id
             WHERE w.vault_id = ?1 AND t.endpoint_id = ?2
             ORDER BY t.at DESC, t.attempt DESC, t.id DESC LIMIT ?3",
            Columns::select(Dialect::Sqlite, &[&ATTEMPT_COLUMNS])
        )
    });
    let mut st = conn.prepare_cached(&SQL).map_err(db)?;
    all(&mut st, params![vault, endpoint, limit], |c| attempt(c))
}

/// Both figures from the due index: a count that stops at `cap` and its first entry.
pub(super) fn queue(conn: &Connection, now: DateTime<Utc>, cap: u32) -> StoreResult<QueueDepth> {
    let mut st = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries
                        WHERE next_attempt_at <= ?1 LIMIT ?2)),
                    (SELECT min(next_attempt_at) FROM webhook_deliveries WHERE next_attempt_at <= ?1)",
        )
        .map_err(db)?;
    let depth = one(&mut st, params![ms(now), cap], |c| {
        let due = c.int("webhook_deliveries.count")?;
        Ok(QueueDepth {
            due: u64::try_from(due)
                .map_err(|_| StoreError::Corrupt("webhook_deliveries.count".into()))?,
            oldest_due: c.opt_time("webhook_deliveries.next_attempt_at")?,
        })
    })?;
    Ok(depth.unwrap_or_default())
}

pub(super) fn prune(conn: &Connection, before: DateTime<Utc>) -> StoreResult<u64> {
    conn.execute("DELETE FROM webhook_attempts WHERE at < ?1", [ms(before)])
        .map_err(db)?;
    // Their deliveries go with them by the foreign key.
    let events = conn
        .execute(
            "DELETE FROM webhook_events WHERE created_at < ?1 AND NOT EXISTS (
                SELECT 1 FROM webhook_deliveries d
                WHERE d.event_id = webhook_events.id AND d.state = 'pending')",
            [ms(before)],
        )
        .map_err(db)?;
    Ok(events as u64)
}
