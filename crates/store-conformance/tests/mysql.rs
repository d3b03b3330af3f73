//! The store conformance suite on MySQL/MariaDB, when `TOKENWARDEN_TEST_MYSQL_URL` names
//! a server (each case gets a database of its own, dropped afterwards).

use std::sync::Arc;

use tokenwarden_store_conformance::{FreshStore, backend_url, store_conformance_tests};
use tokenwarden_store_mysql::{MysqlStore, MysqlUrl};
use tokenwarden_testing::TestDatabase;

// `cfg(test)` lets clippy's allow-*-in-tests cover this helper too.
#[cfg(test)]
async fn fresh() -> Option<FreshStore> {
    let base = backend_url("TOKENWARDEN_TEST_MYSQL_URL", "mysql")?;
    let db = TestDatabase::create(&base).await;
    let store = MysqlStore::open(&MysqlUrl::parse(db.url()).unwrap())
        .await
        .unwrap();
    Some((Arc::new(store), Box::new(db)))
}

store_conformance_tests!(fresh);

/// Replicas starting at once: every one opens, exactly one applies the migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_migrate_once() {
    let Some(base) = backend_url("TOKENWARDEN_TEST_MYSQL_URL", "mysql") else {
        return;
    };
    let db = TestDatabase::create(&base).await;
    let url = MysqlUrl::parse(db.url()).unwrap();

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            MysqlStore::migrate(&url).await.unwrap()
        }));
    }
    let mut applied = Vec::new();
    for t in tasks {
        applied.push(t.await.unwrap().len());
    }

    // One start applies every migration; the others wait for it and find none left.
    applied.sort_unstable();
    assert_eq!(applied, [0, 0, 0, 0, 0, 0, 0, 3]);
    assert!(MysqlStore::migrate(&url).await.unwrap().is_empty());
    drop(MysqlStore::open(&url).await.unwrap());
}
