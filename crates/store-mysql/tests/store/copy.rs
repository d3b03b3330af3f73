use std::sync::Arc;

use tokenwarden_store::copy::{COPY_TABLES, RawRow, RawValue};
use tokenwarden_store::*;
use tokenwarden_store_mysql::{MysqlStore, MysqlUrl};

use crate::fixtures::*;

async fn all_rows(store: &MysqlStore) -> Vec<(&'static str, Vec<RawRow>)> {
    let mut out = Vec::new();
    for table in COPY_TABLES {
        let mut rows = Vec::new();
        let mut after = None;
        loop {
            // A page of 2 makes every table with more rows than that page by its key.
            let page = store.copy_page(table, after.take(), 2).await.unwrap();
            after = page.last().cloned();
            let done = page.len() < 2;
            rows.extend(page);
            if done {
                break;
            }
        }
        out.push((table.name, rows));
    }
    out
}

#[tokio::test]
async fn a_copy_moves_every_row_as_stored_and_its_audit_chain_still_verifies() {
    with_store(|store| async move {
        let (vault, _, _) = vault(&store).await;
        let app = app(&vault, "github", "github");
        store
            .create_app(app.clone(), audit(Some(&vault), "app.create", 3))
            .await
            .unwrap();
        for (i, id) in ["a", "B", "c"].into_iter().enumerate() {
            store
                .insert_connection(
                    upsert(&vault, id, &app.id, 1_000, i as u8),
                    audit(Some(&vault), "connection.import", 4),
                )
                .await
                .unwrap();
        }
        store
            .append_audit(audit(None, "login.failure", 5))
            .await
            .unwrap();
        store.init_setting("fp", &[0, 1]).await.unwrap();
        let source = all_rows(&store).await;

        let server = server_url().unwrap();
        let target_db = FreshDb::create(&server).await;
        let target = Arc::new(
            MysqlStore::open(&MysqlUrl::parse(&target_db.url).unwrap())
                .await
                .unwrap(),
        );
        let was_empty = target.is_empty().await.unwrap();
        for (table, (_, rows)) in COPY_TABLES.iter().zip(&source) {
            if !rows.is_empty() {
                target.copy_insert(table, rows.clone()).await.unwrap();
            }
        }
        target.copy_finish().await.unwrap();
        let copied = all_rows(&target).await;
        let chains = target.audit_chains().await.unwrap();
        let heads = target.audit_heads().await.unwrap();
        let last_seq = heads.iter().map(|h| h.last_seq).max().unwrap();
        // New records go on after the copied ones.
        target
            .append_audit(audit(Some(&vault), "after.copy", 6))
            .await
            .unwrap();
        let newest = target.list_audit(&vault, 1, None).await.unwrap();
        let now_empty = target.is_empty().await.unwrap();
        Arc::try_unwrap(target).unwrap().close().await.unwrap();
        target_db.drop_database().await;

        assert!(was_empty);
        assert!(!now_empty);
        assert_eq!(copied, source);
        let count = |name: &str| source.iter().find(|(t, _)| *t == name).unwrap().1.len();
        assert_eq!(count("connections"), 3);
        assert_eq!(count("audit_log"), 7);
        let accounts = &source.iter().find(|(t, _)| *t == "accounts").unwrap().1;
        assert!(matches!(accounts[0][1], RawValue::Text(_)));
        assert_eq!(accounts[0][3], RawValue::Bytes(vec![1, 2, 3, 0, 255]));
        assert_eq!(accounts[0][5], RawValue::Int(1_700_000_000_123));
        let mut expected_chains = vec![String::new(), vault.as_str().to_owned()];
        expected_chains.sort();
        assert_eq!(chains, expected_chains);
        assert!(newest[0].seq > last_seq);
    })
    .await;
}
