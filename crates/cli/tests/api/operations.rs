//! Liveness, readiness, metrics, the OpenAPI document, unknown routes.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_testing::spawn_app;

use crate::helpers::{Auth, assert_problem, call, delete, get};

#[tokio::test]
async fn healthz_answers_200_ok() {
    let app = spawn_app().await;

    let answer = get(&app, "/healthz", Auth::None).await;

    assert_eq!(answer.expect_json(StatusCode::OK), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_answers_200_ok_when_the_database_answers() {
    let app = spawn_app().await;

    let answer = get(&app, "/readyz", Auth::None).await;

    assert_eq!(answer.expect_json(StatusCode::OK), json!({"status": "ok"}));
}

#[tokio::test]
async fn an_unknown_route_gets_a_404_problem() {
    let app = spawn_app().await;

    let answer = get(&app, "/v1/nothing-here", Auth::None).await;

    assert_problem(&answer, StatusCode::NOT_FOUND, "not_found", "no such route");
}

#[tokio::test]
async fn a_known_route_with_the_wrong_method_gets_a_405_problem() {
    let app = spawn_app().await;

    let answer = call(&app, Method::PUT, "/v1/whoami", Auth::None, None).await;

    assert_problem(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let app = spawn_app().await;
    let vault = app.vault("metrics@example.com").await;
    let (key_id, _) = app.key(&vault, &["read"]).await;
    for _ in 0..2 {
        get(&app, "/v1/whoami", Auth::Bearer("twk_not-a-key")).await;
    }
    get(&app, "/v1/whoami", Auth::Bearer(&vault.admin_key)).await;
    delete(
        &app,
        &format!("/v1/api-keys/{key_id}"),
        Auth::Bearer(&vault.admin_key),
    )
    .await;

    let answer = get(&app, "/metrics", Auth::None).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.content_type(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = &answer.text;
    let counted = |line: &str| text.lines().any(|l| l == line);
    for line in [
        "tokenwarden_http_requests_total{method=\"GET\",route=\"/v1/whoami\",status=\"401\"} 2",
        "tokenwarden_http_requests_total{method=\"GET\",route=\"/v1/whoami\",status=\"200\"} 1",
        "tokenwarden_http_requests_total{method=\"POST\",route=\"/v1/accounts\",status=\"201\"} 1",
        "tokenwarden_http_requests_total{method=\"POST\",route=\"/v1/vaults\",status=\"201\"} 1",
        "tokenwarden_http_requests_total{method=\"POST\",route=\"/v1/api-keys\",status=\"201\"} 1",
        "tokenwarden_http_requests_total{method=\"DELETE\",route=\"/v1/api-keys/{id}\",status=\"204\"} 1",
    ] {
        assert!(counted(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("# TYPE tokenwarden_http_request_duration_seconds histogram"));
    // Labels are route templates: no concrete id, and never a key.
    assert!(!text.contains(&key_id), "{text}");
    assert!(!text.contains(&vault.admin_key_id), "{text}");
    assert!(!text.contains(&vault.vault_id), "{text}");
    assert!(!text.contains(&vault.admin_key), "{text}");
    assert!(!text.contains("twk_"), "{text}");
}

/// The paths and methods of the contract (docs/openapi.json; docs/api.md, "Calls at a glance").
fn expected_operations() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        ("/v1/accounts", vec!["post"]),
        ("/v1/vaults", vec!["get", "post"]),
        ("/v1/vaults/{vault_id}/api-keys", vec!["post"]),
        ("/v1/api-keys", vec!["get", "post"]),
        ("/v1/api-keys/{id}", vec!["delete"]),
        ("/v1/whoami", vec!["get"]),
        ("/v1/providers", vec!["get", "post"]),
        ("/v1/apps", vec!["get", "post"]),
        ("/v1/apps/{key}", vec!["delete", "patch"]),
        ("/v1/connect-sessions", vec!["post"]),
        ("/v1/connect-sessions/{id}", vec!["get"]),
        ("/v1/oauth/callback/{app_id}", vec!["get"]),
        ("/connect/{link}", vec!["get", "post"]),
        ("/v1/audit", vec!["get"]),
        ("/v1/connections", vec!["get", "post"]),
        ("/v1/connections/{id}", vec!["delete", "get"]),
        (
            "/v1/proxy/{connection_id}/{path}",
            vec!["delete", "get", "patch", "post", "put"],
        ),
        ("/v1/connections/{id}/token", vec!["get"]),
        ("/v1/connections/{id}/refresh", vec!["post"]),
        ("/v1/webhooks", vec!["get", "post"]),
        ("/v1/webhooks/{id}", vec!["delete", "patch"]),
        ("/v1/webhooks/{id}/rotate-secret", vec!["post"]),
        ("/v1/webhooks/{id}/test", vec!["post"]),
        ("/v1/webhooks/{id}/deliveries", vec!["get"]),
        ("/healthz", vec!["get"]),
        ("/readyz", vec!["get"]),
        ("/metrics", vec!["get"]),
    ])
}

#[tokio::test]
async fn openapi_json_is_an_openapi_3_1_document_listing_every_route() {
    let app = spawn_app().await;

    let answer = get(&app, "/openapi.json", Auth::None).await;

    let doc = answer.expect_json(StatusCode::OK);
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(doc["info"]["title"], "tokenwarden");
    let paths = doc["paths"].as_object().unwrap();
    let mut found: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (path, item) in paths {
        let mut methods: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|m| ["get", "post", "put", "patch", "delete"].contains(m))
            .collect();
        methods.sort_unstable();
        found.insert(path.as_str(), methods);
    }
    assert_eq!(found, expected_operations());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["account"]["scheme"], "basic");
}

#[tokio::test]
async fn openapi_json_documents_what_the_server_really_answers() {
    let app = spawn_app().await;

    let doc = get(&app, "/openapi.json", Auth::None)
        .await
        .expect_json(StatusCode::OK);

    // Spot checks against the contract: status codes and required answer fields.
    let op = |path: &str, method: &str| doc["paths"][path][method].clone();
    let statuses = |op: &Value| -> Vec<String> {
        let mut s: Vec<String> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        s.sort();
        s
    };
    assert!(statuses(&op("/v1/accounts", "post")).contains(&"201".to_owned()));
    assert!(statuses(&op("/v1/vaults", "post")).contains(&"201".to_owned()));
    assert!(statuses(&op("/v1/api-keys", "post")).contains(&"201".to_owned()));
    assert!(statuses(&op("/v1/api-keys/{id}", "delete")).contains(&"204".to_owned()));
    for (path, method) in [
        ("/v1/api-keys", "post"),
        ("/v1/api-keys", "get"),
        ("/v1/api-keys/{id}", "delete"),
        ("/v1/whoami", "get"),
    ] {
        assert!(
            statuses(&op(path, method)).contains(&"401".to_owned()),
            "{method} {path} does not document its 401"
        );
    }
    let problem = &doc["components"]["schemas"]["Problem"]["properties"];
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(problem.get(field).is_some(), "Problem lacks {field}");
    }
}
