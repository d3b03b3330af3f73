//! Connections against MySQL: insert, list, the token read's row, reconnecting.

use tokenwarden_domain::*;
use tokenwarden_store::*;

use crate::fixtures::*;

#[tokio::test]
async fn providers_and_apps_round_trip_update_and_conflict() {
    with_store(|store| async move {
        let (vault, app) = app_fixture(&store).await;
        let dup_provider = store
            .create_provider(
                ProviderRecord {
                    vault_id: vault.clone(),
                    key: "acme".into(),
                    spec: "{}".into(),
                    created_at: at(1),
                },
                audit(Some(&vault), "provider.create", 4),
            )
            .await;
        let providers = store.list_providers(&vault).await.unwrap();
        let acme = store.provider(&vault, "acme").await.unwrap().unwrap();
        let apps = store.list_apps(&vault).await.unwrap();
        let by_key = store.app_by_key(&vault, &app.key).await.unwrap().unwrap();

        // Same values as stored: the row still counts as updated.
        let same = store
            .update_app(
                &vault,
                &app.key,
                AppUpdate::default(),
                at(1_700_000_001_000),
                audit(Some(&vault), "app.update", 5),
            )
            .await
            .unwrap();
        let blocked = store
            .update_app(
                &vault,
                &app.key,
                AppUpdate {
                    status: Some(AppStatus::Blocked),
                    scopes: Some(scopes(&["a", "b"])),
                    client_id: Some("client-2".into()),
                    client_secret: Some(vec![7, 7].into()),
                },
                at(9_000),
                audit(Some(&vault), "app.update", 6),
            )
            .await
            .unwrap()
            .unwrap();
        let missing = store
            .update_app(
                &vault,
                &AppKey::parse("nope").unwrap(),
                AppUpdate::default(),
                at(9_000),
                audit(Some(&vault), "app.update", 7),
            )
            .await
            .unwrap();

        assert!(
            matches!(dup_provider, Err(StoreError::Conflict("provider"))),
            "{dup_provider:?}"
        );
        assert_eq!(providers.len(), 1);
        assert_eq!(acme.spec, r#"{"name":"Acme"}"#);
        assert_eq!(acme.created_at, at(2_000));
        assert!(store.provider(&vault, "ACME").await.unwrap().is_none());
        assert_eq!(apps.len(), 1);
        assert_eq!(by_key.client_secret, Ciphertext::new(vec![0, 10, 20, 0]));
        assert_eq!(by_key.scopes, scopes(&["repo", "read:user"]));
        assert!(same.is_some());
        assert_eq!(blocked.status, AppStatus::Blocked);
        assert_eq!(blocked.scopes, scopes(&["a", "b"]));
        assert_eq!(blocked.client_id, "client-2");
        assert_eq!(blocked.client_secret, Ciphertext::new(vec![7, 7]));
        assert_eq!(blocked.updated_at, at(9_000));
        assert_eq!(blocked.created_at, app.created_at);
        assert!(missing.is_none());
    })
    .await;
}

#[tokio::test]
async fn an_app_with_connections_cannot_be_deleted() {
    with_store(|store| async move {
        let (vault, app) = app_fixture(&store).await;
        store
            .insert_connection(
                upsert(&vault, "c1", &app.id, 1_000, 1),
                audit(Some(&vault), "connection.import", 4),
            )
            .await
            .unwrap();

        let refused = store
            .delete_app(&vault, &app.key, audit(Some(&vault), "app.delete", 5))
            .await;
        assert!(
            store
                .delete_connection(
                    &vault,
                    &cid("c1"),
                    audit(Some(&vault), "connection.delete", 6),
                    vec![]
                )
                .await
                .unwrap()
        );
        let deleted = store
            .delete_app(&vault, &app.key, audit(Some(&vault), "app.delete", 7))
            .await
            .unwrap();
        let again = store
            .delete_app(&vault, &app.key, audit(Some(&vault), "app.delete", 8))
            .await
            .unwrap();

        assert!(
            matches!(refused, Err(StoreError::Conflict("connection of this app"))),
            "{refused:?}"
        );
        assert!(deleted);
        assert!(!again);
        assert!(store.app_by_key(&vault, &app.key).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn connection_ids_differing_only_in_case_are_different_connections() {
    with_store(|store| async move {
        let (vault, app) = app_fixture(&store).await;
        store
            .insert_connection(
                upsert(&vault, "Foo", &app.id, 1_000, 1),
                audit(Some(&vault), "connection.import", 4),
            )
            .await
            .unwrap();
        store
            .insert_connection(
                upsert(&vault, "foo", &app.id, 1_000, 2),
                audit(Some(&vault), "connection.import", 5),
            )
            .await
            .unwrap();
        let dup = store
            .insert_connection(
                upsert(&vault, "foo", &app.id, 1_000, 3),
                audit(Some(&vault), "connection.import", 6),
            )
            .await;

        let list = store
            .list_connections(&vault, &Default::default())
            .await
            .unwrap();
        assert!(
            matches!(dup, Err(StoreError::Conflict("connection"))),
            "{dup:?}"
        );
        assert_eq!(list.len(), 2);
        let upper = store
            .connection(&vault, &cid("Foo"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(upper.token_set, Ciphertext::new(vec![1, 0, 1]));
        assert_eq!(store.list_audit(&vault, 100, None).await.unwrap().len(), 6);
    })
    .await;
}

#[tokio::test]
async fn reconnecting_replaces_tokens_in_place_but_never_takes_over_another_apps_connection() {
    with_store(|store| async move {
        let (vault, app) = app_fixture(&store).await;
        let other = crate::fixtures::app(&vault, "other", "github");
        store
            .create_app(other.clone(), audit(Some(&vault), "app.create", 4))
            .await
            .unwrap();
        store
            .insert_connection(
                upsert(&vault, "c1", &app.id, 1_000, 1),
                audit(Some(&vault), "connection.import", 5),
            )
            .await
            .unwrap();
        assert!(
            store
                .acquire_refresh_lease(&vault, &cid("c1"), 1, "me", at(50_000), at(1_000))
                .await
                .unwrap()
        );

        store
            .finish_connect(
                &ConnectSessionId::generate(&mut rng()),
                upsert(&vault, "c1", &app.id, 2_000, 2),
                audit(Some(&vault), "connect.complete", 6),
            )
            .await
            .unwrap();
        let takeover = store
            .finish_connect(
                &ConnectSessionId::generate(&mut rng()),
                upsert(&vault, "c1", &other.id, 3_000, 3),
                audit(Some(&vault), "connect.complete", 7),
            )
            .await;

        let c = store.connection(&vault, &cid("c1")).await.unwrap().unwrap();
        assert!(
            matches!(
                takeover,
                Err(StoreError::Conflict("connection of another app"))
            ),
            "{takeover:?}"
        );
        assert_eq!(c.version, 2);
        assert_eq!(c.token_set, Ciphertext::new(vec![2, 0, 2]));
        assert_eq!(c.app_id, app.id);
        assert_eq!(c.lease_owner, None);
        assert_eq!(c.lease_until, None);
        assert_eq!(c.created_at, at(1_000));
        assert_eq!(c.status, ConnectionStatus::Active);
    })
    .await;
}

#[tokio::test]
async fn a_token_read_gets_connection_app_sealing_key_and_custom_provider_in_one_row() {
    with_store(|store| async move {
        let (vault, app) = app_fixture(&store).await;
        let mut up = upsert(&vault, "c1", &app.id, 1_000, 1);
        up.tokens.expires_at = None;
        up.tokens.has_refresh = false;
        store
            .insert_connection(up, audit(Some(&vault), "connection.import", 4))
            .await
            .unwrap();

        let t = store
            .connection_for_token(&vault, &cid("c1"))
            .await
            .unwrap()
            .unwrap();
        let rewrapped = store
            .rewrap_tokens(&vault, &cid("c1"), 1, vec![9, 9].into())
            .await
            .unwrap();
        let twice = store
            .rewrap_tokens(&vault, &cid("c1"), 1, vec![8, 8].into())
            .await
            .unwrap();
        let after = store.connection(&vault, &cid("c1")).await.unwrap().unwrap();

        assert_eq!(t.connection.app_key, app.key);
        assert_eq!(t.connection.provider_key, "acme");
        assert_eq!(t.connection.token_format, TokenFormat::Sealed);
        assert_eq!(t.connection.expires_at, None);
        assert!(!t.connection.has_refresh);
        assert_eq!(t.connection.refreshed_at, None);
        assert_eq!(t.app.id, app.id);
        assert_eq!(t.sealing_private_key, Ciphertext::new(vec![5; 48]));
        assert_eq!(t.sealing_key_id, 7);
        assert_eq!(
            t.custom_provider_spec.as_deref(),
            Some(r#"{"name":"Acme"}"#)
        );
        assert!(rewrapped);
        assert!(!twice);
        assert_eq!(after.token_set, Ciphertext::new(vec![9, 9]));
        assert_eq!(after.token_format, TokenFormat::DataKey);
        assert_eq!(after.version, 1);
        assert!(
            store
                .connection_for_token(&vault, &cid("c2"))
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}
