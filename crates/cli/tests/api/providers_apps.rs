//! Providers and apps as the connect flow sees them: discovery, the app's redirect
//! URI, and a blocked app refusing connects and refreshes until it is active again.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Answer, Auth, assert_problem};
use crate::oauth_support::{OAuthEnv, authorize, fetch, oauth_env, send};

const BLOCKED: &str = "the app is blocked: token reads, proxy calls, refreshes, imports and connects are refused until it is set active";

async fn set_status(env: &OAuthEnv, status: &str) -> Value {
    send(
        &env.app,
        Method::PATCH,
        "/v1/apps/fake",
        Auth::Bearer(&env.vault.admin_key),
        Some(&json!({"status": status})),
    )
    .await
    .expect_json(StatusCode::OK)
}

fn assert_blocked(answer: &Answer) {
    assert_problem(answer, StatusCode::CONFLICT, "app_blocked", BLOCKED);
}

#[tokio::test]
async fn a_provider_registered_from_its_issuer_lists_the_discovered_endpoints() {
    let env = oauth_env().await;

    let list = send(
        &env.app,
        Method::GET,
        "/v1/providers",
        Auth::Bearer(&env.read_key),
        None,
    )
    .await
    .expect_json(StatusCode::OK);

    let fake = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "fake")
        .unwrap();
    assert_eq!(fake["builtin"], false);
    assert_eq!(fake["issuer"], env.provider.issuer());
    assert_eq!(
        fake["authorization_url"],
        env.provider.authorization_endpoint()
    );
    assert_eq!(fake["token_url"], env.provider.token_endpoint());
    assert_eq!(fake["pkce"], true);
    assert_eq!(fake["iss_parameter_supported"], true);
    let apps = send(
        &env.app,
        Method::GET,
        "/v1/apps",
        Auth::Bearer(&env.read_key),
        None,
    )
    .await;
    assert!(!apps.text.contains(crate::oauth_support::CLIENT_SECRET));
    assert_eq!(
        apps.json()[0]["redirect_uri"],
        env.oauth_app["redirect_uri"]
    );
}

#[tokio::test]
async fn a_blocked_app_refuses_connects_refreshes_and_token_reads_until_it_is_active_again() {
    let env = oauth_env().await;
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK);
    // A flow started before the block, finished after it.
    let started = env
        .start_session(&json!({"app": "fake", "connection_id": "late"}))
        .await
        .expect_json(StatusCode::CREATED);
    let late_callback = authorize(&env.app.client, &started).await;

    let app = set_status(&env, "blocked").await;

    assert_eq!(app["status"], "blocked");
    assert_blocked(
        &env.start_session(&json!({"app": "fake", "connection_id": "c2"}))
            .await,
    );
    assert_blocked(&env.token("c1", "?force_refresh=true").await);
    // A token that needs no refresh is refused too: blocked means nothing is served.
    assert_blocked(&env.token("c1", "").await);
    assert_blocked(
        &send(
            &env.app,
            Method::POST,
            "/v1/connections",
            Auth::Bearer(&env.connect_key),
            Some(&json!({"app": "fake", "connection_id": "imported", "access_token": "at-1"})),
        )
        .await,
    );
    assert_blocked(
        &send(
            &env.app,
            Method::POST,
            "/v1/connections/c1/refresh",
            Auth::Bearer(&env.connect_key),
            None,
        )
        .await,
    );
    let page = fetch(
        &env.app.client,
        Method::GET,
        &late_callback,
        Auth::None,
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.text);
    assert!(
        page.text.contains("<code>app_blocked</code>"),
        "{}",
        page.text
    );
    assert_eq!(env.provider.refresh_calls(), 0);
    assert_eq!(env.provider.code_exchanges(), 1);

    let app = set_status(&env, "active").await;

    assert_eq!(app["status"], "active");
    let token = env
        .token("c1", "?force_refresh=true")
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(token["refreshed"], true);
    assert_eq!(env.provider.refresh_calls(), 1);
    let (_, page) = env.connect("c2").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
}
