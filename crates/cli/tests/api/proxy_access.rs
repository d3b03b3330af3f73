//! Who may use the API proxy: roles, scopes, and app and connection states are
//! enforced, a proxy-only key never receives a token, and every call is audited once.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Auth, assert_forbidden, assert_problem};
use crate::oauth_support::send;
use crate::proxy_support::{problem_code, proxy_env};

#[tokio::test]
async fn proxy_read_and_admin_keys_may_proxy_and_connect_keys_may_not() {
    let env = proxy_env().await;
    // `Roles::allows` gives admin every role, as everywhere else in the API.
    for key in [&env.proxy_key, &env.read_key, &env.vault.admin_key] {
        let answer = env.call(Method::GET, "alice/user", key, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    let answer = env
        .call(Method::GET, "alice/user", &env.connect_key, None)
        .await;
    assert_forbidden(&answer, "this API key lacks the proxy or read role");
    assert_eq!(env.provider.api_calls(), 3);
}

#[tokio::test]
async fn scoped_keys_are_refused_outside_their_scope() {
    let env = proxy_env().await;
    let env = &env;
    let scoped = |scope: Value| async move {
        send(
            &env.app,
            Method::POST,
            "/v1/api-keys",
            Auth::Bearer(&env.vault.admin_key),
            Some(&json!({"name": "scoped", "roles": ["proxy"], "scope": scope})),
        )
        .await
        .expect_json(StatusCode::CREATED)["key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let inside = scoped(json!({"apps": ["fake"], "connections": ["ali*"]})).await;
    let other_connection = scoped(json!({"connections": ["bob*"]})).await;
    let other_app = scoped(json!({"apps": ["github"]})).await;
    assert_eq!(
        env.call(Method::GET, "alice/user", &inside, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_forbidden(
        &env.call(Method::GET, "alice/user", &other_connection, None)
            .await,
        "this API key's scope does not include that connection",
    );
    // Follows the other connection endpoints: an app outside the scope hides the
    // connection altogether.
    assert_problem(
        &env.call(Method::GET, "alice/user", &other_app, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
        "connection not found",
    );
    assert_eq!(env.provider.api_calls(), 1);
}

#[tokio::test]
async fn a_proxy_only_key_never_receives_a_token() {
    let env = proxy_env().await;
    let token = send(
        &env.app,
        Method::GET,
        "/v1/connections/alice/token",
        Auth::Bearer(&env.proxy_key),
        None,
    )
    .await;
    assert_forbidden(&token, "this API key lacks the read role");
    let refresh = send(
        &env.app,
        Method::POST,
        "/v1/connections/alice/refresh",
        Auth::Bearer(&env.proxy_key),
        None,
    )
    .await;
    assert_forbidden(&refresh, "this API key lacks the connect or refresh role");
    let listed = send(
        &env.app,
        Method::GET,
        "/v1/connections/alice",
        Auth::Bearer(&env.proxy_key),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    for secret in env.provider.issued_secrets() {
        assert!(!token.text.contains(&secret));
        assert!(!refresh.text.contains(&secret));
        assert!(!listed.text.contains(&secret));
    }
    assert_eq!(env.provider.refresh_calls(), 0);
}

#[tokio::test]
async fn blocked_apps_reauth_and_deleted_connections_are_refused() {
    let env = proxy_env().await;
    let blocked = send(
        &env.app,
        Method::PATCH,
        "/v1/apps/fake",
        Auth::Bearer(&env.vault.admin_key),
        Some(&json!({"status": "blocked"})),
    )
    .await;
    assert_eq!(blocked.status, StatusCode::OK, "{}", blocked.text);
    assert_eq!(problem_code(&env.get("alice/user").await), "app_blocked");
    send(
        &env.app,
        Method::PATCH,
        "/v1/apps/fake",
        Auth::Bearer(&env.vault.admin_key),
        Some(&json!({"status": "active"})),
    )
    .await
    .expect_json(StatusCode::OK);

    env.provider.revoke_grant(env.grant().id);
    let refused = send(
        &env.app,
        Method::POST,
        "/v1/connections/alice/refresh",
        Auth::Bearer(&env.connect_key),
        None,
    )
    .await;
    assert_eq!(problem_code(&refused), "needs_reauth");
    let answer = env.get("alice/user").await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(problem_code(&answer), "needs_reauth");

    let deleted = send(
        &env.app,
        Method::DELETE,
        "/v1/connections/alice?force=true",
        Auth::Bearer(&env.connect_key),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    assert_problem(
        &env.get("alice/user").await,
        StatusCode::NOT_FOUND,
        "not_found",
        "connection not found",
    );
    assert_eq!(env.provider.api_calls(), 0);
    let outcomes: Vec<Value> = env
        .proxy_audit()
        .await
        .iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["app_blocked", "needs_reauth", "not_found"]);
}

#[tokio::test]
async fn every_call_writes_one_audit_record_without_query_or_token() {
    let env = proxy_env().await;
    env.get("alice/user/repos?access_token=s3cret-in-query")
        .await;
    let records = env.proxy_audit().await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record["target"], "alice GET /user/repos");
    assert_eq!(record["outcome"], "status:200");
    let all = env.audit().await;
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("s3cret-in-query"));
    for secret in env.provider.issued_secrets() {
        assert!(!text.contains(&secret));
    }
    // The proxy reads the token without it counting as a token read by the caller.
    assert!(all.iter().all(|r| r["action"] != "connection.token_read"));
}
