use std::sync::Arc;

use tokenwarden_domain::*;
use tokenwarden_store::audit::{AuditFields, ChainVerifier, GENESIS, SERVER_CHAIN, audit_hash};
use tokenwarden_store::*;

use crate::fixtures::*;

async fn verify_all(store: &dyn Store) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for head in store.audit_heads().await.unwrap() {
        let mut v = ChainVerifier::new(&head.chain);
        let mut after = 0;
        loop {
            let page = store.audit_chain(&head.chain, after, 7).await.unwrap();
            if page.is_empty() {
                break;
            }
            for r in &page {
                v.check(r).unwrap();
            }
            after = v.last_seq();
        }
        out.push((head.chain.clone(), v.finish(Some(&head)).unwrap()));
    }
    out
}

#[tokio::test]
async fn concurrent_appends_to_several_chains_keep_every_chain_valid() {
    with_store(|store| async move {
        let a = VaultId::generate(&mut rng());
        let b = VaultId::generate(&mut rng());
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let store = Arc::clone(&store);
                let vault = match i % 3 {
                    0 => Some(a.clone()),
                    1 => Some(b.clone()),
                    _ => None,
                };
                tokio::spawn(async move {
                    store
                        .append_audit(audit(vault.as_ref(), "test.append", i))
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }

        let mut chains = verify_all(store.as_ref()).await;
        chains.sort();
        let mut expected = vec![
            (SERVER_CHAIN.to_owned(), 20),
            (a.as_str().to_owned(), 20),
            (b.as_str().to_owned(), 20),
        ];
        expected.sort();
        assert_eq!(chains, expected);
    })
    .await;
}

#[tokio::test]
async fn a_record_hashes_exactly_as_the_shared_chain_function_says() {
    with_store(|store| async move {
        let vault = VaultId::generate(&mut rng());
        let record = NewAuditRecord {
            id: AuditId::generate(&mut rng()),
            vault_id: Some(vault.clone()),
            at: at(1_700_000_000_999),
            actor: Actor::ApiKey(ApiKeyId::generate(&mut rng())),
            action: "connection.read",
            target: None,
            outcome: "denied",
            ip: None,
        };
        store.append_audit(record.clone()).await.unwrap();

        let chain = store.audit_chain(vault.as_str(), 0, 10).await.unwrap();
        let heads = store.audit_heads().await.unwrap();

        assert_eq!(chain.len(), 1);
        let got = &chain[0];
        assert_eq!(got.record.id, record.id);
        assert_eq!(got.record.at, record.at);
        assert_eq!(
            got.record.key_id.as_deref(),
            Some(match &record.actor {
                Actor::ApiKey(k) => k.as_str(),
                _ => unreachable!(),
            })
        );
        assert_eq!(got.record.account_id, None);
        assert_eq!(got.record.target, None);
        assert_eq!(got.record.ip, None);
        assert_eq!(got.prev_hash, GENESIS.to_vec());
        let expected = audit_hash(&GENESIS, &AuditFields::of(&got.record));
        assert_eq!(got.hash, expected.to_vec());
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].chain, vault.as_str());
        assert_eq!(heads[0].length, 1);
        assert_eq!(heads[0].last_seq, got.record.seq);
        assert_eq!(heads[0].hash, expected.to_vec());
    })
    .await;
}

#[tokio::test]
async fn the_audit_list_pages_newest_first_and_an_unknown_cursor_yields_nothing() {
    with_store(|store| async move {
        let (vault, _, _) = vault(&store).await;
        for i in 0..5 {
            store
                .append_audit(audit(Some(&vault), "test.page", 10 + i))
                .await
                .unwrap();
        }
        store
            .append_audit(audit(None, "login.failure", 99))
            .await
            .unwrap();

        let first = store.list_audit(&vault, 3, None).await.unwrap();
        let second = store
            .list_audit(&vault, 3, Some(&first[2].id))
            .await
            .unwrap();
        let unknown = store
            .list_audit(&vault, 3, Some(&AuditId::generate(&mut rng())))
            .await
            .unwrap();

        let ats = |rs: &[AuditRecord]| {
            rs.iter()
                .map(|r| r.at.timestamp_millis())
                .collect::<Vec<_>>()
        };
        assert_eq!(ats(&first), [14, 13, 12]);
        assert_eq!(ats(&second), [11, 10, 2]);
        assert!(first[0].seq > first[1].seq);
        assert!(unknown.is_empty());
        assert_eq!(store.list_audit(&vault, 100, None).await.unwrap().len(), 7);
    })
    .await;
}

#[tokio::test]
async fn a_failed_create_writes_no_audit_record() {
    with_store(|store| async move {
        let (vault, _, _) = vault(&store).await;
        let app = app(&vault, "github", "github");
        store
            .create_app(app.clone(), audit(Some(&vault), "app.create", 3))
            .await
            .unwrap();
        let mut twin = app.clone();
        twin.id = AppId::generate(&mut rng());

        let dup = store
            .create_app(twin, audit(Some(&vault), "app.create", 4))
            .await;

        assert!(matches!(dup, Err(StoreError::Conflict("app"))), "{dup:?}");
        let log = store.list_audit(&vault, 100, None).await.unwrap();
        assert_eq!(log.len(), 3);
        let heads = store.audit_heads().await.unwrap();
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].length, 3);
        assert_eq!(verify_all(store.as_ref()).await.len(), 1);
    })
    .await;
}
