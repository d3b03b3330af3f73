//! The provider catalog through the API: templated providers refuse missing,
//! unexpected or unsafe params, and `/v1/providers` lists the catalog with its quirks.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokenwarden_testing::{SpawnOptions, spawn_app_with};

use crate::catalog_support::call;

#[tokio::test]
async fn templated_providers_refuse_missing_unexpected_or_unsafe_params() {
    let app = spawn_app_with(SpawnOptions::default()).await;
    let vault = app.vault("params@example.com").await;
    let (status, _) = call(
        &app,
        Method::POST,
        "/v1/apps",
        &vault.admin_key,
        Some(json!({"key": "z", "provider": "zendesk", "client_id": "c", "client_secret": "s", "scopes": []})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    for (params, detail) in [
        (json!({}), "params.subdomain is required by this provider"),
        (
            json!({"subdomain": "acme", "tenant": "x"}),
            "params.tenant is not used by this provider",
        ),
        (
            json!({"subdomain": "evil.com/"}),
            "params.subdomain must be one DNS label",
        ),
        (
            json!({"subdomain": "a@evil"}),
            "params.subdomain must be one DNS label",
        ),
    ] {
        let (status, body) = call(
            &app,
            Method::POST,
            "/v1/connect-sessions",
            &vault.admin_key,
            Some(json!({"app": "z", "params": params})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params}: {body}");
        assert_eq!(body["code"], "invalid_request");
        assert!(
            body["detail"].as_str().unwrap().starts_with(detail),
            "{body}"
        );
    }
    let (status, body) = call(
        &app,
        Method::POST,
        "/v1/connect-sessions",
        &vault.admin_key,
        Some(json!({"app": "z", "params": {"subdomain": "acme"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["authorization_url"]
            .as_str()
            .unwrap()
            .starts_with("https://acme.zendesk.com/oauth/authorizations/new?"),
        "{body}"
    );
}

#[tokio::test]
async fn providers_endpoint_lists_the_catalog_with_its_quirks() {
    let app = spawn_app_with(SpawnOptions::default()).await;
    let vault = app.vault("list@example.com").await;
    let (status, list) = call(&app, Method::GET, "/v1/providers", &vault.admin_key, None).await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert!(list.len() >= 30, "{}", list.len());
    let find = |k: &str| list.iter().find(|p| p["key"] == k).unwrap().clone();
    let xero = find("xero");
    assert_eq!(xero["refresh_rotates"], "always");
    assert_eq!(xero["refresh_grace_period_secs"], 1800);
    assert_eq!(xero["builtin"], true);
    assert_eq!(
        find("microsoft-tenant")["params"],
        json!({"tenant": "domain"})
    );
    assert_eq!(find("quickbooks")["redirect_extras"], json!(["realmId"]));
    assert_eq!(find("microsoft")["refresh_requires_scopes"], true);
    assert!(
        find("github")["docs"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );
}
