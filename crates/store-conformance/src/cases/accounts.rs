//! Cases of accounts and the login attempt limiter.

use std::sync::Arc;

use tokenwarden_domain::Email;
use tokenwarden_store::{LoginAttempt, Store, StoreError};

use super::race::race;
use crate::fixtures::{account, at, blob, t0};

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
