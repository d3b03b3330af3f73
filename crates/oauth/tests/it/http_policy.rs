//! The outbound policy, end to end: what a production client refuses to call.

use chrono::Utc;
use serde_json::json;
use tokenwarden_oauth::{
    AuthorizationCode, ClientCredentials, HttpPolicy, PolicyError, TokenError, TransportError,
    discover, exchange_code,
};

use crate::support::{FakeServer, Reply};

fn credentials() -> ClientCredentials {
    ClientCredentials {
        client_id: "c".into(),
        client_secret: "s".to_owned().into(),
    }
}

fn policy_error(err: TokenError) -> PolicyError {
    match err {
        TokenError::Transport(TransportError::Policy(e)) => e,
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn production_client_refuses_http_and_loopback_literals_before_sending() {
    let server = FakeServer::start().await;
    server.reply("/token", Reply::json(200, json!({"access_token": "x"})));
    let strict = HttpPolicy::default().build().unwrap();
    let http_def = server.provider(|_| {});
    let https_literal = server.provider(|spec| {
        spec.token_url = format!("https://127.0.0.1:{}/token", server.port())
            .parse()
            .unwrap();
    });

    let over_http = exchange_code(
        &strict,
        &http_def,
        &credentials(),
        &AuthorizationCode::new("c"),
        "https://v/cb",
        None,
        Utc::now(),
    )
    .await;
    let to_literal = exchange_code(
        &strict,
        &https_literal,
        &credentials(),
        &AuthorizationCode::new("c"),
        "https://v/cb",
        None,
        Utc::now(),
    )
    .await;

    assert_eq!(
        policy_error(over_http.unwrap_err()),
        PolicyError::Scheme("http".into())
    );
    assert_eq!(
        policy_error(to_literal.unwrap_err()),
        PolicyError::BlockedAddress("127.0.0.1".into())
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn production_client_refuses_a_name_that_resolves_to_loopback() {
    let server = FakeServer::start().await;
    let strict = HttpPolicy::default().build().unwrap();
    let def = server.provider(|spec| {
        spec.token_url = format!("https://localhost:{}/token", server.port())
            .parse()
            .unwrap();
    });

    let err = exchange_code(
        &strict,
        &def,
        &credentials(),
        &AuthorizationCode::new("c"),
        "https://v/cb",
        None,
        Utc::now(),
    )
    .await
    .unwrap_err();

    assert_eq!(
        policy_error(err),
        PolicyError::BlockedAddress("localhost".into())
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn discovery_refuses_a_loopback_issuer_under_the_production_policy() {
    let server = FakeServer::start().await;
    let strict = HttpPolicy::default().build().unwrap();

    let err = discover(&strict, &server.origin()).await.unwrap_err();

    assert!(
        matches!(err, tokenwarden_oauth::DiscoveryError::InvalidIssuer(_)),
        "{err:?}"
    );
    assert!(server.requests().is_empty());
}
