//! The outbox on MySQL/MariaDB: writing events with their deliveries, claiming due
//! deliveries by compare-and-set, applying an attempt's outcome, and reading the log
//! and queue.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use mysql_async::Transaction;
use mysql_async::prelude::Queryable;
use tokenwarden_store::rows::{Columns, Cursor, Dialect};
use tokenwarden_store::webhooks::{
    ATTEMPT_COLUMNS, CLAIMED_DELIVERY_COLUMNS, attempt, claimed_delivery,
};
use tokenwarden_store::{
    AttemptRecord, ClaimedDelivery, DeliveryOutcome, NewEvent, QueueDepth, StoreError, StoreResult,
};

use crate::convert::{db, ms, opt_ms, params, sql_error};
use crate::cursor::{all, one};

async fn insert_event(tx: &mut Transaction<'static>, e: &NewEvent) -> StoreResult<()> {
    tx.exec_drop(
        "INSERT INTO webhook_events (id, vault_id, type, payload, created_at) VALUES (?, ?, ?, ?, ?)",
        params![
            e.id.as_str(),
            e.vault_id.as_str(),
            e.event_type.as_str(),
            e.payload.as_str(),
            ms(e.at)
        ],
    )
    .await
    .map_err(sql_error("webhook event"))
}

/// Writes `events` inside the caller's transaction, each with one pending delivery
/// (due at the event's time) per enabled endpoint of its vault that takes every type or
/// subscribed to its type. The fan-out is one INSERT ... SELECT per event.
pub(crate) async fn write_events(
    tx: &mut Transaction<'static>,
    events: &[NewEvent],
) -> StoreResult<()> {
    for e in events {
        insert_event(tx, e).await?;
        tx.exec_drop(
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, next_attempt_at, claim_owner, created_at, updated_at)
             SELECT ?, w.id, 'pending', 0, ?, NULL, ?, ? FROM webhook_endpoints w
             WHERE w.vault_id = ? AND w.enabled = 1
               AND (w.all_events = 1 OR EXISTS (
                    SELECT 1 FROM webhook_endpoint_events s WHERE s.endpoint_id = w.id AND s.type = ?))",
            params![
                e.id.as_str(),
                ms(e.at),
                ms(e.at),
                ms(e.at),
                e.vault_id.as_str(),
                e.event_type.as_str()
            ],
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// Writes `e` with one delivery to `endpoint` whatever its filter; `false`, writing
/// nothing, when the endpoint is not in the event's vault. The endpoint's row is read
/// with a shared lock, so it cannot be disabled or deleted before the delivery lands.
pub(super) async fn write_event_to(
    tx: &mut Transaction<'static>,
    e: &NewEvent,
    endpoint: &str,
) -> StoreResult<bool> {
    let enabled: Option<bool> = tx
        .exec_first(
            "SELECT enabled FROM webhook_endpoints WHERE id = ? AND vault_id = ? LOCK IN SHARE MODE",
            params![endpoint, e.vault_id.as_str()],
        )
        .await
        .map_err(db)?;
    let Some(enabled) = enabled else {
        return Ok(false);
    };
    insert_event(tx, e).await?;
    tx.exec_drop(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, next_attempt_at, claim_owner, created_at, updated_at)
         VALUES (?, ?, 'pending', 0, ?, NULL, ?, ?)",
        params![
            e.id.as_str(),
            endpoint,
            enabled.then(|| ms(e.at)),
            ms(e.at),
            ms(e.at)
        ],
    )
    .await
    .map_err(db)?;
    Ok(true)
}

/// Reads the due deliveries (oldest first, through the due index) without locking, then
/// takes each by a compare-and-set on the `next_attempt_at` it read. InnoDB evaluates an
/// UPDATE's WHERE on the newest committed row under its row lock, so of two claimers
/// the second matches nothing. Taken in read order, so two claimers lock alike and
/// wait for each other rather than deadlock.
pub(super) async fn claim(
    tx: &mut Transaction<'static>,
    now: DateTime<Utc>,
    limit: u32,
    owner: &str,
    until: DateTime<Utc>,
) -> StoreResult<Vec<ClaimedDelivery>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}, d.next_attempt_at
             FROM webhook_deliveries d FORCE INDEX (webhook_deliveries_due)
             JOIN webhook_events e ON e.id = d.event_id
             JOIN webhook_endpoints w ON w.id = d.endpoint_id
             WHERE d.next_attempt_at <= ? AND d.state = 'pending' AND w.enabled = 1
             ORDER BY d.next_attempt_at LIMIT ?",
            Columns::select(Dialect::Mysql, &[&CLAIMED_DELIVERY_COLUMNS])
        )
    });
    let due = all(tx, &SQL, params![ms(now), limit], |c| {
        let d = claimed_delivery(c)?;
        let was = c.int("webhook_deliveries.next_attempt_at")?;
        Ok((d, was))
    })
    .await?;
    let mut won = Vec::with_capacity(due.len());
    for (d, was) in due {
        tx.exec_drop(
            "UPDATE webhook_deliveries SET next_attempt_at = ?, claim_owner = ?, updated_at = ?
             WHERE event_id = ? AND endpoint_id = ? AND next_attempt_at = ? AND state = 'pending'",
            params![
                ms(until),
                owner,
                ms(now),
                d.event_id.as_str(),
                d.endpoint_id.as_str(),
                was
            ],
        )
        .await
        .map_err(db)?;
        if tx.affected_rows() == 1 {
            won.push(d);
        }
    }
    Ok(won)
}

/// Logs the attempt, then applies `outcome` if `owner` still holds the claim.
pub(super) async fn finish(
    tx: &mut Transaction<'static>,
    event_id: &str,
    endpoint_id: &str,
    owner: &str,
    a: &AttemptRecord,
    outcome: &DeliveryOutcome,
) -> StoreResult<bool> {
    // Through the endpoint's row, so an endpoint deleted mid-delivery logs nothing
    // instead of failing on the foreign key.
    tx.exec_drop(
        "INSERT INTO webhook_attempts (id, endpoint_id, event_id, type, attempt, status_code, error, at, next_attempt_at)
         SELECT ?, w.id, ?, ?, ?, ?, ?, ?, ? FROM webhook_endpoints w WHERE w.id = ?",
        params![
            a.id.as_str(),
            event_id,
            a.event_type.as_str(),
            a.attempt,
            a.status_code,
            a.error.as_deref(),
            ms(a.at),
            opt_ms(a.next_attempt_at),
            endpoint_id
        ],
    )
    .await
    .map_err(sql_error("webhook attempt"))?;
    let at = ms(a.at);
    let fence = params![at, event_id, endpoint_id, owner];
    match outcome {
        DeliveryOutcome::Delivered => {
            tx.exec_drop(
                "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1,
                    next_attempt_at = NULL, claim_owner = NULL, updated_at = ?
                 WHERE event_id = ? AND endpoint_id = ? AND claim_owner = ? AND state = 'pending'",
                fence,
            )
            .await
        }
        // An endpoint disabled while this attempt ran has its deliveries parked; this
        // one joins them rather than sitting due at the head of the index.
        DeliveryOutcome::Retry { next_attempt_at } => {
            tx.exec_drop(
                "UPDATE webhook_deliveries SET
                    next_attempt_at = (SELECT CASE WHEN w.enabled = 1 THEN ? END
                                       FROM webhook_endpoints w WHERE w.id = ?),
                    attempts = attempts + 1, claim_owner = NULL, updated_at = ?
                 WHERE event_id = ? AND endpoint_id = ? AND claim_owner = ? AND state = 'pending'",
                params![
                    ms(*next_attempt_at),
                    endpoint_id,
                    at,
                    event_id,
                    endpoint_id,
                    owner
                ],
            )
            .await
        }
        DeliveryOutcome::GaveUp | DeliveryOutcome::EndpointGone { .. } => {
            tx.exec_drop(
                "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1,
                    next_attempt_at = NULL, claim_owner = NULL, updated_at = ?
                 WHERE event_id = ? AND endpoint_id = ? AND claim_owner = ? AND state = 'pending'",
                fence,
            )
            .await
        }
    }
    .map_err(db)?;
    let held = tx.affected_rows() == 1;
    if let (true, DeliveryOutcome::EndpointGone { reason }) = (held, outcome) {
        tx.exec_drop(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ?",
            params![reason.as_str(), at, endpoint_id],
        )
        .await
        .map_err(db)?;
        tx.exec_drop(
            "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL, claim_owner = NULL, updated_at = ?
             WHERE endpoint_id = ? AND state = 'pending'",
            params![at, endpoint_id],
        )
        .await
        .map_err(db)?;
    }
    Ok(held)
}

pub(super) async fn attempts(
    q: &mut impl Queryable,
    vault: &str,
    endpoint: &str,
    limit: u32,
) -> StoreResult<Vec<AttemptRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM webhook_attempts t JOIN webhook_endpoints w ON w.id = t.endpoint_id
             WHERE w.vault_id = ? AND t.endpoint_id = ?
             ORDER BY t.at DESC, t.attempt DESC, t.id DESC LIMIT ?",
            Columns::select(Dialect::Mysql, &[&ATTEMPT_COLUMNS])
        )
    });
    all(q, &SQL, params![vault, endpoint, limit], attempt).await
}

/// Both figures from the due index: a count that stops at `cap` and its first entry.
pub(super) async fn queue(
    q: &mut impl Queryable,
    now: DateTime<Utc>,
    cap: u32,
) -> StoreResult<QueueDepth> {
    let depth = one(
        q,
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries
                    WHERE next_attempt_at <= ? LIMIT ?) x),
                (SELECT min(next_attempt_at) FROM webhook_deliveries WHERE next_attempt_at <= ?)",
        params![ms(now), cap, ms(now)],
        |c| {
            let due = c.int("webhook_deliveries.count")?;
            Ok(QueueDepth {
                due: u64::try_from(due)
                    .map_err(|_| StoreError::Corrupt("webhook_deliveries.count".into()))?,
                oldest_due: c.opt_time("webhook_deliveries.next_attempt_at")?,
            })
        },
    )
    .await?;
    Ok(depth.unwrap_or_default())
}

pub(super) async fn prune(
    tx: &mut Transaction<'static>,
    before: DateTime<Utc>,
) -> StoreResult<u64> {
    tx.exec_drop(
        "DELETE FROM webhook_attempts WHERE at < ?",
        params![ms(before)],
    )
    .await
    .map_err(db)?;
    // Their deliveries go with them by the foreign key.
    tx.exec_drop(
        "DELETE FROM webhook_events WHERE created_at < ? AND NOT EXISTS (
            SELECT 1 FROM webhook_deliveries d
            WHERE d.event_id = webhook_events.id AND d.state = 'pending')",
        params![ms(before)],
    )
    .await
    .map_err(db)?;
    Ok(tx.affected_rows())
}
