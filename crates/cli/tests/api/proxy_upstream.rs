//! The API proxy when the provider's API misbehaves: an upstream 401 costs one refresh
//! and one retry, and an unreachable, missing or too slow API gets a precise problem.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokenwarden_service::ProxySettings;
use tokenwarden_testing::SpawnOptions;

use crate::helpers::assert_problem;
use crate::proxy_support::{custom_connection, proxy_env, proxy_env_with};

#[tokio::test]
async fn an_upstream_401_causes_one_refresh_and_one_retry() {
    let env = proxy_env().await;
    let before = env.current_token();
    env.provider.refuse_api_tokens(1);
    let answer = env
        .call(
            Method::POST,
            "alice/user",
            &env.proxy_key,
            Some(b"{\"name\":\"x\"}".to_vec()),
        )
        .await;
    let echo = answer.expect_json(StatusCode::OK);
    let after = env.current_token();
    assert_ne!(before, after);
    assert_eq!(echo["headers"]["authorization"], format!("Bearer {after}"));
    assert_eq!(echo["body"], "{\"name\":\"x\"}");
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_eq!(env.provider.api_calls(), 2);
}

#[tokio::test]
async fn a_second_upstream_401_goes_back_to_the_caller_after_one_refresh() {
    let env = proxy_env().await;
    env.provider.refuse_api_tokens(2);
    let answer = env.get("alice/user").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["error"], "invalid_token");
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"fake-provider\", error=\"invalid_token\"")
    );
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_eq!(env.provider.api_calls(), 2);
    let audit = env.proxy_audit().await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["outcome"], "status:401");
}

#[tokio::test]
async fn an_unreachable_api_gets_502_and_a_provider_without_api_gets_409() {
    let env = proxy_env().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let imported = custom_connection(
        &env.app,
        &env.vault.admin_key,
        &env.connect_key,
        "gone",
        Some(&format!("http://{closed}/api")),
        "bob",
    )
    .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    let unreachable = env.get("bob/x").await;
    assert_problem(
        &unreachable,
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        "the provider's API could not be reached",
    );

    let imported = custom_connection(
        &env.app,
        &env.vault.admin_key,
        &env.connect_key,
        "noapi",
        None,
        "carol",
    )
    .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{}", imported.text);
    assert_problem(
        &env.get("carol/x").await,
        StatusCode::CONFLICT,
        "proxy_unavailable",
        "the connection's provider has no API base URL, so it cannot be proxied to",
    );
}

#[tokio::test]
async fn a_provider_api_slower_than_the_timeout_gets_504() {
    let env = proxy_env_with(SpawnOptions {
        proxy: Some(ProxySettings {
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            ..ProxySettings::default()
        }),
        ..SpawnOptions::default()
    })
    .await;
    let answer = env.get("alice/hang").await;
    assert_problem(
        &answer,
        StatusCode::GATEWAY_TIMEOUT,
        "upstream_timeout",
        "the provider's API did not answer in time",
    );
}
