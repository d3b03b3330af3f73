//! Cases of API keys: every field round trips, conflicts and revocation leave the audit
//! chain as they should, and the hot-path read matches the two separate ones.

use std::sync::Arc;

use tokenwarden_domain::{ApiKeyId, ConnectionId, KeyScope};
use tokenwarden_store::{KeySlot, LookupHash, Store, StoreError};

use crate::fixtures::{
    api_key, at, audit, blob, chain_len, rng, seeded_connection, seeded_vault, t0,
};

pub async fn api_keys_round_trip_every_field(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let mut k = api_key(&v.id);
    k.roles = tokenwarden_domain::Roles::parse_list("read,connect").unwrap();
    k.scope =
        serde_json::from_str::<KeyScope>(r#"{"apps":["git*"],"connections":["c-1"]}"#).unwrap();
    k.expires_at = Some(at(86_400_000));
    store
        .create_api_key(k.clone(), audit(Some(&v.id), "api_key.create"))
        .await
        .unwrap();

    let auth = store.api_key_auth(&k.id).await.unwrap().unwrap();
    assert_eq!(auth.id, k.id);
    assert_eq!(auth.vault_id, v.id);
    assert_eq!(auth.roles.to_list(), k.roles.to_list());
    assert_eq!(auth.scope, k.scope);
    assert_eq!(auth.lookup_hash, Some(LookupHash::new(blob(3))));
    assert_eq!(auth.slot, Some(KeySlot::new(blob(4))));
    assert_eq!(auth.expires_at, Some(at(86_400_000)));
    assert_eq!(auth.revoked_at, None);
    assert_eq!(auth.last_used_at, None);
    assert!(
        store
            .api_key_auth(&ApiKeyId::generate(&mut rng()))
            .await
            .unwrap()
            .is_none()
    );

    store.touch_api_key(&k.id, at(5)).await.unwrap();
    let auth = store.api_key_auth(&k.id).await.unwrap().unwrap();
    assert_eq!(auth.last_used_at, Some(at(5)));

    let listed = store.list_api_keys(&v.id).await.unwrap();
    assert_eq!(listed.len(), 2, "the first key and this one");
    let got = listed.iter().find(|r| r.id == k.id).unwrap();
    assert_eq!(got.name.as_str(), "ci key");
    assert_eq!(got.vault_id, v.id);
    assert_eq!(got.roles.to_list(), k.roles.to_list());
    assert_eq!(got.scope, k.scope);
    assert_eq!(got.created_at, t0());
    assert_eq!(got.expires_at, Some(at(86_400_000)));
    assert_eq!(got.revoked_at, None);
    assert_eq!(got.last_used_at, Some(at(5)));
    let first = listed.iter().find(|r| r.id != k.id).unwrap();
    assert_eq!(first.expires_at, None);
    assert_eq!(first.scope, KeyScope::default());
}

pub async fn a_conflicting_api_key_writes_no_audit_record(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let k = api_key(&v.id);
    store
        .create_api_key(k.clone(), audit(Some(&v.id), "api_key.create"))
        .await
        .unwrap();
    let before = chain_len(&store, v.id.as_str()).await;

    let err = store
        .create_api_key(k, audit(Some(&v.id), "api_key.create"))
        .await
        .unwrap_err();

    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(chain_len(&store, v.id.as_str()).await, before);
}

pub async fn revoking_a_key_wipes_its_secrets_once(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let (_, other) = seeded_vault(&store).await;
    let k = api_key(&v.id);
    store
        .create_api_key(k.clone(), audit(Some(&v.id), "api_key.create"))
        .await
        .unwrap();
    let before = chain_len(&store, v.id.as_str()).await;

    let wrong_vault = store
        .revoke_api_key(
            &other.id,
            &k.id,
            at(7),
            audit(Some(&other.id), "api_key.revoke"),
        )
        .await
        .unwrap();
    let first = store
        .revoke_api_key(&v.id, &k.id, at(7), audit(Some(&v.id), "api_key.revoke"))
        .await
        .unwrap();
    let again = store
        .revoke_api_key(&v.id, &k.id, at(8), audit(Some(&v.id), "api_key.revoke"))
        .await
        .unwrap();

    assert!(!wrong_vault);
    assert!(first);
    assert!(!again);
    let auth = store.api_key_auth(&k.id).await.unwrap().unwrap();
    assert_eq!(auth.lookup_hash, None);
    assert_eq!(auth.slot, None);
    assert_eq!(auth.revoked_at, Some(at(7)));
    let listed = store.list_api_keys(&v.id).await.unwrap();
    assert_eq!(
        listed.iter().find(|r| r.id == k.id).unwrap().revoked_at,
        Some(at(7))
    );
    assert_eq!(chain_len(&store, v.id.as_str()).await, before + 1);
    assert_eq!(chain_len(&store, other.id.as_str()).await, 1);
}

pub async fn api_key_with_connection_reads_both_rows_of_the_keys_vault(store: Arc<dyn Store>) {
    let (v, _, conn) = seeded_connection(&store).await;
    let key = api_key(&v.id);
    store
        .create_api_key(key.clone(), audit(Some(&v.id), "api_key.create"))
        .await
        .unwrap();
    // Another vault with a connection of the same id, and its own key.
    let (other, _, same_id) = seeded_connection(&store).await;
    assert_eq!(same_id, conn);
    let other_key = api_key(&other.id);
    store
        .create_api_key(other_key.clone(), audit(Some(&other.id), "api_key.create"))
        .await
        .unwrap();

    for (k, vault) in [(&key, &v), (&other_key, &other)] {
        let (key_row, connection) = store
            .api_key_auth_with_connection(&k.id, &conn)
            .await
            .unwrap()
            .unwrap();
        // Exactly what the two separate reads answer.
        let alone = store.api_key_auth(&k.id).await.unwrap().unwrap();
        assert_eq!(format!("{key_row:?}"), format!("{alone:?}"));
        let connection = connection.unwrap();
        let direct = store
            .connection_for_token(&vault.id, &conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(format!("{connection:?}"), format!("{direct:?}"));
        assert_eq!(connection.connection.vault_id, vault.id);
    }

    // A connection the key's vault lacks: the key still answers.
    let (key_row, connection) = store
        .api_key_auth_with_connection(&key.id, &ConnectionId::parse("nope").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key_row.id, key.id);
    assert_eq!(key_row.lookup_hash, Some(LookupHash::new(blob(3))));
    assert!(connection.is_none());

    // An unknown key: nothing, not even the connection.
    assert!(
        store
            .api_key_auth_with_connection(&ApiKeyId::generate(&mut rng()), &conn)
            .await
            .unwrap()
            .is_none()
    );

    // A revoked key reads back wiped, as from api_key_auth.
    assert!(
        store
            .revoke_api_key(&v.id, &key.id, at(7), audit(Some(&v.id), "api_key.delete"))
            .await
            .unwrap()
    );
    let (key_row, _) = store
        .api_key_auth_with_connection(&key.id, &conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key_row.lookup_hash, None);
    assert_eq!(key_row.slot, None);
    assert_eq!(key_row.revoked_at, Some(at(7)));
}
