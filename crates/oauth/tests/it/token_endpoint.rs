//! Token, refresh and revocation requests as the provider sees them, and how their
//! answers come back (faults and retries are in `token_faults`).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tokenwarden_oauth::{
    AccessToken, AuthorizationCode, ClientAuth, PkceVerifier, RefreshToken, RevocableToken,
    Revocation, exchange_code, refresh, revoke,
};

use crate::support::{FakeServer, Reply, loopback_client};
use crate::token_fixtures::{REDIRECT, VERIFIER, credentials, now, pairs};

#[tokio::test]
async fn code_exchange_with_basic_auth_sends_the_exact_rfc_6749_request() {
    let server = FakeServer::start().await;
    server.reply(
        "/token",
        Reply::json(
            200,
            json!({"access_token": "at-1", "token_type": "bearer", "expires_in": "3600",
                   "refresh_token": "rt-1", "scope": "openid email", "id_token": "a.b.c",
                   "x_tenant": "t1"}),
        ),
    );
    let def = server.provider(|_| {});
    let verifier = PkceVerifier::parse(VERIFIER.into()).unwrap();

    let tokens = exchange_code(
        &loopback_client(),
        &def,
        &credentials(),
        &AuthorizationCode::new("code-1"),
        REDIRECT,
        Some(&verifier),
        now(),
    )
    .await
    .unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/token");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {}", STANDARD.encode("client%3A1:se+cret")).as_str())
    );
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.form(),
        pairs(&[
            ("grant_type", "authorization_code"),
            ("code", "code-1"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
    );
    assert_eq!(tokens.access_token.expose_secret(), "at-1");
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_at, Some(now() + chrono::Duration::hours(1)));
    assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "rt-1");
    assert_eq!(tokens.id_token.unwrap().expose_secret(), "a.b.c");
    assert_eq!(
        tokens.scopes,
        Some(vec!["openid".to_owned(), "email".to_owned()])
    );
    assert_eq!(
        serde_json::Value::Object(tokens.extras),
        json!({"x_tenant": "t1"})
    );
}

#[tokio::test]
async fn code_exchange_with_post_auth_sends_credentials_in_the_body_and_reads_github_form_answers()
{
    let server = FakeServer::start().await;
    server.reply(
        "/token",
        Reply::raw(
            200,
            "application/x-www-form-urlencoded; charset=utf-8",
            "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist&token_type=bearer",
        ),
    );
    let def = server.provider(|spec| {
        spec.client_auth = ClientAuth::Post;
        spec.pkce = false;
    });
    let verifier = PkceVerifier::parse(VERIFIER.into()).unwrap();

    let tokens = exchange_code(
        &loopback_client(),
        &def,
        &credentials(),
        &AuthorizationCode::new("code-2"),
        REDIRECT,
        Some(&verifier),
        now(),
    )
    .await
    .unwrap();

    let request = &server.requests()[0];
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.form(),
        pairs(&[
            ("grant_type", "authorization_code"),
            ("code", "code-2"),
            ("redirect_uri", REDIRECT),
            ("client_id", "client:1"),
            ("client_secret", "se cret"),
        ]),
        "no code_verifier to a provider without PKCE"
    );
    assert_eq!(
        tokens.access_token.expose_secret(),
        "gho_16C7e42F292c6912E7710c838347Ae178B4a"
    );
    assert_eq!(tokens.expires_at, None);
    assert!(tokens.refresh_token.is_none());
    assert_eq!(
        tokens.scopes,
        Some(vec!["repo".to_owned(), "gist".to_owned()])
    );
}

#[tokio::test]
async fn refresh_sends_scopes_only_when_given_and_reports_a_kept_refresh_token_as_none() {
    let server = FakeServer::start().await;
    server.reply(
        "/token",
        Reply::json(
            200,
            json!({"access_token": "at-2", "token_type": "Bearer", "expires_in": 60}),
        ),
    );
    let def = server.provider(|spec| spec.scope_separator = ",".into());
    let http = loopback_client();
    let rt = RefreshToken::new("rt-9");

    let plain = refresh(&http, &def, &credentials(), &rt, &[], now())
        .await
        .unwrap();
    let scoped = refresh(
        &http,
        &def,
        &credentials(),
        &rt,
        &["a".into(), "b".into()],
        now(),
    )
    .await
    .unwrap();

    let requests = server.requests_to("/token");
    assert_eq!(
        requests[0].form(),
        pairs(&[("grant_type", "refresh_token"), ("refresh_token", "rt-9")])
    );
    assert_eq!(
        requests[1].form(),
        pairs(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt-9"),
            ("scope", "a,b")
        ])
    );
    assert!(plain.refresh_token.is_none());
    assert_eq!(
        scoped.expires_at,
        Some(now() + chrono::Duration::seconds(60))
    );
}

#[tokio::test]
async fn revocation_sends_the_token_with_its_type_hint_and_client_auth() {
    let server = FakeServer::start().await;
    server.reply("/revoke", Reply::raw(200, "text/plain", ""));
    let def = server.provider(|spec| spec.client_auth = ClientAuth::Post);

    let outcome = revoke(
        &loopback_client(),
        &def,
        &credentials(),
        RevocableToken::Refresh(&RefreshToken::new("rt-x")),
        &AccessToken::new("at"),
        now(),
    )
    .await
    .unwrap();

    assert_eq!(outcome, Revocation::Revoked);
    let request = &server.requests_to("/revoke")[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(
        request.form(),
        pairs(&[
            ("token", "rt-x"),
            ("token_type_hint", "refresh_token"),
            ("client_id", "client:1"),
            ("client_secret", "se cret"),
        ])
    );
}

#[tokio::test]
async fn revocation_unavailable_is_transient_with_retry_after_and_absent_endpoint_is_not_supported()
{
    let server = FakeServer::start().await;
    server.reply(
        "/revoke",
        Reply::raw(503, "text/plain", "").header("retry-after", "5"),
    );
    let http = loopback_client();
    let token = AccessToken::new("at");

    let err = revoke(
        &http,
        &server.provider(|_| {}),
        &credentials(),
        RevocableToken::Access(&token),
        &AccessToken::new("at"),
        now(),
    )
    .await
    .unwrap_err();
    let none = revoke(
        &http,
        &server.provider(|s| s.revocation_url = None),
        &credentials(),
        RevocableToken::Access(&token),
        &AccessToken::new("at"),
        now(),
    )
    .await
    .unwrap();

    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)));
    assert_eq!(
        server.requests_to("/revoke")[0].form()[1],
        ("token_type_hint".to_owned(), "access_token".to_owned())
    );
    assert_eq!(none, Revocation::NotSupported);
    assert_eq!(server.requests_to("/revoke").len(), 1);
}

#[tokio::test]
async fn a_json_token_request_sends_the_same_parameters_as_a_json_object() {
    let server = FakeServer::start().await;
    server.reply("/token", Reply::json(200, json!({"access_token": "at-j"})));
    let def = server.provider(|spec| {
        spec.client_auth = ClientAuth::Basic;
        spec.token_request.format = tokenwarden_oauth::BodyFormat::Json;
    });

    let tokens = exchange_code(
        &loopback_client(),
        &def,
        &credentials(),
        &AuthorizationCode::new("code-j"),
        REDIRECT,
        None,
        now(),
    )
    .await
    .unwrap();

    assert_eq!(tokens.access_token.expose_secret(), "at-j");
    let request = &server.requests_to("/token")[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(
        body,
        json!({"grant_type": "authorization_code", "code": "code-j", "redirect_uri": REDIRECT})
    );
    assert!(
        request
            .header("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
}

#[tokio::test]
async fn a_query_token_request_is_a_get_without_a_body() {
    let server = FakeServer::start().await;
    server.reply("/token", Reply::json(200, json!({"access_token": "at-q"})));
    let def = server.provider(|spec| {
        spec.client_auth = ClientAuth::Post;
        spec.token_request.format = tokenwarden_oauth::BodyFormat::Query;
    });

    exchange_code(
        &loopback_client(),
        &def,
        &credentials(),
        &AuthorizationCode::new("code-q"),
        REDIRECT,
        None,
        now(),
    )
    .await
    .unwrap();

    let request = &server.requests_to("/token")[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.body, "");
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(request.query.as_deref().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(
        query,
        pairs(&[
            ("grant_type", "authorization_code"),
            ("code", "code-q"),
            ("redirect_uri", REDIRECT),
            ("client_id", "client:1"),
            ("client_secret", "se cret"),
        ])
    );
}
