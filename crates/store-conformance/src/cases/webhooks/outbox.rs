//! Cases of the outbox: claims (one winner per row, a lapsed claim due again), each
//! outcome of an attempt, the delivery log, the queue's figures and pruning.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokenwarden_store::{AttemptRecord, DeliveryOutcome, Store, WebhookEndpointUpdate};

use super::{event, seeded_endpoint};
use crate::cases::race::race;
use crate::fixtures::{at, audit, seeded_vault};

fn attempt(
    id: &str,
    event_id: &str,
    endpoint: &str,
    n: u32,
    when: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
) -> AttemptRecord {
    AttemptRecord {
        id: id.into(),
        endpoint_id: endpoint.into(),
        event_id: event_id.into(),
        event_type: "connection.created".into(),
        attempt: n,
        status_code: Some(503),
        error: Some("the receiver answered 503".into()),
        at: when,
        next_attempt_at: next,
    }
}

pub async fn claimed_deliveries_finish_by_each_outcome(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_1", None).await;
    seeded_endpoint(&store, &v.id, "we_gone", None).await;
    store
        .emit_events(&[
            event(&v.id, "msg_1", "connection.created", at(10)),
            event(&v.id, "msg_2", "connection.created", at(20)),
            event(&v.id, "msg_3", "connection.created", at(30)),
        ])
        .await
        .unwrap();
    // Not yet due.
    assert!(
        store
            .claim_deliveries(at(5), 10, "w", at(500))
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim_deliveries(at(100), 2, "w", at(500))
        .await
        .unwrap();
    let got: Vec<_> = claimed.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(got, ["msg_1", "msg_1"], "oldest first, limited");

    // Another owner cannot finish it; the attempt is logged all the same.
    let stolen = store
        .finish_delivery(
            "msg_1",
            "we_1",
            "thief",
            attempt("wa_0", "msg_1", "we_1", 1, at(101), None),
            DeliveryOutcome::Delivered,
        )
        .await
        .unwrap();
    assert!(!stolen);
    let retry = DeliveryOutcome::Retry {
        next_attempt_at: at(1_000),
    };
    let held = store
        .finish_delivery(
            "msg_1",
            "we_1",
            "w",
            attempt("wa_1", "msg_1", "we_1", 1, at(102), Some(at(1_000))),
            retry,
        )
        .await
        .unwrap();
    assert!(held);
    assert!(
        store
            .claim_deliveries(at(999), 10, "w", at(500))
            .await
            .unwrap()
            .iter()
            .all(|d| d.event_id != "msg_1" || d.endpoint_id != "we_1")
    );
    let again = store
        .claim_deliveries(at(1_000), 10, "w2", at(2_000))
        .await
        .unwrap();
    let d = again
        .iter()
        .find(|d| d.event_id == "msg_1" && d.endpoint_id == "we_1")
        .unwrap();
    assert_eq!(d.attempts, 1);
    let done = store
        .finish_delivery(
            "msg_1",
            "we_1",
            "w2",
            attempt("wa_2", "msg_1", "we_1", 2, at(1_001), None),
            DeliveryOutcome::Delivered,
        )
        .await
        .unwrap();
    assert!(done);
    let twice = store
        .finish_delivery(
            "msg_1",
            "we_1",
            "w2",
            attempt("wa_3", "msg_1", "we_1", 3, at(1_002), None),
            DeliveryOutcome::Delivered,
        )
        .await
        .unwrap();
    assert!(!twice, "a delivered row is no longer pending");
    let gave_up = store
        .finish_delivery(
            "msg_2",
            "we_1",
            "w2",
            attempt("wa_4", "msg_2", "we_1", 1, at(1_003), None),
            DeliveryOutcome::GaveUp,
        )
        .await
        .unwrap();
    assert!(gave_up);

    // 410: the endpoint is disabled and all its pending deliveries fail.
    let gone = DeliveryOutcome::EndpointGone {
        reason: "the receiver answered 410".into(),
    };
    let held = store
        .finish_delivery(
            "msg_1",
            "we_gone",
            "w2",
            attempt("wa_5", "msg_1", "we_gone", 2, at(1_004), None),
            gone,
        )
        .await
        .unwrap();
    assert!(held);
    let w = store.webhook(&v.id, "we_gone").await.unwrap().unwrap();
    assert!(!w.enabled);
    assert_eq!(
        w.disabled_reason.as_deref(),
        Some("the receiver answered 410")
    );
    assert_eq!(w.updated_at, at(1_004));
    // Only msg_3 to we_1 (claimed by w2, lapsing at 2000) is left anywhere.
    let left = store
        .claim_deliveries(at(5_000), 10, "w3", at(6_000))
        .await
        .unwrap();
    let left: Vec<_> = left
        .iter()
        .map(|d| (d.event_id.as_str(), d.endpoint_id.as_str()))
        .collect();
    assert_eq!(left, [("msg_3", "we_1")]);
    // Enabling again clears the reason but revives nothing that failed.
    let on = WebhookEndpointUpdate {
        enabled: Some(true),
        ..WebhookEndpointUpdate::default()
    };
    let w = store
        .update_webhook(
            &v.id,
            "we_gone",
            on,
            at(7_000),
            audit(Some(&v.id), "webhook.update"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.disabled_reason, None);
    assert_eq!(store.delivery_queue(at(5_999), 100).await.unwrap().due, 0);

    let log = store.list_attempts(&v.id, "we_1", 10).await.unwrap();
    let ids: Vec<_> = log.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["wa_4", "wa_3", "wa_2", "wa_1", "wa_0"]);
    assert_eq!(
        log[3],
        attempt("wa_1", "msg_1", "we_1", 1, at(102), Some(at(1_000)))
    );
}

pub async fn a_disabled_endpoints_retry_is_parked(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_1", None).await;
    store
        .emit_events(&[event(&v.id, "msg_1", "connection.created", at(10))])
        .await
        .unwrap();
    store
        .claim_deliveries(at(10), 10, "w", at(500))
        .await
        .unwrap();
    let off = WebhookEndpointUpdate {
        enabled: Some(false),
        ..WebhookEndpointUpdate::default()
    };
    store
        .update_webhook(
            &v.id,
            "we_1",
            off,
            at(20),
            audit(Some(&v.id), "webhook.update"),
        )
        .await
        .unwrap();
    let retry = DeliveryOutcome::Retry {
        next_attempt_at: at(100),
    };
    let held = store
        .finish_delivery(
            "msg_1",
            "we_1",
            "w",
            attempt("wa_1", "msg_1", "we_1", 1, at(30), Some(at(100))),
            retry,
        )
        .await
        .unwrap();
    assert!(held);
    assert_eq!(store.delivery_queue(at(10_000), 10).await.unwrap().due, 0);
    let on = WebhookEndpointUpdate {
        enabled: Some(true),
        ..WebhookEndpointUpdate::default()
    };
    store
        .update_webhook(
            &v.id,
            "we_1",
            on,
            at(40),
            audit(Some(&v.id), "webhook.update"),
        )
        .await
        .unwrap();
    let back = store
        .claim_deliveries(at(40), 10, "w", at(500))
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].attempts, 1);
}

pub async fn two_claimers_never_win_the_same_delivery(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_1", None).await;
    let events: Vec<_> = (0..50)
        .map(|i| event(&v.id, &format!("msg_{i:02}"), "connection.created", at(i)))
        .collect();
    store.emit_events(&events).await.unwrap();

    let results = race(2, |i| {
        let store = store.clone();
        async move {
            let owner = format!("claimer-{i}");
            let mut won = Vec::new();
            loop {
                let batch = store
                    .claim_deliveries(at(100), 7, &owner, at(10_000))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break won;
                }
                won.extend(batch.into_iter().map(|d| d.event_id));
            }
        }
    })
    .await;
    let mut wins: HashMap<String, usize> = HashMap::new();
    for id in results.iter().flatten() {
        *wins.entry(id.clone()).or_default() += 1;
    }
    assert_eq!(wins.len(), 50, "every delivery was claimed");
    assert!(wins.values().all(|n| *n == 1), "no delivery was won twice");
    assert!(
        store
            .claim_deliveries(at(100), 100, "late", at(10_000))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn an_unfinished_claim_is_due_again_when_it_lapses(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_1", None).await;
    store
        .emit_events(&[event(&v.id, "msg_1", "connection.created", at(10))])
        .await
        .unwrap();
    let first = store
        .claim_deliveries(at(10), 10, "crashed", at(30_010))
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .claim_deliveries(at(30_009), 10, "w", at(60_000))
            .await
            .unwrap()
            .is_empty()
    );
    let q = store.delivery_queue(at(30_010), 10).await.unwrap();
    assert_eq!((q.due, q.oldest_due), (1, Some(at(30_010))));
    let second = store
        .claim_deliveries(at(30_010), 10, "w", at(60_000))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].event_id, first[0].event_id);
    assert_eq!(second[0].attempts, 0);
    // The crashed owner's late answer no longer counts.
    let late = store
        .finish_delivery(
            "msg_1",
            "we_1",
            "crashed",
            attempt("wa_1", "msg_1", "we_1", 1, at(30_011), None),
            DeliveryOutcome::Delivered,
        )
        .await
        .unwrap();
    assert!(!late);
}

pub async fn attempts_list_newest_first_up_to_the_limit(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let (_, other) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_1", None).await;
    store
        .emit_events(&[event(&v.id, "msg_1", "connection.created", at(0))])
        .await
        .unwrap();
    for n in 1..=4u32 {
        store
            .claim_deliveries(at(100_000), 1, "w", at(100_001))
            .await
            .unwrap();
        let next = at(i64::from(n) * 10);
        let a = AttemptRecord {
            status_code: None,
            error: Some("timed out".into()),
            ..attempt(
                &format!("wa_{n}"),
                "msg_1",
                "we_1",
                n,
                at(i64::from(n)),
                Some(next),
            )
        };
        store
            .finish_delivery(
                "msg_1",
                "we_1",
                "w",
                a,
                DeliveryOutcome::Retry {
                    next_attempt_at: next,
                },
            )
            .await
            .unwrap();
    }
    let log = store.list_attempts(&v.id, "we_1", 3).await.unwrap();
    let got: Vec<_> = log.iter().map(|a| (a.id.as_str(), a.attempt)).collect();
    assert_eq!(got, [("wa_4", 4), ("wa_3", 3), ("wa_2", 2)]);
    assert_eq!(log[0].status_code, None);
    assert_eq!(log[0].error.as_deref(), Some("timed out"));
    assert_eq!(log[0].next_attempt_at, Some(at(40)));
    assert!(
        store
            .list_attempts(&other.id, "we_1", 3)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn delivery_queue_counts_due_rows_up_to_the_cap(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    assert_eq!(
        store.delivery_queue(at(0), 10).await.unwrap(),
        Default::default()
    );
    seeded_endpoint(&store, &v.id, "we_1", None).await;
    let events: Vec<_> = (0..5)
        .map(|i| {
            event(
                &v.id,
                &format!("msg_{i}"),
                "connection.created",
                at(100 + i),
            )
        })
        .collect();
    store.emit_events(&events).await.unwrap();
    let q = store.delivery_queue(at(99), 10).await.unwrap();
    assert_eq!((q.due, q.oldest_due), (0, None));
    let q = store.delivery_queue(at(102), 10).await.unwrap();
    assert_eq!((q.due, q.oldest_due), (3, Some(at(100))));
    let q = store.delivery_queue(at(1_000), 2).await.unwrap();
    assert_eq!((q.due, q.oldest_due), (2, Some(at(100))));
}

pub async fn pruning_keeps_pending_events_and_recent_log(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_1", None).await;
    store
        .emit_events(&[
            event(&v.id, "msg_old_done", "connection.created", at(0)),
            event(&v.id, "msg_old_pending", "connection.created", at(1)),
            event(&v.id, "msg_new", "connection.created", at(5_000)),
        ])
        .await
        .unwrap();
    store
        .claim_deliveries(at(0), 1, "w", at(100))
        .await
        .unwrap();
    store
        .finish_delivery(
            "msg_old_done",
            "we_1",
            "w",
            attempt("wa_old", "msg_old_done", "we_1", 1, at(2), None),
            DeliveryOutcome::Delivered,
        )
        .await
        .unwrap();
    store
        .claim_deliveries(at(10_000), 1, "w", at(20_000))
        .await
        .unwrap();
    store
        .finish_delivery(
            "msg_old_pending",
            "we_1",
            "w",
            attempt(
                "wa_new",
                "msg_old_pending",
                "we_1",
                1,
                at(6_000),
                Some(at(30_000)),
            ),
            DeliveryOutcome::Retry {
                next_attempt_at: at(30_000),
            },
        )
        .await
        .unwrap();

    let pruned = store.prune_webhook_history(at(4_000)).await.unwrap();
    assert_eq!(pruned, 1);
    let log = store.list_attempts(&v.id, "we_1", 10).await.unwrap();
    assert_eq!(
        log.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["wa_new"]
    );
    let left = store
        .claim_deliveries(at(100_000), 10, "w", at(200_000))
        .await
        .unwrap();
    let mut ids: Vec<_> = left.iter().map(|d| d.event_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["msg_new", "msg_old_pending"]);
    assert_eq!(store.prune_webhook_history(at(4_000)).await.unwrap(), 0);
}
