//! Refresh on read: the skew, `min_ttl`, `force_refresh`, refresh token rotation and
//! providers that keep the old refresh token; and fifty callers racing for one refresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokenwarden_fake_provider::Quirks;

use crate::helpers::{Auth, assert_fields};
use crate::oauth_support::{OAuthEnv, TOKEN_FIELDS, oauth_env, report, send};

/// The refresh tokens the fake received, in order.
fn presented_refresh_tokens(env: &OAuthEnv) -> Vec<String> {
    env.provider
        .requests_to("/token")
        .iter()
        .filter(|r| r.form_param("grant_type") == Some("refresh_token"))
        .map(|r| r.form_param("refresh_token").unwrap().to_owned())
        .collect()
}

/// Asserts a token answer's shape and that no refresh token of the grant is in it.
fn assert_token_answer(env: &OAuthEnv, answer: &crate::helpers::Answer) -> Value {
    let token = answer.expect_json(StatusCode::OK);
    assert_fields(&token, &TOKEN_FIELDS);
    for rt in env.grant().refresh_tokens {
        assert!(!answer.text.contains(&rt), "a refresh token leaked");
    }
    token
}

#[tokio::test]
async fn a_token_that_expires_within_the_skew_is_refreshed_on_read() {
    let env = oauth_env().await;
    let grant = env.connect_expiring("c1").await;
    let old = grant.access_token.clone().unwrap();

    let token = assert_token_answer(&env, &env.token("c1", "").await);

    let grant = env.grant();
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_eq!(token["refreshed"], true);
    assert_eq!(token["access_token"], grant.access_token.clone().unwrap());
    assert_ne!(token["access_token"], old);
    assert_eq!(
        presented_refresh_tokens(&env),
        vec![grant.refresh_tokens[0].clone()]
    );
    let connection = env.connection("c1").await.expect_json(StatusCode::OK);
    assert!(connection["refreshed_at"].is_string());
    assert_eq!(connection["expires_at"], token["expires_at"]);
    // Now fresh: the next read does not refresh.
    let again = assert_token_answer(&env, &env.token("c1", "").await);
    assert_eq!(again["refreshed"], false);
    assert_eq!(again["access_token"], token["access_token"]);
    assert_eq!(env.provider.refresh_calls(), 1);
}

#[tokio::test]
async fn min_ttl_and_force_refresh_trigger_a_refresh() {
    let env = oauth_env().await;
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK);

    let fresh = assert_token_answer(&env, &env.token("c1", "?min_ttl=600").await);
    assert_eq!(fresh["refreshed"], false);
    assert_eq!(env.provider.refresh_calls(), 0);

    let longer = assert_token_answer(&env, &env.token("c1", "?min_ttl=3700").await);
    assert_eq!(longer["refreshed"], true);
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_ne!(longer["access_token"], fresh["access_token"]);

    let forced = assert_token_answer(&env, &env.token("c1", "?force_refresh=true").await);
    assert_eq!(forced["refreshed"], true);
    assert_eq!(env.provider.refresh_calls(), 2);
    assert_eq!(forced["access_token"], env.grant().access_token.unwrap());

    // POST /refresh (connect role) always refreshes too, and answers the connection,
    // never the token.
    let answer = send(
        &env.app,
        Method::POST,
        "/v1/connections/c1/refresh",
        Auth::Bearer(&env.connect_key),
        None,
    )
    .await;
    let posted = answer.expect_json(StatusCode::OK);
    assert_eq!(posted["id"], "c1");
    assert!(posted.get("access_token").is_none(), "{posted}");
    assert_eq!(env.provider.refresh_calls(), 3);
    let read = env.token("c1", "").await.expect_json(StatusCode::OK);
    assert_eq!(read["access_token"], env.grant().access_token.unwrap());
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_and_used_by_the_next_refresh() {
    let env = oauth_env().await;
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK);

    for _ in 0..3 {
        let token = assert_token_answer(&env, &env.token("c1", "?force_refresh=true").await);
        assert_eq!(token["access_token"], env.grant().access_token.unwrap());
    }

    let grant = env.grant();
    assert_eq!(
        grant.refresh_tokens.len(),
        4,
        "the fake rotates on every refresh"
    );
    assert_eq!(env.provider.reuse_detections(), 0);
    assert!(!grant.revoked);
    // Each refresh presented the token the previous one issued.
    assert_eq!(
        presented_refresh_tokens(&env),
        grant.refresh_tokens[..3].to_vec()
    );
    assert_eq!(env.provider.successful_refreshes(), 3);
}

#[tokio::test]
async fn a_refresh_without_a_new_refresh_token_keeps_the_old_one() {
    let env = oauth_env().await;
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK);
    env.provider.set_quirks(Quirks {
        no_refresh_token_on_refresh: true,
        ..Quirks::default()
    });
    let original = env.grant().refresh_token.unwrap();

    for _ in 0..2 {
        let token = assert_token_answer(&env, &env.token("c1", "?force_refresh=true").await);
        assert_eq!(token["refreshed"], true);
    }

    let grant = env.grant();
    assert_eq!(grant.refresh_tokens, vec![original.clone()]);
    assert_eq!(
        presented_refresh_tokens(&env),
        vec![original.clone(), original]
    );
    assert_eq!(env.provider.successful_refreshes(), 2);
    // Rotation back on: the kept token still works and the new one is stored.
    env.provider.set_quirks(Quirks::default());
    assert_token_answer(&env, &env.token("c1", "?force_refresh=true").await);
    assert_token_answer(&env, &env.token("c1", "?force_refresh=true").await);
    assert_eq!(env.provider.reuse_detections(), 0);
    assert_eq!(env.provider.successful_refreshes(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_is_refreshed_once_when_fifty_callers_race() {
    let env = Arc::new(oauth_env().await);
    env.connect_expiring("c1").await;
    env.provider.set_token_latency(Duration::from_millis(200));
    let started = Instant::now();

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let env = env.clone();
            tokio::spawn(async move {
                let answer = env.token("c1", "").await;
                (answer.status, answer.json())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }

    let elapsed = started.elapsed();
    let grant = env.grant();
    let newest = grant.access_token.clone().unwrap();
    let refreshed = answers
        .iter()
        .filter(|(_, t)| t["refreshed"] == true)
        .count();
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    report(format_args!(
        "race (one process): 50 concurrent reads -> {ok} x 200, provider refresh calls = {}, \
         {refreshed} answers marked refreshed, all done in {elapsed:?}",
        env.provider.refresh_calls()
    ));
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_eq!(ok, 50);
    for (_, token) in &answers {
        assert_eq!(token["access_token"], newest);
    }
    assert_eq!(grant.access_tokens.len(), 2);
}
