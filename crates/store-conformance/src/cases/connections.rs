//! Cases of connections: conflicts and case-sensitive ids, the token read's join, and
//! deletion.

use std::sync::Arc;

use tokenwarden_domain::{ConnectionId, Scopes};
use tokenwarden_store::{ConnectionStatus, ProviderRecord, Store, StoreError, TokenFormat};

use super::race::race;
use crate::fixtures::{
    app, at, audit, blob, chain_len, seeded_connection, seeded_vault, t0, tokens, upsert,
};

pub async fn insert_connection_conflicts_and_keeps_ids_case_sensitive(store: Arc<dyn Store>) {
    let (v, a, conn) = seeded_connection(&store).await;
    let before = chain_len(&store, v.id.as_str()).await;

    let err = store
        .insert_connection(
            upsert(&v.id, conn.as_str(), &a.id, tokens(40, 1)),
            audit(Some(&v.id), "connection.import"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(chain_len(&store, v.id.as_str()).await, before);
    let c = store.connection(&v.id, &conn).await.unwrap().unwrap();
    assert_eq!(c.token_set.as_bytes(), blob(10));

    for id in ["Foo", "foo", "FOO"] {
        store
            .insert_connection(
                upsert(&v.id, id, &a.id, tokens(41, 1)),
                audit(Some(&v.id), "connection.import"),
            )
            .await
            .unwrap();
    }
    let ids: Vec<_> = store
        .list_connections(&v.id, &Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id.as_str().to_owned())
        .collect();
    assert_eq!(ids.len(), 4);
    for id in ["Foo", "foo", "FOO", "conn-1"] {
        assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
    }

    // Racing imports of one id: exactly one succeeds.
    let results = race(10, |_| {
        let (store, vid, aid) = (store.clone(), v.id.clone(), a.id.clone());
        async move {
            store
                .insert_connection(
                    upsert(&vid, "raced", &aid, tokens(42, 1)),
                    audit(Some(&vid), "connection.import"),
                )
                .await
        }
    })
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(StoreError::Conflict(_))))
    );
}

pub async fn connection_for_token_joins_app_vault_and_provider(store: Arc<dyn Store>) {
    let (v, a, conn) = seeded_connection(&store).await;

    let got = store
        .connection_for_token(&v.id, &conn)
        .await
        .unwrap()
        .unwrap();
    let c = &got.connection;
    assert_eq!(c.vault_id, v.id);
    assert_eq!(c.id, conn);
    assert_eq!(c.app_id, a.id);
    assert_eq!(c.app_key, a.key);
    assert_eq!(c.provider_key, "github");
    assert_eq!(c.status, ConnectionStatus::Active);
    assert_eq!(c.scopes, Scopes::parse(&["repo"]).unwrap());
    assert_eq!(c.token_set.as_bytes(), blob(10));
    assert_eq!(c.token_format, TokenFormat::DataKey);
    assert_eq!(c.expires_at, Some(at(3_600_000)));
    assert!(c.has_refresh);
    assert_eq!(c.version, 1);
    assert_eq!(c.lease_owner, None);
    assert_eq!(c.lease_until, None);
    assert_eq!(c.created_at, t0());
    assert_eq!(c.refreshed_at, None);
    assert_eq!(got.app.id, a.id);
    assert_eq!(got.app.client_secret.as_bytes(), blob(9));
    assert_eq!(got.sealing_private_key.as_bytes(), blob(6));
    assert_eq!(got.sealing_key_id, u32::MAX);
    assert_eq!(got.custom_provider_spec, None);
    assert!(
        store
            .connection_for_token(&v.id, &ConnectionId::parse("nope").unwrap())
            .await
            .unwrap()
            .is_none()
    );

    // An app on the vault's own provider brings its spec along.
    store
        .create_provider(
            ProviderRecord {
                vault_id: v.id.clone(),
                key: "acme".into(),
                spec: "{\"k\":1}".into(),
                created_at: t0(),
            },
            audit(Some(&v.id), "provider.create"),
        )
        .await
        .unwrap();
    let mut custom = app(&v.id, "acme-app");
    custom.provider_key = "acme".into();
    store
        .create_app(custom.clone(), audit(Some(&v.id), "app.create"))
        .await
        .unwrap();
    store
        .insert_connection(
            upsert(&v.id, "c-acme", &custom.id, tokens(11, 0)),
            audit(Some(&v.id), "connection.import"),
        )
        .await
        .unwrap();
    let got = store
        .connection_for_token(&v.id, &ConnectionId::parse("c-acme").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.custom_provider_spec.as_deref(), Some("{\"k\":1}"));
    assert_eq!(got.connection.provider_key, "acme");

    // Another vault cannot reach it.
    let (_, other) = seeded_vault(&store).await;
    assert!(
        store
            .connection_for_token(&other.id, &conn)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.connection(&other.id, &conn).await.unwrap().is_none());
}

pub async fn delete_connection_writes_audit_only_when_it_deleted(store: Arc<dyn Store>) {
    let (v, _, id) = seeded_connection(&store).await;
    let (_, other) = seeded_vault(&store).await;
    let before = chain_len(&store, v.id.as_str()).await;

    let elsewhere = store
        .delete_connection(
            &other.id,
            &id,
            audit(Some(&other.id), "connection.delete"),
            vec![],
        )
        .await
        .unwrap();
    let first = store
        .delete_connection(&v.id, &id, audit(Some(&v.id), "connection.delete"), vec![])
        .await
        .unwrap();
    let again = store
        .delete_connection(&v.id, &id, audit(Some(&v.id), "connection.delete"), vec![])
        .await
        .unwrap();

    assert!(!elsewhere);
    assert!(first);
    assert!(!again);
    assert!(store.connection(&v.id, &id).await.unwrap().is_none());
    assert!(
        store
            .list_connections(&v.id, &Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(chain_len(&store, v.id.as_str()).await, before + 1);
    assert_eq!(chain_len(&store, other.id.as_str()).await, 1);
}
