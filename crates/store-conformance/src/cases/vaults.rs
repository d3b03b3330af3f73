//! Cases of vaults: round trips, membership slots, and an atomic failed creation.

use std::sync::Arc;

use tokenwarden_domain::VaultId;
use tokenwarden_store::{KeySlot, Store, StoreError};

use crate::fixtures::{account, blob, chain_len, rng, t0, vault};

pub async fn vaults_round_trip_with_membership(store: Arc<dyn Store>) {
    let owner = account("owner@example.com");
    let outsider = account("outsider@example.com");
    store.create_account(owner.clone()).await.unwrap();
    store.create_account(outsider.clone()).await.unwrap();
    let managed = vault(&owner.id, true);
    let plain = vault(&owner.id, false);
    let (m, p) = (managed.vault.clone(), plain.vault.clone());

    store.create_vault(managed.clone()).await.unwrap();
    store.create_vault(plain).await.unwrap();

    let got = store.vault(&m.id).await.unwrap().unwrap();
    assert_eq!(got.id, m.id);
    assert_eq!(got.name.as_str(), "team vault");
    assert!(got.managed);
    assert_eq!(got.dek_key_id, u32::MAX);
    assert_eq!(got.sealing_public_key, blob(5));
    assert_eq!(got.sealing_private_key.as_bytes(), blob(6));
    assert_eq!(got.master_slot, Some(KeySlot::new(blob(7))));
    assert_eq!(got.created_at, t0());
    let got = store.vault(&p.id).await.unwrap().unwrap();
    assert!(!got.managed);
    assert_eq!(got.master_slot, None);
    assert!(
        store
            .vault(&VaultId::generate(&mut rng()))
            .await
            .unwrap()
            .is_none()
    );

    let mut mine: Vec<_> = store
        .vaults_of_account(&owner.id)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.id)
        .collect();
    mine.sort();
    let mut expected = vec![m.id.clone(), p.id.clone()];
    expected.sort();
    assert_eq!(mine, expected);
    assert!(
        store
            .vaults_of_account(&outsider.id)
            .await
            .unwrap()
            .is_empty()
    );

    let (v, slot) = store
        .vault_membership(&m.id, &owner.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.id, m.id);
    assert_eq!(slot.as_bytes(), blob(8));
    assert!(
        store
            .vault_membership(&m.id, &outsider.id)
            .await
            .unwrap()
            .is_none()
    );

    // The first key and the vault's audit record came with it.
    let keys = store.list_api_keys(&m.id).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, managed.first_key.id);
    assert_eq!(chain_len(&store, m.id.as_str()).await, 1);
}

pub async fn a_failed_vault_creation_writes_nothing(store: Arc<dyn Store>) {
    let owner = account("owner@example.com");
    store.create_account(owner.clone()).await.unwrap();
    let first = vault(&owner.id, false);
    store.create_vault(first.clone()).await.unwrap();

    // Same first-key id as an existing key: the key insert fails after the vault row.
    let mut second = vault(&owner.id, false);
    second.first_key.id = first.first_key.id.clone();
    let v2 = second.vault.id.clone();
    let err = store.create_vault(second).await.unwrap_err();

    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(store.vault(&v2).await.unwrap().is_none());
    assert_eq!(chain_len(&store, v2.as_str()).await, 0);
    assert!(
        store
            .audit_heads()
            .await
            .unwrap()
            .iter()
            .all(|h| h.chain != v2.as_str())
    );
    assert_eq!(store.vaults_of_account(&owner.id).await.unwrap().len(), 1);
}
