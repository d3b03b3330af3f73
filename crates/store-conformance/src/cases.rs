//! The cases. Each takes a fresh, empty store.

use std::sync::Arc;

use tokenwarden_domain::{
    AccountId, ApiKeyId, AppKey, AuditId, ConnectSessionId, ConnectionId, Email, KeyScope, Scopes,
    VaultId,
};
use tokenwarden_store::audit::{ChainVerifier, SERVER_CHAIN};
use tokenwarden_store::copy;
use tokenwarden_store::*;

use crate::fixtures::*;

/// Runs `n` copies of `f` at once and returns their answers.
async fn race<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let fut = f(i);
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            fut.await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn winners(results: &[bool]) -> usize {
    results.iter().filter(|w| **w).count()
}

pub async fn settings_are_set_once_and_read_back(store: Arc<dyn Store>) {
    assert_eq!(store.setting("fingerprint").await.unwrap(), None);
    store.ping().await.unwrap();

    let first = store.init_setting("fingerprint", &blob(1)).await.unwrap();
    let second = store.init_setting("fingerprint", &blob(2)).await.unwrap();

    assert_eq!(first, blob(1));
    assert_eq!(second, blob(1), "init_setting never overwrites");
    assert_eq!(store.setting("fingerprint").await.unwrap(), Some(blob(1)));
    assert_eq!(store.setting("other").await.unwrap(), None);

    let racers = race(20, |i| {
        let store = store.clone();
        async move { store.init_setting("raced", &[i as u8]).await.unwrap() }
    })
    .await;
    assert!(
        racers.windows(2).all(|w| w[0] == w[1]),
        "every racer sees one value"
    );
}

pub async fn accounts_round_trip_and_conflict_on_email(store: Arc<dyn Store>) {
    let a = account("alice@example.com");
    store.create_account(a.clone()).await.unwrap();

    let mut dup = account("alice@example.com");
    dup.kdf_salt = blob(9);
    let err = store.create_account(dup).await.unwrap_err();

    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let got = store
        .account_by_email(&Email::parse("alice@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, a.id);
    assert_eq!(got.email.as_str(), "alice@example.com");
    assert_eq!(got.kdf_params, a.kdf_params);
    assert_eq!(got.kdf_salt, a.kdf_salt);
    assert_eq!(got.verifier, a.verifier);
    assert_eq!(got.created_at, t0());
    assert!(
        store
            .account_by_email(&Email::parse("bob@example.com").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn login_attempts_are_limited_pruned_and_cleared(store: Arc<dyn Store>) {
    let subject = blob(1);
    let mut ids = Vec::new();
    for i in 0..3 {
        match store
            .begin_login_attempt(&subject, at(i), at(-60_000), 3)
            .await
            .unwrap()
        {
            LoginAttempt::Allowed(id) => ids.push(id),
            other => panic!("attempt {i} refused: {other:?}"),
        }
    }

    let fourth = store
        .begin_login_attempt(&subject, at(10), at(-60_000), 3)
        .await
        .unwrap();
    assert_eq!(fourth, LoginAttempt::Limited { oldest: at(0) });
    // Another subject has its own count.
    assert!(matches!(
        store
            .begin_login_attempt(&blob(2), at(10), at(-60_000), 3)
            .await
            .unwrap(),
        LoginAttempt::Allowed(_)
    ));

    // Clearing one (a success) frees a place.
    store.clear_login_attempt(ids[1]).await.unwrap();
    assert!(matches!(
        store
            .begin_login_attempt(&subject, at(20), at(-60_000), 3)
            .await
            .unwrap(),
        LoginAttempt::Allowed(_)
    ));
    // Once the window has moved past them, old attempts are pruned.
    assert!(matches!(
        store
            .begin_login_attempt(&subject, at(120_000), at(30), 3)
            .await
            .unwrap(),
        LoginAttempt::Allowed(_)
    ));
}

pub async fn login_attempts_racing_never_exceed_the_limit(store: Arc<dyn Store>) {
    let results = race(20, |i| {
        let store = store.clone();
        async move {
            store
                .begin_login_attempt(&blob(7), at(i as i64), at(-60_000), 5)
                .await
                .unwrap()
        }
    })
    .await;

    let allowed = results
        .iter()
        .filter(|r| matches!(r, LoginAttempt::Allowed(_)))
        .count();
    assert_eq!(allowed, 5);
}

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
    assert_eq!(got.sealing_private_key, blob(6));
    assert_eq!(got.master_slot, Some(blob(7)));
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
    assert_eq!(slot, blob(8));
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
    assert_eq!(auth.lookup_hash, Some(blob(3)));
    assert_eq!(auth.slot, Some(blob(4)));
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

pub async fn audit_pages_newest_first_before_a_record(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let (_, other) = seeded_vault(&store).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut a = audit(Some(&v.id), "connection.read");
        a.at = at(i);
        a.actor = Actor::ApiKey(ApiKeyId::generate(&mut rng()));
        a.target = Some(format!("conn-{i}"));
        a.outcome = "denied";
        a.ip = Some("192.0.2.7".into());
        ids.push((a.id.clone(), a.actor.clone()));
        store.append_audit(a).await.unwrap();
    }
    let mut by_account = audit(None, "login.failure");
    by_account.actor = Actor::Account(AccountId::generate(&mut rng()));
    store.append_audit(by_account.clone()).await.unwrap();
    store
        .append_audit(audit(Some(&other.id), "noise"))
        .await
        .unwrap();

    let page = store.list_audit(&v.id, 3, None).await.unwrap();
    let page_ids: Vec<_> = page.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        page_ids,
        vec![ids[4].0.clone(), ids[3].0.clone(), ids[2].0.clone()]
    );
    assert!(page.windows(2).all(|w| w[0].seq > w[1].seq));
    let newest = &page[0];
    assert_eq!(newest.vault_id.as_ref(), Some(&v.id));
    assert_eq!(newest.at, at(4));
    let Actor::ApiKey(k) = &ids[4].1 else {
        unreachable!()
    };
    assert_eq!(newest.key_id.as_deref(), Some(k.as_str()));
    assert_eq!(newest.account_id, None);
    assert_eq!(newest.action, "connection.read");
    assert_eq!(newest.target.as_deref(), Some("conn-4"));
    assert_eq!(newest.outcome, "denied");
    assert_eq!(newest.ip.as_deref(), Some("192.0.2.7"));

    let next = store.list_audit(&v.id, 3, Some(&ids[2].0)).await.unwrap();
    let next_ids: Vec<_> = next.iter().map(|r| r.id.clone()).collect();
    // ids[0] and ids[1], then the vault's creation record.
    assert_eq!(next_ids.len(), 3);
    assert_eq!(next_ids[..2], [ids[1].0.clone(), ids[0].0.clone()]);
    assert_eq!(next[2].action, "vault.create");

    let unknown = AuditId::generate(&mut rng());
    assert!(
        store
            .list_audit(&v.id, 10, Some(&unknown))
            .await
            .unwrap()
            .is_empty()
    );
    // Another vault's record is no cursor here.
    let foreign = store.list_audit(&other.id, 1, None).await.unwrap();
    assert!(
        store
            .list_audit(&v.id, 10, Some(&foreign[0].id))
            .await
            .unwrap()
            .is_empty()
    );

    let server = store.audit_chain(SERVER_CHAIN, 0, 10).await.unwrap();
    assert_eq!(server.len(), 1);
    assert_eq!(server[0].record.id, by_account.id);
    assert_eq!(server[0].record.vault_id, None);
    let Actor::Account(acc) = &by_account.actor else {
        unreachable!()
    };
    assert_eq!(server[0].record.account_id.as_deref(), Some(acc.as_str()));
    assert_eq!(server[0].record.key_id, None);
    assert_eq!(server[0].record.target, None);
    assert_eq!(server[0].record.ip, None);
}

async fn verify(store: &Arc<dyn Store>, head: &AuditHead, page: u32) -> i64 {
    let mut v = ChainVerifier::new(&head.chain);
    loop {
        let records = store
            .audit_chain(&head.chain, v.last_seq(), page)
            .await
            .unwrap();
        if records.is_empty() {
            break;
        }
        for r in &records {
            v.check(r).unwrap();
        }
    }
    v.finish(Some(head)).unwrap()
}

pub async fn audit_chains_verify_after_concurrent_appends(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let (_, w) = seeded_vault(&store).await;

    race(30, |i| {
        let store = store.clone();
        let vault = match i % 3 {
            0 => Some(v.id.clone()),
            1 => Some(w.id.clone()),
            _ => None,
        };
        async move {
            for _ in 0..5 {
                let mut a = audit(vault.as_ref(), "connection.read");
                a.target = Some(format!("task-{i}"));
                store.append_audit(a).await.unwrap();
            }
        }
    })
    .await;

    let heads = store.audit_heads().await.unwrap();
    let chains: Vec<&str> = heads.iter().map(|h| h.chain.as_str()).collect();
    let mut expected = vec![SERVER_CHAIN, v.id.as_str(), w.id.as_str()];
    expected.sort();
    assert_eq!(chains, expected, "heads come ordered by chain");
    for head in &heads {
        // Paged in small steps, so the cursor is exercised too.
        let checked = verify(&store, head, 7).await;
        let expected = if head.chain == SERVER_CHAIN { 50 } else { 51 };
        assert_eq!(checked, expected, "chain {:?}", head.chain);
        assert_eq!(head.length, expected);
        let last = store.audit_chain(&head.chain, 0, 1000).await.unwrap();
        assert_eq!(head.last_seq, last.last().unwrap().record.seq);
    }
}

pub async fn audit_batches_keep_each_chains_order_beside_single_appends(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let (_, w) = seeded_vault(&store).await;
    let before_v = chain_len(&store, v.id.as_str()).await;
    let before_w = chain_len(&store, w.id.as_str()).await;

    // Batches that interleave three chains, racing one another and single appends.
    race(12, |i| {
        let store = store.clone();
        let (v, w) = (v.id.clone(), w.id.clone());
        async move {
            if i % 4 == 3 {
                for n in 0..6 {
                    let mut a = audit(Some(&v), "connection.token_read");
                    a.target = Some(format!("single-{i}-{n}"));
                    store.append_audit(a).await.unwrap();
                }
                return;
            }
            for b in 0..3 {
                let batch: Vec<NewAuditRecord> = (0..6)
                    .map(|n| {
                        let vault = match n % 3 {
                            0 => Some(&v),
                            1 => Some(&w),
                            _ => None,
                        };
                        let mut a = audit(vault, "connection.token_read");
                        a.target = Some(format!("batch-{i}-{b}-{n}"));
                        a
                    })
                    .collect();
                store.append_audits(batch).await.unwrap();
            }
        }
    })
    .await;
    store.append_audits(Vec::new()).await.unwrap();

    let heads = store.audit_heads().await.unwrap();
    for head in &heads {
        verify(&store, head, 5).await;
    }
    // 9 batching tasks x 3 batches x 2 records per chain; 3 single tasks x 6 on `v`.
    assert_eq!(chain_len(&store, v.id.as_str()).await, before_v + 54 + 18);
    assert_eq!(chain_len(&store, w.id.as_str()).await, before_w + 54);
    assert_eq!(chain_len(&store, SERVER_CHAIN).await, 54);
    // Within a chain, a batch's records follow one another in the order given.
    for chain in [v.id.as_str(), w.id.as_str(), SERVER_CHAIN] {
        let targets: Vec<String> = store
            .audit_chain(chain, 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|r| r.record.target)
            .filter(|t| t.starts_with("batch-"))
            .collect();
        for pair in targets.chunks(2) {
            let (first, second) = (&pair[0], &pair[1]);
            assert_eq!(
                first.rsplit_once('-').unwrap().0,
                second.rsplit_once('-').unwrap().0,
                "a batch's two records of chain {chain:?} are adjacent: {targets:?}"
            );
            assert!(first < second, "in the order given: {first} {second}");
        }
    }
}

pub async fn a_failed_audit_batch_writes_none_of_its_records(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let before = chain_len(&store, v.id.as_str()).await;
    let heads_before = store.audit_heads().await.unwrap();
    let first = audit(Some(&v.id), "connection.token_read");
    let mut duplicate = audit(None, "connection.token_read");
    duplicate.id = first.id.clone();

    let err = store
        .append_audits(vec![
            audit(Some(&v.id), "connection.token_read"),
            first.clone(),
            duplicate,
        ])
        .await;

    assert!(err.is_err(), "a duplicate record id fails the batch");
    assert_eq!(chain_len(&store, v.id.as_str()).await, before);
    assert_eq!(chain_len(&store, SERVER_CHAIN).await, 0);
    let heads_after = store.audit_heads().await.unwrap();
    assert_eq!(
        heads_after
            .iter()
            .map(|h| (h.chain.clone(), h.length, h.hash.clone()))
            .collect::<Vec<_>>(),
        heads_before
            .iter()
            .map(|h| (h.chain.clone(), h.length, h.hash.clone()))
            .collect::<Vec<_>>(),
        "no head moved"
    );
    // The same records append fine once the duplicate is gone.
    store
        .append_audits(vec![first, audit(None, "login.failure")])
        .await
        .unwrap();
    assert_eq!(chain_len(&store, v.id.as_str()).await, before + 1);
    for head in store.audit_heads().await.unwrap() {
        verify(&store, &head, 50).await;
    }
}

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
    assert_eq!(got.client_secret, blob(9));
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
    assert_eq!(updated.client_secret, blob(9));
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
                client_secret: Some(blob(20)),
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
    assert_eq!(updated.client_secret, blob(20));
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
                audit(Some(&v.id), "connection.delete")
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

pub async fn connect_sessions_round_trip_with_and_without_link(store: Arc<dyn Store>) {
    let (_, v) = seeded_vault(&store).await;
    let a = seeded_app(&store, &v.id, "github").await;
    let mut plain = session(&v.id, &a.id, None);
    plain.return_to = Some("https://app.example.com/done".into());
    let linked = session(&v.id, &a.id, Some(link(300_000)));
    store
        .create_connect_session(plain.clone(), audit(Some(&v.id), "connect.start"))
        .await
        .unwrap();
    store
        .create_connect_session(linked.clone(), audit(Some(&v.id), "connect.start"))
        .await
        .unwrap();

    let got = store
        .connect_session(&v.id, &plain.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.id, plain.id);
    assert_eq!(got.vault_id, v.id);
    assert_eq!(got.app_id, a.id);
    assert_eq!(got.connection_id, plain.connection_id);
    assert_eq!(got.state_hash, plain.state_hash);
    assert_eq!(got.secrets, blob(11));
    assert_eq!(got.scopes, plain.scopes);
    assert_eq!(
        got.return_to.as_deref(),
        Some("https://app.example.com/done")
    );
    assert_eq!(got.status, ConnectStatus::Pending);
    assert_eq!(got.error, None);
    assert_eq!(got.created_by, "key_creator");
    assert_eq!(got.created_at, t0());
    assert_eq!(got.expires_at, at(600_000));
    assert_eq!(got.finished_at, None);
    assert!(got.link.is_none());

    let got = store
        .connect_session(&v.id, &linked.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.return_to, None);
    let l = got.link.unwrap();
    let want = linked.link.clone().unwrap();
    assert_eq!(l.hash, want.hash);
    assert_eq!(l.sealed_url, blob(12));
    assert_eq!(l.expires_at, at(300_000));
    assert_eq!(l.spent_at, None);
    assert_eq!(l.binding_hash, None);

    let (_, other) = seeded_vault(&store).await;
    assert!(
        store
            .connect_session(&other.id, &plain.id)
            .await
            .unwrap()
            .is_none()
    );

    let pending = store
        .pending_connect(&plain.state_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.session.id, plain.id);
    assert_eq!(pending.app.id, a.id);
    assert_eq!(pending.app.client_secret, blob(9));
    assert!(store.pending_connect(&blob(99)).await.unwrap().is_none());

    let view = store.connect_link(&want.hash).await.unwrap().unwrap();
    assert_eq!(view.session.id, linked.id);
    assert_eq!(view.app.key, a.key);
    assert_eq!(view.vault_name, "team vault");
    assert!(store.connect_link(&blob(98)).await.unwrap().is_none());

    // The state hash is unique.
    let mut dup = session(&v.id, &a.id, None);
    dup.state_hash = plain.state_hash.clone();
    let before = chain_len(&store, v.id.as_str()).await;
    let err = store
        .create_connect_session(dup, audit(Some(&v.id), "connect.start"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(chain_len(&store, v.id.as_str()).await, before);
}

async fn linked_session(
    store: &Arc<dyn Store>,
    link_expires_ms: i64,
) -> (VaultId, ConnectSessionRecord) {
    let (_, v) = seeded_vault(store).await;
    let a = seeded_app(store, &v.id, "github").await;
    let s = session(&v.id, &a.id, Some(link(link_expires_ms)));
    store
        .create_connect_session(s.clone(), audit(Some(&v.id), "connect.start"))
        .await
        .unwrap();
    (v.id, s)
}

pub async fn connect_link_is_spent_by_exactly_one_caller(store: Arc<dyn Store>) {
    let (v, s) = linked_session(&store, 300_000).await;
    let before = chain_len(&store, v.as_str()).await;

    let results = race(20, |i| {
        let (store, id, v) = (store.clone(), s.id.clone(), v.clone());
        async move {
            store
                .spend_connect_link(
                    &id,
                    &[i as u8; 32],
                    at(10),
                    at(400_000),
                    audit(Some(&v), "connect.link"),
                )
                .await
                .unwrap()
        }
    })
    .await;

    assert_eq!(winners(&results), 1);
    let winner = results.iter().position(|w| *w).unwrap();
    let got = store.connect_session(&v, &s.id).await.unwrap().unwrap();
    let l = got.link.unwrap();
    assert_eq!(l.spent_at, Some(at(10)));
    assert_eq!(l.binding_hash, Some(vec![winner as u8; 32]));
    assert_eq!(got.expires_at, at(400_000), "the state's expiry moved");
    assert_eq!(chain_len(&store, v.as_str()).await, before + 1);
}

pub async fn connect_link_spending_respects_expiry_and_status(store: Arc<dyn Store>) {
    let (v, s) = linked_session(&store, 300_000).await;
    let spend = |now: i64| {
        let (store, id, v) = (store.clone(), s.id.clone(), v.clone());
        async move {
            store
                .spend_connect_link(
                    &id,
                    &blob(1),
                    at(now),
                    at(now + 600_000),
                    audit(Some(&v), "connect.link"),
                )
                .await
                .unwrap()
        }
    };
    assert!(!spend(300_000).await, "expired at its expiry");
    // A session with no link has nothing to spend.
    let (_, v2) = seeded_vault(&store).await;
    let a2 = seeded_app(&store, &v2.id, "github").await;
    let plain = session(&v2.id, &a2.id, None);
    store
        .create_connect_session(plain.clone(), audit(Some(&v2.id), "connect.start"))
        .await
        .unwrap();
    assert!(
        !store
            .spend_connect_link(
                &plain.id,
                &blob(1),
                at(1),
                at(2),
                audit(Some(&v2.id), "connect.link")
            )
            .await
            .unwrap()
    );
    // Once the state is being exchanged the link is dead.
    assert!(store.begin_exchange(&s.id, at(1)).await.unwrap());
    assert!(!spend(2).await);
    let before = chain_len(&store, v.as_str()).await;
    assert_eq!(before, 3, "vault, app, session: no link record");
}

pub async fn begin_exchange_has_exactly_one_winner(store: Arc<dyn Store>) {
    let (v, s) = linked_session(&store, 300_000).await;

    let results = race(20, |_| {
        let (store, id) = (store.clone(), s.id.clone());
        async move { store.begin_exchange(&id, at(1)).await.unwrap() }
    })
    .await;

    assert_eq!(winners(&results), 1);
    let got = store.connect_session(&v, &s.id).await.unwrap().unwrap();
    assert_eq!(got.status, ConnectStatus::Exchanging);
    // An expired session cannot start.
    let (_, s2) = linked_session(&store, 300_000).await;
    assert!(!store.begin_exchange(&s2.id, at(600_000)).await.unwrap());
    assert!(store.begin_exchange(&s2.id, at(599_999)).await.unwrap());
    assert!(
        !store
            .begin_exchange(&ConnectSessionId::generate(&mut rng()), at(1))
            .await
            .unwrap()
    );
}

pub async fn finish_connect_replaces_tokens_in_place_and_refuses_another_app(
    store: Arc<dyn Store>,
) {
    let (v, a, conn) = seeded_connection(&store).await;
    let s = session(&v.id, &a.id, None);
    store
        .create_connect_session(s.clone(), audit(Some(&v.id), "connect.start"))
        .await
        .unwrap();
    assert!(store.begin_exchange(&s.id, at(1)).await.unwrap());
    let mut t = tokens(30, 100);
    t.token_format = TokenFormat::Sealed;
    t.expires_at = None;
    t.has_refresh = false;
    let before = chain_len(&store, v.id.as_str()).await;

    store
        .finish_connect(
            &s.id,
            upsert(&v.id, conn.as_str(), &a.id, t),
            audit(Some(&v.id), "connect.finish"),
        )
        .await
        .unwrap();

    let c = store.connection(&v.id, &conn).await.unwrap().unwrap();
    assert_eq!(c.version, 2, "replaced in place bumps the version");
    assert_eq!(c.token_set, blob(30));
    assert_eq!(c.token_format, TokenFormat::Sealed);
    assert_eq!(c.expires_at, None);
    assert!(!c.has_refresh);
    assert_eq!(c.created_at, t0(), "creation time kept");
    assert_eq!(c.status, ConnectionStatus::Active);
    let got = store.connect_session(&v.id, &s.id).await.unwrap().unwrap();
    assert_eq!(got.status, ConnectStatus::Completed);
    assert_eq!(got.finished_at, Some(at(100)));
    assert_eq!(got.connection_id, conn);
    assert_eq!(chain_len(&store, v.id.as_str()).await, before + 1);

    // Another app's session may not take the connection over: nothing changes.
    let other = seeded_app(&store, &v.id, "other").await;
    let s2 = session(&v.id, &other.id, None);
    store
        .create_connect_session(s2.clone(), audit(Some(&v.id), "connect.start"))
        .await
        .unwrap();
    let before = chain_len(&store, v.id.as_str()).await;
    let err = store
        .finish_connect(
            &s2.id,
            upsert(&v.id, conn.as_str(), &other.id, tokens(31, 200)),
            audit(Some(&v.id), "connect.finish"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let c = store.connection(&v.id, &conn).await.unwrap().unwrap();
    assert_eq!(
        (c.version, c.token_set, c.app_id),
        (2, blob(30), a.id.clone())
    );
    let got = store.connect_session(&v.id, &s2.id).await.unwrap().unwrap();
    assert_eq!(got.status, ConnectStatus::Pending);
    assert_eq!(chain_len(&store, v.id.as_str()).await, before);

    // A new id is inserted fresh.
    let s3 = session(&v.id, &other.id, None);
    store
        .create_connect_session(s3.clone(), audit(Some(&v.id), "connect.start"))
        .await
        .unwrap();
    store
        .finish_connect(
            &s3.id,
            upsert(&v.id, "conn-2", &other.id, tokens(32, 300)),
            audit(Some(&v.id), "connect.finish"),
        )
        .await
        .unwrap();
    let c = store
        .connection(&v.id, &ConnectionId::parse("conn-2").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.version, 1);
    assert_eq!(c.app_key.as_str(), "other");
    assert_eq!(c.created_at, at(300));
}

pub async fn fail_connect_records_the_error(store: Arc<dyn Store>) {
    let (v, s) = linked_session(&store, 300_000).await;
    let before = chain_len(&store, v.as_str()).await;

    store
        .fail_connect(
            &s.id,
            "access_denied",
            at(5),
            audit(Some(&v), "connect.fail"),
        )
        .await
        .unwrap();
    // A finished session keeps its first outcome (the audit record is still written).
    store
        .fail_connect(&s.id, "later", at(6), audit(Some(&v), "connect.fail"))
        .await
        .unwrap();

    let got = store.connect_session(&v, &s.id).await.unwrap().unwrap();
    assert_eq!(got.status, ConnectStatus::Failed);
    assert_eq!(got.error.as_deref(), Some("access_denied"));
    assert_eq!(got.finished_at, Some(at(5)));
    assert_eq!(chain_len(&store, v.as_str()).await, before + 2);
    assert!(!store.begin_exchange(&s.id, at(7)).await.unwrap());
}

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
    assert_eq!(c.token_set, blob(10));

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
        .list_connections(&v.id)
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
    assert_eq!(c.token_set, blob(10));
    assert_eq!(c.token_format, TokenFormat::DataKey);
    assert_eq!(c.expires_at, Some(at(3_600_000)));
    assert!(c.has_refresh);
    assert_eq!(c.version, 1);
    assert_eq!(c.lease_owner, None);
    assert_eq!(c.lease_until, None);
    assert_eq!(c.created_at, t0());
    assert_eq!(c.refreshed_at, None);
    assert_eq!(got.app.id, a.id);
    assert_eq!(got.app.client_secret, blob(9));
    assert_eq!(got.sealing_private_key, blob(6));
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
    assert_eq!(key_row.lookup_hash, Some(blob(3)));
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

pub async fn rewrap_applies_only_to_sealed_tokens_at_the_version(store: Arc<dyn Store>) {
    let (v, a, _) = seeded_connection(&store).await;
    let mut t = tokens(50, 0);
    t.token_format = TokenFormat::Sealed;
    store
        .insert_connection(
            upsert(&v.id, "sealed", &a.id, t),
            audit(Some(&v.id), "connection.import"),
        )
        .await
        .unwrap();
    let id = ConnectionId::parse("sealed").unwrap();

    assert!(
        !store.rewrap_tokens(&v.id, &id, 2, blob(51)).await.unwrap(),
        "wrong version"
    );
    assert!(store.rewrap_tokens(&v.id, &id, 1, blob(52)).await.unwrap());
    assert!(
        !store.rewrap_tokens(&v.id, &id, 1, blob(53)).await.unwrap(),
        "no longer sealed"
    );

    let c = store.connection(&v.id, &id).await.unwrap().unwrap();
    assert_eq!(c.token_set, blob(52));
    assert_eq!(c.token_format, TokenFormat::DataKey);
    assert_eq!(c.version, 1, "a rewrap keeps the version");
}

pub async fn refresh_lease_has_one_owner_until_it_expires(store: Arc<dyn Store>) {
    let (v, _, id) = seeded_connection(&store).await;
    let lease = |owner: &'static str, version: i64, until: i64, now: i64| {
        let (store, v, id) = (store.clone(), v.id.clone(), id.clone());
        async move {
            store
                .acquire_refresh_lease(&v, &id, version, owner, at(until), at(now))
                .await
                .unwrap()
        }
    };

    assert!(
        !lease("a", 2, 1_000, 0).await,
        "a stale version takes no lease"
    );
    assert!(lease("a", 1, 1_000, 0).await);
    assert!(!lease("b", 1, 2_000, 999).await, "held by a until 1000");
    assert!(lease("a", 1, 1_500, 999).await, "the owner may extend it");
    let c = store.connection(&v.id, &id).await.unwrap().unwrap();
    assert_eq!(c.lease_owner.as_deref(), Some("a"));
    assert_eq!(c.lease_until, Some(at(1_500)));
    assert!(
        lease("b", 1, 3_000, 1_500).await,
        "expired at its end: taken over"
    );
    let c = store.connection(&v.id, &id).await.unwrap().unwrap();
    assert_eq!(c.lease_owner.as_deref(), Some("b"));
    assert_eq!(c.version, 1, "a lease is no token write");

    // Releasing needs the owner.
    store.release_refresh_lease(&v.id, &id, "a").await.unwrap();
    let c = store.connection(&v.id, &id).await.unwrap().unwrap();
    assert_eq!(c.lease_owner.as_deref(), Some("b"));
    store.release_refresh_lease(&v.id, &id, "b").await.unwrap();
    let c = store.connection(&v.id, &id).await.unwrap().unwrap();
    assert_eq!((c.lease_owner, c.lease_until), (None, None));
    assert!(lease("a", 1, 4_000, 1_600).await);
}

pub async fn refresh_lease_is_taken_by_exactly_one_racer(store: Arc<dyn Store>) {
    let (v, _, id) = seeded_connection(&store).await;

    let results = race(20, |i| {
        let (store, v, id) = (store.clone(), v.id.clone(), id.clone());
        async move {
            store
                .acquire_refresh_lease(&v, &id, 1, &format!("owner-{i}"), at(45_000), at(0))
                .await
                .unwrap()
        }
    })
    .await;

    assert_eq!(winners(&results), 1);
    let winner = results.iter().position(|w| *w).unwrap();
    let c = store.connection(&v.id, &id).await.unwrap().unwrap();
    assert_eq!(c.lease_owner, Some(format!("owner-{winner}")));
}

pub async fn commit_refresh_is_fenced_by_version(store: Arc<dyn Store>) {
    let (v, _, id) = seeded_connection(&store).await;
    assert!(
        store
            .acquire_refresh_lease(&v.id, &id, 1, "a", at(45_000), at(0))
            .await
            .unwrap()
    );
    let before = chain_len(&store, v.id.as_str()).await;

    let results = race(20, |i| {
        let (store, v, id) = (store.clone(), v.id.clone(), id.clone());
        async move {
            let mut t = tokens(60 + i as u8, 1_000);
            t.scopes = Scopes::parse(&["repo", "gist"]).unwrap();
            store
                .commit_refresh(&v, &id, 1, t, audit(Some(&v), "connection.refresh"))
                .await
                .unwrap()
        }
    })
    .await;

    assert_eq!(winners(&results), 1);
    let winner = results.iter().position(|w| *w).unwrap();
    let c = store.connection(&v.id, &id).await.unwrap().unwrap();
    assert_eq!(c.version, 2);
    assert_eq!(c.token_set, blob(60 + winner as u8));
    assert_eq!(c.scopes, Scopes::parse(&["repo", "gist"]).unwrap());
    assert_eq!(c.refreshed_at, Some(at(1_000)));
    assert_eq!(c.expires_at, Some(at(3_601_000)));
    assert_eq!(
        (c.lease_owner, c.lease_until),
        (None, None),
        "the lease is freed"
    );
    assert_eq!(chain_len(&store, v.id.as_str()).await, before + 1);
    // A stale writer changes nothing.
    assert!(
        !store
            .commit_refresh(
                &v.id,
                &id,
                1,
                tokens(99, 2_000),
                audit(Some(&v.id), "connection.refresh")
            )
            .await
            .unwrap()
    );
    // A commit also revives a connection marked needs_reauth (a re-connect happened).
    assert!(
        store
            .acquire_refresh_lease(&v.id, &id, 2, "b", at(50_000), at(3_000))
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_needs_reauth(
                &v.id,
                &id,
                2,
                "b",
                audit(Some(&v.id), "connection.needs_reauth")
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .commit_refresh(
                &v.id,
                &id,
                2,
                tokens(70, 4_000),
                audit(Some(&v.id), "connection.refresh")
            )
            .await
            .unwrap()
    );
    let c = store.connection(&v.id, &id).await.unwrap().unwrap();
    assert_eq!(c.status, ConnectionStatus::Active);
    assert_eq!(c.version, 3);
}

pub async fn mark_needs_reauth_and_release_require_the_owner(store: Arc<dyn Store>) {
    let (v, _, id) = seeded_connection(&store).await;
    assert!(
        store
            .acquire_refresh_lease(&v.id, &id, 1, "a", at(45_000), at(0))
            .await
            .unwrap()
    );
    let before = chain_len(&store, v.id.as_str()).await;

    let not_owner = store
        .mark_needs_reauth(
            &v.id,
            &id,
            1,
            "b",
            audit(Some(&v.id), "connection.needs_reauth"),
        )
        .await
        .unwrap();
    let stale = store
        .mark_needs_reauth(
            &v.id,
            &id,
            2,
            "a",
            audit(Some(&v.id), "connection.needs_reauth"),
        )
        .await
        .unwrap();
    let owner = store
        .mark_needs_reauth(
            &v.id,
            &id,
            1,
            "a",
            audit(Some(&v.id), "connection.needs_reauth"),
        )
        .await
        .unwrap();

    assert!(!not_owner);
    assert!(!stale);
    assert!(owner);
    let c = store.connection(&v.id, &id).await.unwrap().unwrap();
    assert_eq!(c.status, ConnectionStatus::NeedsReauth);
    assert_eq!((c.lease_owner, c.lease_until), (None, None));
    assert_eq!(c.version, 1, "no token was written");
    assert_eq!(chain_len(&store, v.id.as_str()).await, before + 1);
    // Without a lease, nobody can mark it.
    assert!(
        !store
            .mark_needs_reauth(
                &v.id,
                &id,
                1,
                "a",
                audit(Some(&v.id), "connection.needs_reauth")
            )
            .await
            .unwrap()
    );
}

pub async fn delete_connection_writes_audit_only_when_it_deleted(store: Arc<dyn Store>) {
    let (v, _, id) = seeded_connection(&store).await;
    let (_, other) = seeded_vault(&store).await;
    let before = chain_len(&store, v.id.as_str()).await;

    let elsewhere = store
        .delete_connection(&other.id, &id, audit(Some(&other.id), "connection.delete"))
        .await
        .unwrap();
    let first = store
        .delete_connection(&v.id, &id, audit(Some(&v.id), "connection.delete"))
        .await
        .unwrap();
    let again = store
        .delete_connection(&v.id, &id, audit(Some(&v.id), "connection.delete"))
        .await
        .unwrap();

    assert!(!elsewhere);
    assert!(first);
    assert!(!again);
    assert!(store.connection(&v.id, &id).await.unwrap().is_none());
    assert!(store.list_connections(&v.id).await.unwrap().is_empty());
    assert_eq!(chain_len(&store, v.id.as_str()).await, before + 1);
    assert_eq!(chain_len(&store, other.id.as_str()).await, 1);
}

pub async fn audit_chains_and_emptiness_are_reported(store: Arc<dyn Store>) {
    assert!(store.is_empty().await.unwrap());
    assert!(store.audit_chains().await.unwrap().is_empty());

    let (_, v) = seeded_vault(&store).await;
    store
        .append_audit(audit(None, "login.failure"))
        .await
        .unwrap();

    assert!(!store.is_empty().await.unwrap());
    assert_eq!(
        store.audit_chains().await.unwrap(),
        vec![SERVER_CHAIN.to_owned(), v.id.as_str().to_owned()]
    );
}

fn column(table: &copy::CopyTable, name: &str) -> usize {
    table.columns.iter().position(|c| *c == name).unwrap()
}

fn table(name: &str) -> &'static copy::CopyTable {
    copy::COPY_TABLES.iter().find(|t| t.name == name).unwrap()
}

pub async fn copy_pages_in_key_order_and_inserts_rows_as_read(store: Arc<dyn Store>) {
    let owner = account("owner@example.com");
    store.create_account(owner.clone()).await.unwrap();
    let mut ids = Vec::new();
    for managed in [true, false, true] {
        let v = vault(&owner.id, managed);
        ids.push(v.vault.id.as_str().to_owned());
        store.create_vault(v).await.unwrap();
    }
    ids.sort();
    let vaults = table("vaults");

    // Paged two at a time, after the last key of the previous page.
    let first = store.copy_page(vaults, None, 2).await.unwrap();
    let rest = store
        .copy_page(vaults, first.last().cloned(), 2)
        .await
        .unwrap();
    let paged: Vec<_> = first.iter().chain(&rest).map(|r| r[0].clone()).collect();
    let expected: Vec<_> = ids
        .iter()
        .map(|i| copy::RawValue::Text(i.clone()))
        .collect();
    assert_eq!(paged, expected);
    let row = &first[0];
    assert_eq!(row.len(), vaults.columns.len());
    assert!(matches!(
        row[column(vaults, "managed")],
        copy::RawValue::Int(0 | 1)
    ));
    assert_eq!(
        row[column(vaults, "created_at")],
        copy::RawValue::Int(t0().timestamp_millis())
    );
    assert_eq!(
        row[column(vaults, "sealing_private_key")],
        copy::RawValue::Bytes(blob(6))
    );

    // A row written back under another id reads back the same.
    let managed_row = first
        .iter()
        .chain(&rest)
        .find(|r| r[column(vaults, "managed")] == copy::RawValue::Int(1))
        .unwrap();
    let copy_id = VaultId::generate(&mut rng());
    let mut copied = managed_row.clone();
    copied[0] = copy::RawValue::Text(copy_id.as_str().to_owned());
    store.copy_insert(vaults, vec![copied]).await.unwrap();
    let got = store.vault(&copy_id).await.unwrap().unwrap();
    assert!(got.managed);
    assert_eq!(got.master_slot, Some(blob(7)));
    assert_eq!(got.dek_key_id, u32::MAX);
    assert_eq!(got.created_at, t0());

    // Audit records copied with their seq: after copy_finish, new appends follow them.
    let log = table("audit_log");
    let records = store.copy_page(log, None, 100).await.unwrap();
    let seq = column(log, "seq");
    let top = records
        .iter()
        .map(|r| match r[seq] {
            copy::RawValue::Int(n) => n,
            _ => panic!("seq is an integer"),
        })
        .max()
        .unwrap();
    let mut moved = records[0].clone();
    moved[seq] = copy::RawValue::Int(top + 1000);
    moved[column(log, "id")] =
        copy::RawValue::Text(AuditId::generate(&mut rng()).as_str().to_owned());
    store.copy_insert(log, vec![moved]).await.unwrap();
    store.copy_finish().await.unwrap();
    let next = audit(None, "after.copy");
    store.append_audit(next.clone()).await.unwrap();
    let server = store.audit_chain(SERVER_CHAIN, 0, 10).await.unwrap();
    let appended = server.iter().find(|r| r.record.id == next.id).unwrap();
    assert!(appended.record.seq > top + 1000);
}
