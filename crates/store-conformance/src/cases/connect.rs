//! Cases of connect sessions and their links: round trips, a link spent once, the state
//! consumed once, finishing and failing a session.

use std::sync::Arc;

use tokenwarden_domain::{ConnectSessionId, ConnectionId, VaultId};
use tokenwarden_store::{
    Ciphertext, ConnectSessionRecord, ConnectStatus, ConnectionStatus, LookupHash, Store,
    StoreError, TokenFormat,
};

use super::race::{race, winners};
use crate::fixtures::{
    at, audit, blob, chain_len, link, rng, seeded_app, seeded_connection, seeded_vault, session,
    t0, tokens, upsert,
};

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
    assert_eq!(got.secrets.as_bytes(), blob(11));
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
    assert_eq!(l.sealed_url.as_bytes(), blob(12));
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
    assert_eq!(pending.app.client_secret.as_bytes(), blob(9));
    assert!(
        store
            .pending_connect(&LookupHash::new(blob(99)))
            .await
            .unwrap()
            .is_none()
    );

    let view = store.connect_link(&want.hash).await.unwrap().unwrap();
    assert_eq!(view.session.id, linked.id);
    assert_eq!(view.app.key, a.key);
    assert_eq!(view.vault_name, "team vault");
    assert!(
        store
            .connect_link(&LookupHash::new(blob(98)))
            .await
            .unwrap()
            .is_none()
    );

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
                    &LookupHash::new(vec![i as u8; 32]),
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
    assert_eq!(
        l.binding_hash,
        Some(LookupHash::new(vec![winner as u8; 32]))
    );
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
                    &LookupHash::new(blob(1)),
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
                &LookupHash::new(blob(1)),
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
    assert_eq!(c.token_set.as_bytes(), blob(30));
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
        (2, Ciphertext::new(blob(30)), a.id.clone())
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
