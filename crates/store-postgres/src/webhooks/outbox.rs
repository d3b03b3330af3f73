//! The outbox on PostgreSQL: writing events with their deliveries, claiming due
//! deliveries (`FOR UPDATE SKIP LOCKED`, so replicas claiming at once take different
//! rows without waiting for each other), applying an attempt's outcome, and reading the
//! log and queue.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use tokenwarden_store::rows::{Columns, Cursor, Dialect};
use tokenwarden_store::webhooks::{
    ATTEMPT_COLUMNS, CLAIMED_DELIVERY_COLUMNS, attempt, claimed_delivery,
};
use tokenwarden_store::{
    AttemptRecord, ClaimedDelivery, DeliveryOutcome, NewEvent, QueueDepth, StoreError, StoreResult,
};

use crate::convert::{changed_one, db, ms, opt_ms, sql_error};
use crate::cursor::{RowCursor, all};
use crate::pool::Pool;

async fn insert_event(tx: &Transaction<'_>, e: &NewEvent) -> StoreResult<()> {
    let st = tx
        .prepare_cached(
            "INSERT INTO webhook_events (id, vault_id, type, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .await
        .map_err(db)?;
    tx.execute(
        &st,
        &[
            &e.id,
            &e.vault_id.as_str(),
            &e.event_type,
            &e.payload,
            &ms(e.at),
        ],
    )
    .await
    .map_err(sql_error("webhook event"))?;
    Ok(())
}

/// Writes `events` inside the caller's transaction, each with one pending delivery
/// (due at the event's time) per enabled endpoint of its vault that takes every type or
/// subscribed to its type. The fan-out is one INSERT ... SELECT per event.
pub(crate) async fn write_events(tx: &Transaction<'_>, events: &[NewEvent]) -> StoreResult<()> {
    let fan_out = tx
        .prepare_cached(
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, next_attempt_at, claim_owner, created_at, updated_at)
             SELECT $1, w.id, 'pending', 0, $3, NULL, $3, $3 FROM webhook_endpoints w
             WHERE w.vault_id = $2 AND w.enabled
               AND (w.all_events OR EXISTS (
                    SELECT 1 FROM webhook_endpoint_events s WHERE s.endpoint_id = w.id AND s.type = $4))",
        )
        .await
        .map_err(db)?;
    for e in events {
        insert_event(tx, e).await?;
        tx.execute(
            &fan_out,
            &[&e.id, &e.vault_id.as_str(), &ms(e.at), &e.event_type],
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// Writes `e` with one delivery to `endpoint` whatever its filter; `false` (and the
/// caller rolls back) when the endpoint is not in the event's vault.
pub(super) async fn write_event_to(
    tx: &Transaction<'_>,
    e: &NewEvent,
    endpoint: &str,
) -> StoreResult<bool> {
    insert_event(tx, e).await?;
    let added = tx
        .execute(
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, next_attempt_at, claim_owner, created_at, updated_at)
             SELECT $1, w.id, 'pending', 0, CASE WHEN w.enabled THEN $3::bigint END, NULL, $3, $3
             FROM webhook_endpoints w WHERE w.id = $4 AND w.vault_id = $2",
            &[&e.id, &e.vault_id.as_str(), &ms(e.at), &endpoint],
        )
        .await
        .map_err(db)?;
    Ok(changed_one(added))
}

/// One statement: the due rows (oldest first, through the partial due index) are locked
/// with `SKIP LOCKED`, so a concurrent claimer passes over them, and moved to the claim
/// in the same statement. The UPDATE repeats the compare-and-set on the value read, so a
/// row changed in between is left out whatever the lock did.
pub(super) async fn claim(
    pool: &Pool,
    now: DateTime<Utc>,
    limit: u32,
    owner: &str,
    until: DateTime<Utc>,
) -> StoreResult<Vec<ClaimedDelivery>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "WITH due AS (
                SELECT d.event_id, d.endpoint_id, d.next_attempt_at AS was
                FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
                WHERE d.next_attempt_at <= $1 AND d.state = 'pending' AND w.enabled
                ORDER BY d.next_attempt_at LIMIT $2
                FOR UPDATE OF d SKIP LOCKED
             )
             UPDATE webhook_deliveries d SET next_attempt_at = $3, claim_owner = $4, updated_at = $1
             FROM due, webhook_events e, webhook_endpoints w
             WHERE d.event_id = due.event_id AND d.endpoint_id = due.endpoint_id
               AND d.next_attempt_at = due.was AND d.state = 'pending'
               AND e.id = d.event_id AND w.id = d.endpoint_id
             RETURNING {}, due.was",
            Columns::select(Dialect::Postgres, &[&CLAIMED_DELIVERY_COLUMNS])
        )
    });
    let rows = pool
        .query(&SQL, &[&ms(now), &i64::from(limit), &ms(until), &owner])
        .await?;
    let mut won = all(&rows, |c| {
        let d = claimed_delivery(c)?;
        let was = c.int("webhook_deliveries.next_attempt_at")?;
        Ok((was, d))
    })?;
    // RETURNING keeps no order: oldest first, as promised.
    won.sort_by(|(a, x), (b, y)| {
        (a, &x.event_id, &x.endpoint_id).cmp(&(b, &y.event_id, &y.endpoint_id))
    });
    Ok(won.into_iter().map(|(_, d)| d).collect())
}

/// Logs the attempt, then applies `outcome` if `owner` still holds the claim.
pub(super) async fn finish(
    tx: &Transaction<'_>,
    event_id: &str,
    endpoint_id: &str,
    owner: &str,
    a: &AttemptRecord,
    outcome: &DeliveryOutcome,
) -> StoreResult<bool> {
    // Through the endpoint's row, so an endpoint deleted mid-delivery logs nothing
    // instead of failing on the foreign key.
    tx.execute(
        "INSERT INTO webhook_attempts (id, endpoint_id, event_id, type, attempt, status_code, error, at, next_attempt_at)
         SELECT $1, w.id, $3, $4, $5, $6, $7, $8, $9 FROM webhook_endpoints w WHERE w.id = $2",
        &[
            &a.id,
            &endpoint_id,
            &event_id,
            &a.event_type,
            &i64::from(a.attempt),
            &a.status_code.map(i64::from),
            &a.error,
            &ms(a.at),
            &opt_ms(a.next_attempt_at),
        ],
    )
    .await
    .map_err(sql_error("webhook attempt"))?;
    let at = ms(a.at);
    let changed = match outcome {
        DeliveryOutcome::Delivered => {
            tx.execute(
                "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1,
                    next_attempt_at = NULL, claim_owner = NULL, updated_at = $4
                 WHERE event_id = $1 AND endpoint_id = $2 AND claim_owner = $3 AND state = 'pending'",
                &[&event_id, &endpoint_id, &owner, &at],
            )
            .await
        }
        // An endpoint disabled while this attempt ran has its deliveries parked; this
        // one joins them rather than sitting due at the head of the index.
        DeliveryOutcome::Retry { next_attempt_at } => {
            tx.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, claim_owner = NULL, updated_at = $4,
                    next_attempt_at = (SELECT CASE WHEN w.enabled THEN $5::bigint END
                                       FROM webhook_endpoints w WHERE w.id = $2)
                 WHERE event_id = $1 AND endpoint_id = $2 AND claim_owner = $3 AND state = 'pending'",
                &[&event_id, &endpoint_id, &owner, &at, &ms(*next_attempt_at)],
            )
            .await
        }
        DeliveryOutcome::GaveUp | DeliveryOutcome::EndpointGone { .. } => {
            tx.execute(
                "UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1,
                    next_attempt_at = NULL, claim_owner = NULL, updated_at = $4
                 WHERE event_id = $1 AND endpoint_id = $2 AND claim_owner = $3 AND state = 'pending'",
                &[&event_id, &endpoint_id, &owner, &at],
            )
            .await
        }
    }
    .map_err(db)?;
    let held = changed_one(changed);
    if let (true, DeliveryOutcome::EndpointGone { reason }) = (held, outcome) {
        tx.execute(
            "UPDATE webhook_endpoints SET enabled = FALSE, disabled_reason = $2, updated_at = $3 WHERE id = $1",
            &[&endpoint_id, reason, &at],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL, claim_owner = NULL, updated_at = $2
             WHERE endpoint_id = $1 AND state = 'pending'",
            &[&endpoint_id, &at],
        )
        .await
        .map_err(db)?;
    }
    Ok(held)
}

pub(super) async fn attempts(
    pool: &Pool,
    vault: &str,
    endpoint: &str,
    limit: u32,
) -> StoreResult<Vec<AttemptRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM webhook_attempts t JOIN webhook_endpoints w ON w.id = t.endpoint_id
             WHERE w.vault_id = $1 AND t.endpoint_id = $2
             ORDER BY t.at DESC, t.attempt DESC, t.id DESC LIMIT $3",
            Columns::select(Dialect::Postgres, &[&ATTEMPT_COLUMNS])
        )
    });
    let rows = pool
        .query(&SQL, &[&vault, &endpoint, &i64::from(limit)])
        .await?;
    all(&rows, |c| attempt(c))
}

/// Both figures from the due index: a count that stops at `cap` and its first entry.
pub(super) async fn queue(pool: &Pool, now: DateTime<Utc>, cap: u32) -> StoreResult<QueueDepth> {
    let row = pool
        .query_opt(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries
                        WHERE next_attempt_at <= $1 LIMIT $2) x),
                    (SELECT min(next_attempt_at) FROM webhook_deliveries WHERE next_attempt_at <= $1)",
            &[&ms(now), &i64::from(cap)],
        )
        .await?;
    let Some(row) = row else {
        return Ok(QueueDepth::default());
    };
    let mut c = RowCursor::new(&row);
    let due = c.int("webhook_deliveries.count")?;
    Ok(QueueDepth {
        due: u64::try_from(due)
            .map_err(|_| StoreError::Corrupt("webhook_deliveries.count".into()))?,
        oldest_due: c.opt_time("webhook_deliveries.next_attempt_at")?,
    })
}

pub(super) async fn prune(tx: &Transaction<'_>, before: DateTime<Utc>) -> StoreResult<u64> {
    tx.execute("DELETE FROM webhook_attempts WHERE at < $1", &[&ms(before)])
        .await
        .map_err(db)?;
    // Their deliveries go with them by the foreign key.
    tx.execute(
        "DELETE FROM webhook_events e WHERE e.created_at < $1 AND NOT EXISTS (
            SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')",
        &[&ms(before)],
    )
    .await
    .map_err(db)
}
