//! Cases of the refresh coordination on a connection's row: re-wrap, the lease, the
//! version fence, `needs_reauth`.

use std::sync::Arc;

use tokenwarden_domain::{ConnectionId, Scopes};
use tokenwarden_store::{ConnectionStatus, Store, TokenFormat};

use super::race::{race, winners};
use crate::fixtures::{
    at, audit, blob, chain_len, needs_reauth, seeded_connection, tokens, upsert,
};

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
        !store
            .rewrap_tokens(&v.id, &id, 2, blob(51).into())
            .await
            .unwrap(),
        "wrong version"
    );
    assert!(
        store
            .rewrap_tokens(&v.id, &id, 1, blob(52).into())
            .await
            .unwrap()
    );
    assert!(
        !store
            .rewrap_tokens(&v.id, &id, 1, blob(53).into())
            .await
            .unwrap(),
        "no longer sealed"
    );

    let c = store.connection(&v.id, &id).await.unwrap().unwrap();
    assert_eq!(c.token_set.as_bytes(), blob(52));
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
                .commit_refresh(&v, &id, 1, t, audit(Some(&v), "connection.refresh"), vec![])
                .await
                .unwrap()
        }
    })
    .await;

    assert_eq!(winners(&results), 1);
    let winner = results.iter().position(|w| *w).unwrap();
    let c = store.connection(&v.id, &id).await.unwrap().unwrap();
    assert_eq!(c.version, 2);
    assert_eq!(c.token_set.as_bytes(), blob(60 + winner as u8));
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
                audit(Some(&v.id), "connection.refresh"),
                vec![]
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
            .set_health(
                &v.id,
                &id,
                2,
                Some("b"),
                needs_reauth(0),
                Some(audit(Some(&v.id), "connection.needs_reauth")),
                vec![]
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
                audit(Some(&v.id), "connection.refresh"),
                vec![]
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
        .set_health(
            &v.id,
            &id,
            1,
            Some("b"),
            needs_reauth(0),
            Some(audit(Some(&v.id), "connection.needs_reauth")),
            vec![],
        )
        .await
        .unwrap();
    let stale = store
        .set_health(
            &v.id,
            &id,
            2,
            Some("a"),
            needs_reauth(0),
            Some(audit(Some(&v.id), "connection.needs_reauth")),
            vec![],
        )
        .await
        .unwrap();
    let owner = store
        .set_health(
            &v.id,
            &id,
            1,
            Some("a"),
            needs_reauth(0),
            Some(audit(Some(&v.id), "connection.needs_reauth")),
            vec![],
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
            .set_health(
                &v.id,
                &id,
                1,
                Some("a"),
                needs_reauth(0),
                Some(audit(Some(&v.id), "connection.needs_reauth")),
                vec![]
            )
            .await
            .unwrap()
    );
}
