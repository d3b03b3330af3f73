//! The connect flow end to end against the fake provider over real HTTP: the callback,
//! sealing, the first read, reconnecting, and every way a callback is refused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::{AuthorizeMode, Quirks, RedirectIss};
use tokenwarden_server::Clock;
use tokenwarden_testing::SpawnOptions;

use crate::helpers::{Auth, assert_fields, assert_id, assert_problem, utc};
use crate::oauth_support::{
    OAuthEnv, SCOPES, TOKEN_FIELDS, authorize, fetch, follow_authorization, oauth_env,
    oauth_env_with, provider_config, query_param, send, with_param,
};

const REFUSED: &str = "Sign-in link not valid";

async fn get_page(env: &OAuthEnv, url: &str) -> crate::helpers::Answer {
    fetch(&env.app.client, Method::GET, url, Auth::None, None).await
}

async fn new_session(env: &OAuthEnv, connection_id: &str) -> Value {
    env.start_session(&json!({"app": "fake", "connection_id": connection_id}))
        .await
        .expect_json(StatusCode::CREATED)
}

#[tokio::test]
async fn a_connect_flow_stores_the_providers_tokens_sealed_and_the_token_call_returns_them() {
    let env = oauth_env().await;

    let session = new_session(&env, "c1").await;
    assert_fields(
        &session,
        &[
            "id",
            "connection_id",
            "authorization_url",
            "connect_link",
            "connect_link_expires_at",
            "expires_at",
        ],
    );
    let session_id = assert_id(&session["id"], "cs");
    assert_eq!(session["connection_id"], "c1");
    let started = env.app.clock.now();
    let expires = utc(&session["expires_at"]);
    assert!(((expires - started).num_seconds() - 600).abs() <= 2);
    let authorization_url = session["authorization_url"].as_str().unwrap();
    assert!(authorization_url.starts_with(&env.provider.authorization_endpoint()));

    let callback = authorize(&env.app.client, &session).await;
    let request = env.provider.last_authorization().unwrap();
    assert_eq!(request.client_id, crate::oauth_support::CLIENT_ID);
    assert_eq!(
        request.redirect_uri.as_deref(),
        env.oauth_app["redirect_uri"].as_str()
    );
    assert_eq!(request.scope.as_deref(), Some("profile email"));
    assert_eq!(request.code_challenge_method.as_deref(), Some("S256"));
    assert!(callback.starts_with(&format!(
        "{}?",
        env.oauth_app["redirect_uri"].as_str().unwrap()
    )));
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(env.provider.issuer())
    );

    let page = get_page(&env, &callback).await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.text.contains("<h1>Connected</h1>"), "{}", page.text);
    assert!(page.text.contains("<code>c1</code>"), "{}", page.text);
    assert_eq!(env.provider.code_exchanges(), 1);
    // The token request repeats the redirect URI byte for byte and proves PKCE.
    let exchange = env.provider.requests_to("/token").pop().unwrap();
    assert_eq!(
        exchange.form_param("redirect_uri"),
        env.oauth_app["redirect_uri"].as_str()
    );
    assert_eq!(
        exchange.form_param("code"),
        query_param(&callback, "code").as_deref()
    );
    assert!(
        exchange
            .form_param("code_verifier")
            .is_some_and(|v| v.len() >= 43)
    );
    let status = env.session_status(&session_id).await;
    assert_eq!(
        status,
        json!({
            "id": session_id,
            "status": "completed",
            "connection_id": "c1",
            "error": null,
            "expires_at": session["expires_at"],
        })
    );
    // Sealed to the vault's public key by the callback (no key holder present).
    assert_eq!(env.token_format("c1").await, Some(2));

    let grant = env.grant();
    let answer = env.token("c1", "").await;
    let token = answer.expect_json(StatusCode::OK);
    assert_fields(&token, &TOKEN_FIELDS);
    assert_eq!(token["access_token"], grant.access_token.clone().unwrap());
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scopes"], json!(SCOPES));
    assert_eq!(token["refreshed"], false);
    assert_eq!(token["extras"], json!({}));
    let expires_at = utc(&token["expires_at"]);
    assert!(((expires_at - env.app.clock.now()).num_seconds() - 3600).abs() <= 5);
    assert!(!answer.text.contains(&grant.refresh_token.clone().unwrap()));
    // The first key holder moved it under the DEK.
    assert_eq!(env.token_format("c1").await, Some(1));
    assert_eq!(env.provider.refresh_calls(), 0);

    let before = env.connection("c1").await.expect_json(StatusCode::OK);
    assert_eq!(before["status"], "active");
    assert_eq!(before["app"], "fake");
    assert_eq!(before["provider"], "fake");
    assert_eq!(before["refreshed_at"], Value::Null);
}

#[tokio::test]
async fn connecting_again_with_the_same_connection_id_replaces_the_tokens_in_place() {
    let env = oauth_env().await;
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let first = env.grant();
    let first_token = env.token("c1", "").await.expect_json(StatusCode::OK);
    let before = env.connection("c1").await.expect_json(StatusCode::OK);

    let (_, page) = env.connect("c1").await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let second = env.grant();
    assert_ne!(first.id, second.id);
    assert_eq!(env.token_format("c1").await, Some(2));
    let token = env.token("c1", "").await.expect_json(StatusCode::OK);
    assert_eq!(token["access_token"], second.access_token.unwrap());
    assert_ne!(token["access_token"], first_token["access_token"]);
    assert_eq!(token["refreshed"], false);
    let after = env.connection("c1").await.expect_json(StatusCode::OK);
    assert_eq!(after["id"], "c1");
    assert_eq!(after["created_at"], before["created_at"]);
    let list = send(
        &env.app,
        Method::GET,
        "/v1/connections",
        Auth::Bearer(&env.read_key),
        None,
    )
    .await
    .expect_json(StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_replayed_callback_is_refused_and_the_code_is_exchanged_once() {
    let env = oauth_env().await;
    let session = new_session(&env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;
    let first = get_page(&env, &callback).await;
    assert_eq!(first.status, StatusCode::OK);
    let token = env.token("c1", "").await.expect_json(StatusCode::OK);

    let replay = get_page(&env, &callback).await;

    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.text);
    assert!(replay.text.contains(REFUSED), "{}", replay.text);
    assert_eq!(replay.header("cache-control"), Some("no-store"));
    assert!(
        !replay
            .text
            .contains(&query_param(&callback, "code").unwrap())
    );
    assert_eq!(env.provider.code_exchanges(), 1);
    assert_eq!(env.provider.reuse_detections(), 0);
    let again = env.token("c1", "").await.expect_json(StatusCode::OK);
    assert_eq!(again["access_token"], token["access_token"]);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "completed");
}

#[tokio::test]
async fn an_expired_state_is_refused_without_exchanging_the_code() {
    let env = oauth_env().await;
    let session = new_session(&env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;
    env.app.clock.advance_secs(601);

    let page = get_page(&env, &callback).await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    assert!(page.text.contains("has expired"), "{}", page.text);
    assert_eq!(env.provider.code_exchanges(), 0);
    assert_problem(
        &env.connection("c1").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "connection not found",
    );
    // Its connect link, never opened, can still start the flow afresh...
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "pending");
    // ...until the link's own time is up.
    env.app.clock.advance_secs(1800);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "expired");
}

#[tokio::test]
async fn a_forged_state_is_refused_and_consumes_nothing() {
    let env = oauth_env().await;
    let session = new_session(&env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;
    let forged = with_param(
        &callback,
        "state",
        "Xq3mD0fP8wz1Lr6TbV2yKc9NsHe4Ga7Ju5Ro0Wi1Yt",
    );

    let page = get_page(&env, &forged).await;
    let no_state = get_page(
        &env,
        &format!(
            "{}?code={}",
            env.oauth_app["redirect_uri"].as_str().unwrap(),
            query_param(&callback, "code").unwrap()
        ),
    )
    .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    assert!(page.text.contains(REFUSED));
    assert_eq!(
        no_state.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_state.text
    );
    assert_eq!(env.provider.code_exchanges(), 0);
    assert_eq!(env.connection("c1").await.status, StatusCode::NOT_FOUND);
    // The genuine response still works.
    let page = get_page(&env, &callback).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(env.provider.code_exchanges(), 1);
}

#[tokio::test]
async fn a_callback_that_repeats_its_state_or_code_is_refused_and_consumes_nothing() {
    let env = oauth_env().await;
    let session = new_session(&env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;
    let state = query_param(&callback, "state").unwrap();

    let mut pages = Vec::new();
    for (name, value) in [
        ("state", "Xq3mD0fP8wz1Lr6TbV2yKc9NsHe4Ga7Ju5Ro0Wi1Yt"),
        ("state", state.as_str()),
        ("code", "another-code"),
    ] {
        let page = get_page(&env, &format!("{callback}&{name}={value}")).await;
        pages.push((name, page));
    }

    // RFC 6749 §3.1: a parameter "MUST NOT be included more than once"; which of two
    // states would be checked and which consumed is exactly the ambiguity to refuse.
    for (name, page) in &pages {
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
        assert!(page.text.contains(REFUSED), "{}", page.text);
        assert!(
            page.text
                .contains(&format!("the response repeats the `{name}` parameter")),
            "{}",
            page.text
        );
        assert_eq!(page.header("cache-control"), Some("no-store"));
    }
    assert_eq!(env.provider.code_exchanges(), 0);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "pending");
    let page = get_page(&env, &callback).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(env.provider.code_exchanges(), 1);
}

#[tokio::test]
async fn a_response_delivered_on_another_apps_callback_path_is_refused_and_consumes_nothing() {
    let env = oauth_env().await;
    let other =
        crate::oauth_support::create_app(&env.app, &env.vault.admin_key, "other", &SCOPES).await;
    let session = new_session(&env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;
    let foreign = callback.replace(
        env.oauth_app["redirect_uri"].as_str().unwrap(),
        other["redirect_uri"].as_str().unwrap(),
    );
    assert_ne!(foreign, callback);

    let page = get_page(&env, &foreign).await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    assert!(page.text.contains(REFUSED));
    assert_eq!(env.provider.code_exchanges(), 0);
    assert_eq!(env.connection("c1").await.status, StatusCode::NOT_FOUND);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "pending");
    let page = get_page(&env, &callback).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(env.provider.code_exchanges(), 1);
}

/// Runs a flow whose callback must fail with `error`; asserts nothing was stored.
async fn assert_flow_fails(env: &OAuthEnv, error: &str) {
    let session = new_session(env, "c1").await;
    let callback = authorize(&env.app.client, &session).await;

    let page = get_page(env, &callback).await;

    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.text);
    assert!(page.text.contains("Connection failed"), "{}", page.text);
    assert!(
        page.text.contains(&format!("<code>{error}</code>")),
        "{}",
        page.text
    );
    assert_eq!(env.connection("c1").await.status, StatusCode::NOT_FOUND);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["error"], error);
    // A failed session cannot be retried with the same response.
    let again = get_page(env, &callback).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_response_with_another_issuer_is_refused_before_the_code_is_exchanged() {
    let env = oauth_env().await;
    env.provider.set_quirks(Quirks {
        redirect_iss: RedirectIss::Wrong("https://attacker.example".into()),
        ..Quirks::default()
    });

    assert_flow_fails(&env, "iss_mismatch").await;

    assert_eq!(env.provider.code_exchanges(), 0);
}

#[tokio::test]
async fn a_response_without_iss_is_refused_when_the_provider_says_it_sends_iss() {
    let env = oauth_env().await;
    env.provider.set_quirks(Quirks {
        redirect_iss: RedirectIss::Omitted,
        ..Quirks::default()
    });

    assert_flow_fails(&env, "iss_mismatch").await;

    assert_eq!(env.provider.code_exchanges(), 0);
}

#[tokio::test]
async fn an_openid_flow_verifies_the_id_token_and_a_wrong_nonce_is_refused() {
    let env = oauth_env_with(
        SpawnOptions::default(),
        provider_config(),
        &["openid", "email"],
    )
    .await;

    let (session, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let nonce = query_param(session["authorization_url"].as_str().unwrap(), "nonce");
    assert!(nonce.as_ref().is_some_and(|n| n.len() >= 22), "{nonce:?}");
    assert_eq!(env.grant().id_tokens.len(), 1);
    let token = env.token("c1", "").await.expect_json(StatusCode::OK);
    assert_eq!(token["scopes"], json!(["openid", "email"]));

    // A response whose id_token carries another nonce (as if injected from another
    // flow): the fake signs whatever nonce the authorization request carried.
    let session = new_session(&env, "c2").await;
    let url = with_param(
        session["authorization_url"].as_str().unwrap(),
        "nonce",
        "a-nonce-from-another-flow-000000",
    );
    let callback = follow_authorization(&env.app.client, &url).await;
    let page = get_page(&env, &callback).await;

    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.text);
    assert!(
        page.text.contains("<code>invalid_id_token</code>"),
        "{}",
        page.text
    );
    assert_eq!(env.provider.code_exchanges(), 2);
    assert_eq!(env.connection("c2").await.status, StatusCode::NOT_FOUND);
    let status = env.session_status(session["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["error"], "invalid_id_token");
}

#[tokio::test]
async fn the_callback_sends_the_browser_back_to_an_allowed_return_to() {
    let env = oauth_env_with(
        SpawnOptions {
            return_origins: vec!["https://app.example.com".into()],
            ..SpawnOptions::default()
        },
        provider_config(),
        &SCOPES,
    )
    .await;
    let session = env
        .start_session(&json!({
            "app": "fake",
            "connection_id": "c1",
            "return_to": "https://app.example.com/done?tab=2",
        }))
        .await
        .expect_json(StatusCode::CREATED);

    let callback = authorize(&env.app.client, &session).await;
    let answer = get_page(&env, &callback).await;

    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    assert_eq!(
        answer.header("location"),
        Some("https://app.example.com/done?tab=2&connection_id=c1")
    );
    env.token("c1", "").await.expect_json(StatusCode::OK);

    // A failure goes back too, with the error's code.
    env.provider.set_quirks(Quirks {
        redirect_iss: RedirectIss::Wrong("https://attacker.example".into()),
        ..Quirks::default()
    });
    let session = env
        .start_session(&json!({
            "app": "fake",
            "connection_id": "c2",
            "return_to": "https://app.example.com/done",
        }))
        .await
        .expect_json(StatusCode::CREATED);
    let callback = authorize(&env.app.client, &session).await;
    let answer = get_page(&env, &callback).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    assert_eq!(
        answer.header("location"),
        Some("https://app.example.com/done?error=iss_mismatch")
    );
}

#[tokio::test]
async fn a_return_to_outside_the_allowed_origins_is_refused_at_session_creation() {
    let env = oauth_env_with(
        SpawnOptions {
            return_origins: vec!["https://app.example.com".into()],
            ..SpawnOptions::default()
        },
        provider_config(),
        &SCOPES,
    )
    .await;

    for return_to in [
        "https://evil.example/done",
        "http://app.example.com/done",
        "https://app.example.com.evil.example/",
        "https://user:pw@app.example.com/",
        "/relative",
        "javascript:alert(1)",
    ] {
        let answer = env
            .start_session(&json!({"app": "fake", "return_to": return_to}))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{return_to}: {}",
            answer.text
        );
        assert_eq!(answer.json()["code"], "invalid_request", "{return_to}");
    }
    assert_eq!(env.provider.authorize_calls(), 0);
}

#[tokio::test]
async fn a_denied_consent_fails_the_session_without_exchanging_anything() {
    let env = oauth_env().await;
    env.provider.set_authorize_mode(AuthorizeMode::Deny);

    assert_flow_fails(&env, "access_denied").await;

    assert_eq!(env.provider.code_exchanges(), 0);
}
