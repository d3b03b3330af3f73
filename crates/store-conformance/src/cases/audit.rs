//! Cases of the audit log: paging, the hash chain under concurrent single and batched
//! appends, all-or-nothing batches, and which chains exist.

use std::sync::Arc;

use tokenwarden_domain::{AccountId, ApiKeyId, AuditId};
use tokenwarden_store::audit::{ChainVerifier, SERVER_CHAIN};
use tokenwarden_store::{Actor, AuditHead, NewAuditRecord, Store};

use super::race::race;
use crate::fixtures::{at, audit, chain_len, rng, seeded_vault};

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
