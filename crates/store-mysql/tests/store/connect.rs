use std::sync::Arc;

use tokenwarden_domain::*;
use tokenwarden_store::*;

use crate::fixtures::*;

fn session(vault: &VaultId, app: &AppRecord, link: bool) -> ConnectSessionRecord {
    ConnectSessionRecord {
        id: ConnectSessionId::generate(&mut rng()),
        vault_id: vault.clone(),
        app_id: app.id.clone(),
        connection_id: ConnectionId::parse("Main-Account").unwrap(),
        state_hash: LookupHash::new((0..32).map(|_| rand::random()).collect()),
        secrets: vec![0, 3, 0, 3].into(),
        scopes: scopes(&["repo"]),
        return_to: Some("https://example.com/back".into()),
        status: ConnectStatus::Pending,
        error: None,
        created_by: "abcdefghijklmnop".into(),
        created_at: at(1_000),
        expires_at: at(601_000),
        finished_at: None,
        link: link.then(|| ConnectLinkRecord {
            hash: LookupHash::new((0..32).map(|_| rand::random()).collect()),
            sealed_url: vec![1, 2, 3].into(),
            expires_at: at(86_400_000),
            spent_at: None,
            binding_hash: None,
        }),
    }
}

async fn fixture(store: &Arc<tokenwarden_store_mysql::MysqlStore>) -> (VaultId, AppRecord) {
    let (vault, _, _) = vault(store).await;
    let app = app(&vault, "github", "github");
    store
        .create_app(app.clone(), audit(Some(&vault), "app.create", 3))
        .await
        .unwrap();
    (vault, app)
}

#[tokio::test]
async fn a_connect_session_and_its_link_round_trip() {
    with_store(|store| async move {
        let (vault, app) = fixture(&store).await;
        let s = session(&vault, &app, true);
        store
            .create_connect_session(s.clone(), audit(Some(&vault), "connect.start", 4))
            .await
            .unwrap();
        let plain = session(&vault, &app, false);
        store
            .create_connect_session(plain.clone(), audit(Some(&vault), "connect.start", 5))
            .await
            .unwrap();

        let got = store.connect_session(&vault, &s.id).await.unwrap().unwrap();
        let link = s.link.as_ref().unwrap();
        let view = store.connect_link(&link.hash).await.unwrap().unwrap();
        let pending = store.pending_connect(&s.state_hash).await.unwrap().unwrap();
        let no_link = store
            .connect_session(&vault, &plain.id)
            .await
            .unwrap()
            .unwrap();
        let dup = store
            .create_connect_session(s.clone(), audit(Some(&vault), "connect.start", 6))
            .await;

        assert_eq!(got.connection_id.as_str(), "Main-Account");
        assert_eq!(got.state_hash, s.state_hash);
        assert_eq!(got.secrets, s.secrets);
        assert_eq!(got.return_to, s.return_to);
        assert_eq!(got.status, ConnectStatus::Pending);
        assert_eq!(got.created_by, s.created_by);
        assert_eq!(got.expires_at, at(601_000));
        let got_link = got.link.unwrap();
        assert_eq!(got_link.hash, link.hash);
        assert_eq!(got_link.sealed_url, Ciphertext::new(vec![1, 2, 3]));
        assert_eq!(got_link.expires_at, at(86_400_000));
        assert_eq!(got_link.spent_at, None);
        assert!(no_link.link.is_none());
        assert_eq!(view.session.id, s.id);
        assert_eq!(view.app.id, app.id);
        assert_eq!(view.vault_name, "Team vault");
        assert_eq!(pending.session.id, s.id);
        assert_eq!(pending.app.key, app.key);
        assert!(
            matches!(dup, Err(StoreError::Conflict("connect session"))),
            "{dup:?}"
        );
        assert!(
            store
                .connect_link(&LookupHash::new(vec![0; 32]))
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .pending_connect(&LookupHash::new(vec![0; 32]))
                .await
                .unwrap()
                .is_none()
        );
        let other_vault = VaultId::generate(&mut rng());
        assert!(
            store
                .connect_session(&other_vault, &s.id)
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn of_twenty_racing_spenders_of_a_link_exactly_one_wins() {
    with_store(|store| async move {
        let (vault, app) = fixture(&store).await;
        let s = session(&vault, &app, true);
        store
            .create_connect_session(s.clone(), audit(Some(&vault), "connect.start", 4))
            .await
            .unwrap();

        let tasks: Vec<_> = (0..20u8)
            .map(|i| {
                let store = Arc::clone(&store);
                let (id, vault) = (s.id.clone(), vault.clone());
                tokio::spawn(async move {
                    store
                        .spend_connect_link(
                            &id,
                            &LookupHash::new(vec![i; 32]),
                            at(2_000),
                            at(602_000),
                            audit(Some(&vault), "connect.link", 7),
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }

        assert_eq!(wins, 1);
        let got = store.connect_session(&vault, &s.id).await.unwrap().unwrap();
        let link = got.link.unwrap();
        assert_eq!(link.spent_at, Some(at(2_000)));
        assert!(link.binding_hash.is_some());
        assert_eq!(got.expires_at, at(602_000));
        let spends = store
            .list_audit(&vault, 100, None)
            .await
            .unwrap()
            .iter()
            .filter(|r| r.action == "connect.link")
            .count();
        assert_eq!(spends, 1);
    })
    .await;
}

#[tokio::test]
async fn an_expired_or_linkless_session_cannot_be_spent() {
    with_store(|store| async move {
        let (vault, app) = fixture(&store).await;
        let s = session(&vault, &app, true);
        let plain = session(&vault, &app, false);
        for x in [&s, &plain] {
            store
                .create_connect_session(x.clone(), audit(Some(&vault), "connect.start", 4))
                .await
                .unwrap();
        }

        let late = store
            .spend_connect_link(
                &s.id,
                &LookupHash::new(vec![1; 32]),
                at(86_400_000),
                at(1),
                audit(Some(&vault), "connect.link", 5),
            )
            .await
            .unwrap();
        let linkless = store
            .spend_connect_link(
                &plain.id,
                &LookupHash::new(vec![1; 32]),
                at(2_000),
                at(1),
                audit(Some(&vault), "connect.link", 5),
            )
            .await
            .unwrap();

        assert!(!late);
        assert!(!linkless);
    })
    .await;
}

#[tokio::test]
async fn of_twenty_racing_callbacks_exactly_one_begins_the_exchange() {
    with_store(|store| async move {
        let (vault, app) = fixture(&store).await;
        let s = session(&vault, &app, false);
        store
            .create_connect_session(s.clone(), audit(Some(&vault), "connect.start", 4))
            .await
            .unwrap();
        let expired = session(&vault, &app, false);
        store
            .create_connect_session(expired.clone(), audit(Some(&vault), "connect.start", 4))
            .await
            .unwrap();

        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = Arc::clone(&store);
                let id = s.id.clone();
                tokio::spawn(async move { store.begin_exchange(&id, at(2_000)).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }

        assert_eq!(wins, 1);
        assert!(
            !store
                .begin_exchange(&expired.id, at(601_000))
                .await
                .unwrap()
        );
        let got = store.connect_session(&vault, &s.id).await.unwrap().unwrap();
        assert_eq!(got.status, ConnectStatus::Exchanging);
    })
    .await;
}

#[tokio::test]
async fn finishing_a_connect_stores_the_connection_and_failing_records_why() {
    with_store(|store| async move {
        let (vault, app) = fixture(&store).await;
        let ok = session(&vault, &app, false);
        let bad = session(&vault, &app, false);
        for x in [&ok, &bad] {
            store
                .create_connect_session(x.clone(), audit(Some(&vault), "connect.start", 4))
                .await
                .unwrap();
        }
        assert!(store.begin_exchange(&ok.id, at(2_000)).await.unwrap());

        store
            .finish_connect(
                &ok.id,
                upsert(&vault, "Main-Account", &app.id, 3_000, 1),
                audit(Some(&vault), "connect.complete", 5),
            )
            .await
            .unwrap();
        store
            .fail_connect(
                &bad.id,
                "access_denied",
                at(3_500),
                audit(Some(&vault), "connect.fail", 6),
            )
            .await
            .unwrap();

        let done = store
            .connect_session(&vault, &ok.id)
            .await
            .unwrap()
            .unwrap();
        let failed = store
            .connect_session(&vault, &bad.id)
            .await
            .unwrap()
            .unwrap();
        let conn = store
            .connection(&vault, &ConnectionId::parse("Main-Account").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.status, ConnectStatus::Completed);
        assert_eq!(done.finished_at, Some(at(3_000)));
        assert_eq!(failed.status, ConnectStatus::Failed);
        assert_eq!(failed.error.as_deref(), Some("access_denied"));
        assert_eq!(failed.finished_at, Some(at(3_500)));
        assert_eq!(conn.version, 1);
        assert_eq!(conn.token_set, Ciphertext::new(vec![1, 0, 1]));
        let actions: Vec<String> = store
            .list_audit(&vault, 2, None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert_eq!(actions, ["connect.fail", "connect.complete"]);
    })
    .await;
}
