use tokenwarden_store::SettingsStore;
use tokenwarden_store_mysql::{MysqlStore, MysqlUrl};

use crate::fixtures::{FreshDb, server_url};

#[tokio::test]
async fn replicas_migrating_at_once_apply_the_schema_exactly_once() {
    let Some(server) = server_url() else { return };
    let db = FreshDb::create(&server).await;
    let url = MysqlUrl::parse(&db.url).unwrap();

    let runs = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { MysqlStore::migrate(&url).await })
    });
    let mut applied = Vec::new();
    for run in runs {
        applied.push(run.await.unwrap().unwrap());
    }
    let again = MysqlStore::migrate(&url).await.unwrap();
    let store = MysqlStore::open(&url).await.unwrap();
    let ping = store.ping().await;
    store.close().await.unwrap();
    db.drop_database().await;

    applied.sort();
    assert_eq!(
        applied,
        vec![
            vec![],
            vec![],
            vec![],
            vec![
                "V1__initial".to_owned(),
                "V2__connection_lifecycle".to_owned(),
                "V3__webhooks".to_owned()
            ]
        ]
    );
    assert!(again.is_empty());
    assert!(ping.is_ok());
}

#[tokio::test]
async fn a_failed_connection_names_the_url_without_its_password() {
    let Some(server) = server_url() else { return };
    let mut url = url::Url::parse(&server).unwrap();
    url.set_password(Some("not-the-password-x9")).unwrap();
    url.set_path("/tw_no_such_database");
    let parsed = MysqlUrl::parse(url.as_str()).unwrap();
    assert!(!format!("{parsed:?}").contains("not-the-password-x9"));

    let err = MysqlStore::open(&parsed).await.unwrap_err();

    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("not-the-password-x9"), "{shown}");
}
