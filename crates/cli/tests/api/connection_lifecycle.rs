//! Connections from import to deletion: exact answers, listing, revocation at the
//! provider (and what happens when it fails).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::ClientAuthPolicy;
use tokenwarden_server::Clock;

use crate::helpers::{Auth, assert_problem, assert_recent};
use crate::oauth_support::{OAuthEnv, SCOPES, oauth_env, send};

async fn delete(env: &OAuthEnv, path: &str) -> crate::helpers::Answer {
    send(
        &env.app,
        Method::DELETE,
        path,
        Auth::Bearer(&env.connect_key),
        None,
    )
    .await
}

#[tokio::test]
async fn an_imported_connection_is_listed_read_and_refreshed_with_its_refresh_token() {
    let env = oauth_env().await;
    // Tokens the fake really issued (through a flow on another connection id).
    let (_, page) = env.connect("seed").await;
    assert_eq!(page.status, StatusCode::OK);
    let grant = env.grant();

    let answer = send(
        &env.app,
        Method::POST,
        "/v1/connections",
        Auth::Bearer(&env.connect_key),
        Some(&json!({
            "app": "fake",
            "connection_id": "imported",
            "access_token": grant.access_token.clone().unwrap(),
            "refresh_token": grant.refresh_token.clone().unwrap(),
            "expires_at": "2031-02-03T04:05:06Z",
        })),
    )
    .await;

    let created = answer.expect_json(StatusCode::CREATED);
    assert_recent(&created["created_at"], env.app.clock.now());
    // Due ahead of expiry, by a tenth of the token's lifetime at least (with jitter).
    let due: chrono::DateTime<chrono::Utc> = created["next_refresh_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expires: chrono::DateTime<chrono::Utc> = "2031-02-03T04:05:06Z".parse().unwrap();
    let lifetime = expires - env.app.clock.now();
    assert!(
        due <= expires - lifetime / 10 && due >= expires - lifetime * 3 / 20,
        "{due}"
    );
    let mut shape = created.clone();
    shape.as_object_mut().unwrap().remove("next_refresh_at");
    assert_eq!(
        shape,
        json!({
            "id": "imported",
            "app": "fake",
            "provider": "fake",
            "status": "active",
            "scopes": SCOPES,
            "expires_at": "2031-02-03T04:05:06Z",
            "created_at": created["created_at"],
            "refreshed_at": null,
        })
    );
    assert!(!answer.text.contains(&grant.access_token.clone().unwrap()));
    let duplicate = send(
        &env.app,
        Method::POST,
        "/v1/connections",
        Auth::Bearer(&env.connect_key),
        Some(&json!({"app": "fake", "connection_id": "imported", "access_token": "x"})),
    )
    .await;
    assert_problem(
        &duplicate,
        StatusCode::CONFLICT,
        "conflict",
        "a connection imported already exists",
    );

    let one = env.connection("imported").await.expect_json(StatusCode::OK);
    assert_eq!(one, created);
    let list = send(
        &env.app,
        Method::GET,
        "/v1/connections",
        Auth::Bearer(&env.read_key),
        None,
    )
    .await
    .expect_json(StatusCode::OK);
    // Listed by creation time, then id: "seed" first unless both were created in the
    // same millisecond, when "imported" sorts first by id.
    let entries = list.as_array().unwrap();
    let order = |c: &Value| {
        (
            chrono::DateTime::parse_from_rfc3339(c["created_at"].as_str().unwrap()).unwrap(),
            c["id"].as_str().unwrap().to_owned(),
        )
    };
    assert!(
        entries.windows(2).all(|w| order(&w[0]) < order(&w[1])),
        "{list}"
    );
    let mut ids: Vec<&str> = entries.iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec!["imported", "seed"]);
    assert_eq!(
        entries.iter().find(|c| c["id"] == "imported"),
        Some(&created)
    );

    let token = env.token("imported", "").await.expect_json(StatusCode::OK);
    assert_eq!(token["access_token"], grant.access_token.clone().unwrap());
    assert_eq!(token["refreshed"], false);
    assert_eq!(token["token_type"], "Bearer");
    let refreshed = env
        .token("imported", "?force_refresh=true")
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(refreshed["refreshed"], true);
    let last = env.provider.requests_to("/token").pop().unwrap();
    assert_eq!(
        last.form_param("refresh_token"),
        grant.refresh_token.as_deref()
    );
}

#[tokio::test]
async fn an_unknown_connection_is_404_everywhere() {
    let env = oauth_env().await;

    for answer in [
        env.connection("nope").await,
        env.token("nope", "").await,
        delete(&env, "/v1/connections/nope").await,
        send(
            &env.app,
            Method::POST,
            "/v1/connections/nope/refresh",
            Auth::Bearer(&env.connect_key),
            None,
        )
        .await,
    ] {
        assert_problem(
            &answer,
            StatusCode::NOT_FOUND,
            "not_found",
            "connection not found",
        );
    }
}

#[tokio::test]
async fn deleting_a_connection_revokes_the_refresh_then_the_access_token_at_the_provider() {
    let env = oauth_env().await;
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK);
    let grant = env.grant();

    let answer = delete(&env, "/v1/connections/c1").await;

    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
    assert_eq!(env.provider.revocations(), 2);
    let revoked: Vec<_> = env.provider.requests_to("/revoke");
    assert_eq!(
        revoked[0].form_param("token"),
        grant.refresh_token.as_deref()
    );
    assert_eq!(
        revoked[0].form_param("token_type_hint"),
        Some("refresh_token")
    );
    assert_eq!(
        revoked[1].form_param("token"),
        grant.access_token.as_deref()
    );
    assert_eq!(
        revoked[1].form_param("token_type_hint"),
        Some("access_token")
    );
    assert!(env.grant().revoked);
    assert!(
        !env.provider
            .is_access_token_valid(grant.access_token.as_deref().unwrap())
    );
    assert_eq!(env.connection("c1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(env.token("c1", "").await.status, StatusCode::NOT_FOUND);
    assert_eq!(env.token_format("c1").await, None);
    assert_eq!(
        delete(&env, "/v1/connections/c1").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_failed_revocation_keeps_the_connection_unless_forced() {
    let env = oauth_env().await;
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK);
    let token = env.token("c1", "").await.expect_json(StatusCode::OK);
    // The provider stops accepting the way tokenwarden authenticates, so /revoke
    // answers 401 invalid_client.
    let basic = env
        .provider
        .requests_to("/token")
        .last()
        .unwrap()
        .header("authorization")
        .is_some();
    env.provider.set_client_auth(if basic {
        ClientAuthPolicy::Post
    } else {
        ClientAuthPolicy::Basic
    });

    let answer = delete(&env, "/v1/connections/c1").await;

    assert_problem(
        &answer,
        StatusCode::BAD_GATEWAY,
        "provider_error",
        "revocation failed at the provider, so the connection was kept; retry, or delete with ?force=true",
    );
    assert!(env.provider.revocations() >= 1);
    let kept = env.token("c1", "").await.expect_json(StatusCode::OK);
    assert_eq!(kept["access_token"], token["access_token"]);

    let answer = delete(&env, "/v1/connections/c1?force=true").await;

    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
    assert_eq!(env.connection("c1").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_expired_imported_token_without_a_refresh_token_answers_token_expired() {
    let env = oauth_env().await;
    let created = send(
        &env.app,
        Method::POST,
        "/v1/connections",
        Auth::Bearer(&env.connect_key),
        Some(&json!({
            "app": "fake",
            "connection_id": "old",
            "access_token": "an-access-token-from-elsewhere",
            "expires_at": "2020-01-01T00:00:00Z",
            "scopes": ["email"],
        })),
    )
    .await
    .expect_json(StatusCode::CREATED);
    assert_eq!(created["status"], "expired");
    assert_eq!(created["scopes"], json!(["email"]));

    let answer = env.token("old", "").await;

    assert_problem(
        &answer,
        StatusCode::CONFLICT,
        "token_expired",
        "the access token has expired and the connection has no refresh token; connect again",
    );
    assert_eq!(env.provider.token_calls(), 0);
}
