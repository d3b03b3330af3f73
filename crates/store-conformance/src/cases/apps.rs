//! Cases of a vault's providers and apps: conflicts, partial updates, guarded deletes.

use std::sync::Arc;

use tokenwarden_domain::{AppKey, ConnectionId, Scopes};
use tokenwarden_store::{AppStatus, AppUpdate, ProviderRecord, Store, StoreError};

use crate::fixtures::{
    app, at, audit, blob, chain_len, seeded_app, seeded_vault, t0, tokens, upsert,
};

pub async fn providers_round_trip_and_conflict(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let (_, other) = seeded_vault(&store).await;
    let p = ProviderRecord {
        vault_id: v.id.clone(),
        key: "acme".into(),
        spec: r#"{"authorize_url":"https://acme.example/authorize"}"#.into(),
        created_at: t0(),
    };
    store
        .create_provider(p.clone(), audit(Some(&v.id), "provider.create"))
        .await
        .unwrap();
    let before = chain_len(&store, v.id.as_str()).await;

    let err = store
        .create_provider(p.clone(), audit(Some(&v.id), "provider.create"))
        .await
        .unwrap_err();
    let mut elsewhere = p.clone();
    elsewhere.vault_id = other.id.clone();
    store
        .create_provider(elsewhere, audit(Some(&other.id), "provider.create"))
        .await
        .unwrap();
    let mut second = p.clone();
    second.key = "acme-2".into();
    store
        .create_provider(second, audit(Some(&v.id), "provider.create"))
        .await
        .unwrap();

    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(chain_len(&store, v.id.as_str()).await, before + 1);
    let got = store.provider(&v.id, "acme").await.unwrap().unwrap();
    assert_eq!(got.vault_id, v.id);
    assert_eq!(got.key, "acme");
    assert_eq!(got.spec, p.spec);
    assert_eq!(got.created_at, t0());
    assert!(store.provider(&v.id, "nope").await.unwrap().is_none());
    let keys: Vec<_> = store
        .list_providers(&v.id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(keys, vec!["acme", "acme-2"]);
}

pub async fn apps_conflict_update_and_delete(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let a = seeded_app(&store, &v.id, "github").await;
    seeded_app(&store, &v.id, "alpha").await;
    let before = chain_len(&store, v.id.as_str()).await;

    let mut dup = app(&v.id, "github");
    dup.client_id = "other".into();
    let err = store
        .create_app(dup, audit(Some(&v.id), "app.create"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(chain_len(&store, v.id.as_str()).await, before);

    let got = store.app_by_key(&v.id, &a.key).await.unwrap().unwrap();
    assert_eq!(got.id, a.id);
    assert_eq!(got.vault_id, v.id);
    assert_eq!(got.provider_key, "github");
    assert_eq!(got.client_id, "client-123");
    assert_eq!(got.client_secret.as_bytes(), blob(9));
    assert_eq!(got.scopes, a.scopes);
    assert_eq!(got.status, AppStatus::Active);
    assert_eq!(got.created_at, t0());
    assert_eq!(got.updated_at, at(1));
    let keys: Vec<_> = store
        .list_apps(&v.id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.key.as_str().to_owned())
        .collect();
    assert_eq!(keys, vec!["alpha", "github"]);

    // Only what the update names changes.
    let updated = store
        .update_app(
            &v.id,
            &a.key,
            AppUpdate {
                status: Some(AppStatus::Blocked),
                ..AppUpdate::default()
            },
            at(50),
            audit(Some(&v.id), "app.update"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.status, AppStatus::Blocked);
    assert_eq!(updated.client_id, "client-123");
    assert_eq!(updated.client_secret.as_bytes(), blob(9));
    assert_eq!(updated.scopes, a.scopes);
    assert_eq!(updated.updated_at, at(50));
    let updated = store
        .update_app(
            &v.id,
            &a.key,
            AppUpdate {
                status: None,
                scopes: Some(Scopes::parse(&["gist"]).unwrap()),
                client_id: Some("client-456".into()),
                client_secret: Some(blob(20).into()),
            },
            at(60),
            audit(Some(&v.id), "app.update"),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.status, AppStatus::Blocked);
    assert_eq!(updated.scopes, Scopes::parse(&["gist"]).unwrap());
    assert_eq!(updated.client_id, "client-456");
    assert_eq!(updated.client_secret.as_bytes(), blob(20));
    assert_eq!(
        store
            .app_by_key(&v.id, &a.key)
            .await
            .unwrap()
            .unwrap()
            .client_id,
        "client-456"
    );
    let missing = AppKey::parse("missing").unwrap();
    assert!(
        store
            .update_app(
                &v.id,
                &missing,
                AppUpdate::default(),
                at(70),
                audit(Some(&v.id), "app.update")
            )
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(chain_len(&store, v.id.as_str()).await, before + 2);

    // An app with a connection cannot go; without, it can, once.
    store
        .insert_connection(
            upsert(&v.id, "conn-1", &a.id, tokens(1, 0)),
            audit(Some(&v.id), "connection.import"),
        )
        .await
        .unwrap();
    let err = store
        .delete_app(&v.id, &a.key, audit(Some(&v.id), "app.delete"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(
        store
            .delete_connection(
                &v.id,
                &ConnectionId::parse("conn-1").unwrap(),
                audit(Some(&v.id), "connection.delete"),
                vec![]
            )
            .await
            .unwrap()
    );
    let len = chain_len(&store, v.id.as_str()).await;
    assert!(
        store
            .delete_app(&v.id, &a.key, audit(Some(&v.id), "app.delete"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_app(&v.id, &a.key, audit(Some(&v.id), "app.delete"))
            .await
            .unwrap()
    );
    assert!(store.app_by_key(&v.id, &a.key).await.unwrap().is_none());
    assert_eq!(chain_len(&store, v.id.as_str()).await, len + 1);
}
