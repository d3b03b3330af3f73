use std::sync::Arc;

use tokenwarden_domain::*;
use tokenwarden_store::*;

use crate::fixtures::*;

#[tokio::test]
async fn a_setting_keeps_the_first_value_written() {
    with_store(|store| async move {
        assert_eq!(store.setting("fp").await.unwrap(), None);
        assert_eq!(
            store.init_setting("fp", &[1, 0, 2]).await.unwrap(),
            vec![1, 0, 2]
        );
        assert_eq!(store.init_setting("fp", &[9]).await.unwrap(), vec![1, 0, 2]);
        assert_eq!(store.setting("fp").await.unwrap(), Some(vec![1, 0, 2]));
        assert_eq!(store.setting("FP").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn accounts_round_trip_and_a_taken_email_conflicts() {
    with_store(|store| async move {
        let a = new_account("ann@example.com");
        store.create_account(a.clone()).await.unwrap();

        let got = store.account_by_email(&a.email).await.unwrap().unwrap();
        let dup = store.create_account(new_account("ann@example.com")).await;

        assert_eq!(got.id, a.id);
        assert_eq!(got.email, a.email);
        assert_eq!(got.kdf_params, a.kdf_params);
        assert_eq!(got.kdf_salt, a.kdf_salt);
        assert_eq!(got.verifier, a.verifier);
        assert_eq!(got.created_at, a.created_at);
        assert!(matches!(dup, Err(StoreError::Conflict("email"))), "{dup:?}");
        let other = Email::parse("bob@example.com").unwrap();
        assert!(store.account_by_email(&other).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn a_vault_its_membership_and_its_first_key_round_trip() {
    with_store(|store| async move {
        let (vault, account, key) = vault(&store).await;

        let v = store.vault(&vault).await.unwrap().unwrap();
        let (mv, slot) = store
            .vault_membership(&vault, &account)
            .await
            .unwrap()
            .unwrap();
        let mine = store.vaults_of_account(&account).await.unwrap();
        let auth = store.api_key_auth(&key.id).await.unwrap().unwrap();
        let keys = store.list_api_keys(&vault).await.unwrap();

        assert_eq!(v.name.as_str(), "Team vault");
        assert!(v.managed);
        assert_eq!(v.dek_key_id, 7);
        assert_eq!(v.sealing_public_key, vec![4; 32]);
        assert_eq!(v.sealing_private_key, Ciphertext::new(vec![5; 48]));
        assert_eq!(v.master_slot, Some(KeySlot::new(vec![6; 60])));
        assert_eq!(v.created_at, at(1_700_000_000_001));
        assert_eq!(mv.id, vault);
        assert_eq!(slot, KeySlot::new(vec![8; 60]));
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].id, vault);
        assert_eq!(auth.vault_id, vault);
        assert_eq!(auth.roles, Roles::admin());
        assert_eq!(auth.scope, KeyScope::default());
        assert_eq!(auth.lookup_hash, Some(LookupHash::new(vec![0xab; 32])));
        assert_eq!(auth.slot, Some(KeySlot::new(vec![0, 1, 2, 0xff])));
        assert_eq!(auth.expires_at, Some(at(1_800_000_000_789)));
        assert_eq!(auth.revoked_at, None);
        assert_eq!(auth.last_used_at, None);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].name.as_str(), "first");
        assert_eq!(keys[0].created_at, at(1_700_000_000_456));
        let stranger = AccountId::generate(&mut rng());
        assert!(
            store
                .vault_membership(&vault, &stranger)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .vault(&VaultId::generate(&mut rng()))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .api_key_auth(&ApiKeyId::generate(&mut rng()))
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn revoking_a_key_wipes_its_secrets_once_and_touch_sets_last_use() {
    with_store(|store| async move {
        let (vault, _, first) = vault(&store).await;
        let second = new_key(&vault, "second");
        store
            .create_api_key(second.clone(), audit(Some(&vault), "api_key.create", 3))
            .await
            .unwrap();
        store.touch_api_key(&second.id, at(5_000)).await.unwrap();

        let revoked = store
            .revoke_api_key(
                &vault,
                &second.id,
                at(6_000),
                audit(Some(&vault), "api_key.revoke", 6),
            )
            .await
            .unwrap();
        let again = store
            .revoke_api_key(
                &vault,
                &second.id,
                at(7_000),
                audit(Some(&vault), "api_key.revoke", 7),
            )
            .await
            .unwrap();
        let other_vault = store
            .revoke_api_key(
                &VaultId::generate(&mut rng()),
                &first.id,
                at(7_000),
                audit(None, "api_key.revoke", 7),
            )
            .await
            .unwrap();
        let auth = store.api_key_auth(&second.id).await.unwrap().unwrap();
        let dup = store
            .create_api_key(second.clone(), audit(Some(&vault), "api_key.create", 8))
            .await;
        let log = store.list_audit(&vault, 100, None).await.unwrap();

        assert!(revoked);
        assert!(!again);
        assert!(!other_vault);
        assert_eq!(auth.lookup_hash, None);
        assert_eq!(auth.slot, None);
        assert_eq!(auth.revoked_at, Some(at(6_000)));
        assert_eq!(auth.last_used_at, Some(at(5_000)));
        assert!(
            matches!(dup, Err(StoreError::Conflict("api key"))),
            "{dup:?}"
        );
        let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "api_key.revoke",
                "api_key.create",
                "api_key.create",
                "vault.create"
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn parallel_login_attempts_are_counted_so_only_the_limit_pass() {
    with_store(|store| async move {
        let subject = vec![7u8; 32];
        store
            .begin_login_attempt(&subject, at(100), at(0), 5)
            .await
            .unwrap();
        // An attempt from before the window no longer counts.
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let store = Arc::clone(&store);
                let subject = subject.clone();
                tokio::spawn(async move {
                    store
                        .begin_login_attempt(&subject, at(20_000), at(10_000), 5)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        let allowed: Vec<i64> = outcomes
            .iter()
            .filter_map(|o| match o {
                LoginAttempt::Allowed(id) => Some(*id),
                LoginAttempt::Limited { .. } => None,
            })
            .collect();
        let limited = outcomes
            .iter()
            .filter(|o| **o == LoginAttempt::Limited { oldest: at(20_000) })
            .count();
        assert_eq!(allowed.len(), 5);
        assert_eq!(limited, 7);

        store.clear_login_attempt(allowed[0]).await.unwrap();
        let after_clear = store
            .begin_login_attempt(&subject, at(20_001), at(10_000), 5)
            .await
            .unwrap();
        let other_subject = store
            .begin_login_attempt(&[8u8; 32], at(20_001), at(10_000), 5)
            .await
            .unwrap();
        assert!(matches!(after_clear, LoginAttempt::Allowed(_)));
        assert!(matches!(other_subject, LoginAttempt::Allowed(_)));
    })
    .await;
}
