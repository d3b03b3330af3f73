//! Cases of webhook endpoints and the events fanned out to them; the outbox's claims,
//! outcomes and log are in [`outbox`].

mod outbox;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokenwarden_domain::VaultId;
use tokenwarden_store::{Ciphertext, NewEvent, NewWebhookEndpoint, Store, WebhookEndpointUpdate};

use crate::fixtures::{at, audit, blob, chain_len, seeded_vault, t0};

pub use outbox::*;

pub(crate) fn endpoint(vault: &VaultId, id: &str, events: Option<&[&str]>) -> NewWebhookEndpoint {
    NewWebhookEndpoint {
        id: id.into(),
        vault_id: vault.clone(),
        url: format!("https://hooks.example.com/{id}"),
        description: Some(format!("receiver {id}")),
        events: events.map(|e| e.iter().map(|t| (*t).to_owned()).collect()),
        secret: blob(20).into(),
        at: t0(),
    }
}

pub(crate) fn event(vault: &VaultId, id: &str, event_type: &str, when: DateTime<Utc>) -> NewEvent {
    NewEvent {
        id: id.into(),
        vault_id: vault.clone(),
        event_type: event_type.into(),
        payload: format!(r#"{{"type":"{event_type}","data":{{"id":"{id}"}}}}"#),
        at: when,
    }
}

pub(crate) async fn seeded_endpoint(
    store: &Arc<dyn Store>,
    vault: &VaultId,
    id: &str,
    events: Option<&[&str]>,
) {
    store
        .create_webhook(
            endpoint(vault, id, events),
            audit(Some(vault), "webhook.create"),
        )
        .await
        .unwrap();
}

/// Event ids with a delivery due for `endpoint`, as a claim far in the future sees them.
pub(crate) async fn pending_for(store: &Arc<dyn Store>, endpoint: &str) -> Vec<String> {
    let claimed = store
        .claim_deliveries(at(10_000_000), 1_000, "peek", at(10_000_001))
        .await
        .unwrap();
    let mut ids: Vec<String> = claimed
        .into_iter()
        .filter(|d| d.endpoint_id == endpoint)
        .map(|d| d.event_id)
        .collect();
    ids.sort();
    ids
}

pub async fn webhooks_round_trip_with_filter_and_secret_bytes(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let before = chain_len(&store, v.id.as_str()).await;
    seeded_endpoint(
        &store,
        &v.id,
        "we_filtered",
        Some(&[
            "connection.deleted",
            "api_key.created",
            "connection.deleted",
        ]),
    )
    .await;
    let mut all = endpoint(&v.id, "we_all", None);
    all.at = at(5);
    all.description = None;
    store
        .create_webhook(all, audit(Some(&v.id), "webhook.create"))
        .await
        .unwrap();

    let conflict = store
        .create_webhook(
            endpoint(&v.id, "we_all", None),
            audit(Some(&v.id), "webhook.create"),
        )
        .await;
    assert!(conflict.is_err());

    let list = store.list_webhooks(&v.id).await.unwrap();
    let ids: Vec<_> = list.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["we_filtered", "we_all"]);
    let w = &list[0];
    assert_eq!(w.vault_id, v.id);
    assert_eq!(w.url, "https://hooks.example.com/we_filtered");
    assert_eq!(w.description.as_deref(), Some("receiver we_filtered"));
    assert_eq!(
        w.events,
        Some(vec![
            "api_key.created".to_owned(),
            "connection.deleted".to_owned()
        ])
    );
    assert!(w.enabled);
    assert_eq!(w.disabled_reason, None);
    assert_eq!(w.secret, Ciphertext::from(blob(20)));
    assert_eq!(w.previous_secret, None);
    assert_eq!(w.previous_until, None);
    assert_eq!((w.created_at, w.updated_at), (t0(), t0()));
    assert_eq!(list[1].events, None);
    assert_eq!(list[1].description, None);
    assert_eq!(list[1].created_at, at(5));

    let one = store.webhook(&v.id, "we_all").await.unwrap().unwrap();
    assert_eq!(one.id, "we_all");
    assert_eq!(one.events, None);
    // Another vault sees none of them.
    let (_, other) = seeded_vault(&store).await;
    assert!(store.webhook(&other.id, "we_all").await.unwrap().is_none());
    assert!(store.list_webhooks(&other.id).await.unwrap().is_empty());
    assert_eq!(chain_len(&store, v.id.as_str()).await, before + 2);
}

pub async fn webhook_updates_change_filter_and_disabling_parks_deliveries(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_1", None).await;
    store
        .emit_events(&[
            event(&v.id, "msg_1", "connection.created", at(10)),
            event(&v.id, "msg_2", "connection.deleted", at(20)),
        ])
        .await
        .unwrap();
    assert_eq!(store.delivery_queue(at(100), 100).await.unwrap().due, 2);

    let off = WebhookEndpointUpdate {
        url: Some("https://other.example.com/h".into()),
        events: Some(Some(vec!["connection.created".into()])),
        enabled: Some(false),
        description: Some(None),
    };
    let w = store
        .update_webhook(
            &v.id,
            "we_1",
            off,
            at(50),
            audit(Some(&v.id), "webhook.update"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.url, "https://other.example.com/h");
    assert_eq!(w.events, Some(vec!["connection.created".to_owned()]));
    assert!(!w.enabled);
    assert_eq!(w.description, None);
    assert_eq!(w.updated_at, at(50));
    // Parked: not due, not claimable, and events now reach it no more.
    assert_eq!(store.delivery_queue(at(100), 100).await.unwrap().due, 0);
    store
        .emit_events(&[event(&v.id, "msg_3", "connection.created", at(60))])
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries(at(100), 10, "w", at(200))
            .await
            .unwrap()
            .is_empty()
    );

    let on = WebhookEndpointUpdate {
        enabled: Some(true),
        events: Some(None),
        ..WebhookEndpointUpdate::default()
    };
    let w = store
        .update_webhook(
            &v.id,
            "we_1",
            on,
            at(70),
            audit(Some(&v.id), "webhook.update"),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(w.enabled);
    assert_eq!(w.events, None);
    assert_eq!(w.url, "https://other.example.com/h");
    // Resumed: the parked two are due at the time of enabling.
    let q = store.delivery_queue(at(100), 100).await.unwrap();
    assert_eq!((q.due, q.oldest_due), (2, Some(at(70))));
    assert_eq!(pending_for(&store, "we_1").await, ["msg_1", "msg_2"]);

    let missing = store
        .update_webhook(
            &v.id,
            "we_nope",
            WebhookEndpointUpdate::default(),
            at(80),
            audit(Some(&v.id), "webhook.update"),
        )
        .await
        .unwrap();
    assert!(missing.is_none());
}

pub async fn rotating_a_webhook_secret_keeps_the_previous_one(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_1", None).await;
    let rotated = store
        .rotate_webhook_secret(
            &v.id,
            "we_1",
            blob(21).into(),
            at(86_400_000),
            at(5),
            audit(Some(&v.id), "webhook.rotate"),
        )
        .await
        .unwrap();
    assert!(rotated);
    let w = store.webhook(&v.id, "we_1").await.unwrap().unwrap();
    assert_eq!(w.secret, Ciphertext::from(blob(21)));
    assert_eq!(w.previous_secret, Some(Ciphertext::from(blob(20))));
    assert_eq!(w.previous_until, Some(at(86_400_000)));
    assert_eq!(w.updated_at, at(5));
    let absent = store
        .rotate_webhook_secret(
            &v.id,
            "we_nope",
            blob(22).into(),
            at(1),
            at(1),
            audit(Some(&v.id), "webhook.rotate"),
        )
        .await
        .unwrap();
    assert!(!absent);
}

pub async fn deleting_a_webhook_removes_its_deliveries_and_log(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_1", None).await;
    seeded_endpoint(&store, &v.id, "we_2", None).await;
    store
        .emit_events(&[event(&v.id, "msg_1", "connection.created", at(10))])
        .await
        .unwrap();
    let before = chain_len(&store, v.id.as_str()).await;
    let (_, other) = seeded_vault(&store).await;
    let elsewhere = store
        .delete_webhook(&other.id, "we_1", audit(Some(&other.id), "webhook.delete"))
        .await
        .unwrap();
    assert!(!elsewhere);
    let deleted = store
        .delete_webhook(&v.id, "we_1", audit(Some(&v.id), "webhook.delete"))
        .await
        .unwrap();
    assert!(deleted);
    assert!(store.webhook(&v.id, "we_1").await.unwrap().is_none());
    assert!(
        store
            .list_attempts(&v.id, "we_1", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.delivery_queue(at(100), 100).await.unwrap().due, 1);
    assert_eq!(pending_for(&store, "we_2").await, ["msg_1"]);
    let again = store
        .delete_webhook(&v.id, "we_1", audit(Some(&v.id), "webhook.delete"))
        .await
        .unwrap();
    assert!(!again);
    assert_eq!(chain_len(&store, v.id.as_str()).await, before + 1);
}

pub async fn events_fan_out_to_subscribed_enabled_endpoints_of_their_vault(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let (_, other) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_all", None).await;
    seeded_endpoint(&store, &v.id, "we_deleted", Some(&["connection.deleted"])).await;
    seeded_endpoint(&store, &v.id, "we_off", None).await;
    seeded_endpoint(&store, &other.id, "we_other", None).await;
    store
        .update_webhook(
            &v.id,
            "we_off",
            WebhookEndpointUpdate {
                enabled: Some(false),
                ..WebhookEndpointUpdate::default()
            },
            at(1),
            audit(Some(&v.id), "webhook.update"),
        )
        .await
        .unwrap();

    store
        .emit_events(&[
            event(&v.id, "msg_c", "connection.created", at(10)),
            event(&v.id, "msg_d", "connection.deleted", at(11)),
        ])
        .await
        .unwrap();
    let duplicate = store
        .emit_events(&[event(&v.id, "msg_c", "connection.created", at(12))])
        .await;
    assert!(duplicate.is_err());

    let claimed = store
        .claim_deliveries(at(100), 100, "w", at(200))
        .await
        .unwrap();
    let mut got: Vec<(&str, &str)> = claimed
        .iter()
        .map(|d| (d.endpoint_id.as_str(), d.event_id.as_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("we_all", "msg_c"),
            ("we_all", "msg_d"),
            ("we_deleted", "msg_d")
        ]
    );
    let d = claimed
        .iter()
        .find(|d| d.endpoint_id == "we_deleted")
        .unwrap();
    assert_eq!(d.vault_id, v.id);
    assert_eq!(d.event_type, "connection.deleted");
    assert_eq!(
        d.payload,
        event(&v.id, "msg_d", "connection.deleted", at(11)).payload
    );
    assert_eq!(d.event_created_at, at(11));
    assert_eq!(d.attempts, 0);
    assert_eq!(d.url, "https://hooks.example.com/we_deleted");
    assert_eq!(d.secret, Ciphertext::from(blob(20)));
}

pub async fn an_event_to_one_endpoint_ignores_its_filter_but_not_its_vault(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let (_, other) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_1", Some(&["connection.deleted"])).await;
    seeded_endpoint(&store, &v.id, "we_2", None).await;

    let sent = store
        .emit_event_to(event(&v.id, "msg_test", "webhook.test", at(10)), "we_1")
        .await
        .unwrap();
    assert!(sent);
    let wrong_vault = store
        .emit_event_to(event(&other.id, "msg_x", "webhook.test", at(10)), "we_1")
        .await
        .unwrap();
    assert!(!wrong_vault);
    // Nothing of the refused event was kept: its id is free.
    let reused = store
        .emit_event_to(event(&v.id, "msg_x", "webhook.test", at(11)), "we_2")
        .await
        .unwrap();
    assert!(reused);
    assert_eq!(pending_for(&store, "we_1").await, ["msg_test"]);
}

pub async fn every_copy_table_pages_with_webhook_rows(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    seeded_endpoint(&store, &v.id, "we_1", Some(&["connection.created"])).await;
    store
        .emit_events(&[event(&v.id, "msg_1", "connection.created", at(10))])
        .await
        .unwrap();
    for table in tokenwarden_store::copy::COPY_TABLES {
        let rows = store.copy_page(table, None, 10).await.unwrap();
        assert!(
            rows.iter().all(|r| r.len() == table.columns.len()),
            "{}",
            table.name
        );
        if table.name.starts_with("webhook_") && table.name != "webhook_attempts" {
            assert_eq!(rows.len(), 1, "{}", table.name);
        }
    }
}
