//! The connect flow end to end against the fake provider over real HTTP: the callback,
//! sealing, the first read, reconnecting, OpenID's id token, and `return_to`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::{Quirks, RedirectIss};
use tokenwarden_server::Clock;
use tokenwarden_testing::SpawnOptions;

use crate::helpers::{Auth, assert_fields, assert_id, utc};
use crate::oauth_flow_support::{get_page, new_session};
use crate::oauth_support::{
    SCOPES, TOKEN_FIELDS, authorize, follow_authorization, oauth_env, oauth_env_with,
    provider_config, query_param, send, with_param,
};

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
