//! Who may manage API keys: only admin keys, never wider than their own scope, and
//! never another vault's keys.

use reqwest::StatusCode;
use serde_json::json;
use tokenwarden_testing::spawn_app;

use crate::helpers::{
    Auth, assert_forbidden, assert_problem, create_key, delete, get, post, row_counts,
    whoami_status,
};

const LACKS_ADMIN: &str = "this API key lacks the admin role";
const WIDER_SCOPE: &str = "a key cannot create a key with a wider scope than its own";

#[tokio::test]
async fn keys_without_the_admin_role_get_403_on_key_management() {
    let app = spawn_app().await;
    let vault = app.vault("gina@example.com").await;
    let (victim_id, victim) = app.key(&vault, &["read"]).await;
    let before = row_counts(&app).await;

    for roles in [
        vec!["read"],
        vec!["connect"],
        vec!["proxy"],
        vec!["connect", "read", "proxy"],
    ] {
        let (_, key) = app.key(&vault, &roles).await;
        let before = row_counts(&app).await;

        let create = post(
            &app,
            "/v1/api-keys",
            Auth::Bearer(&key),
            &json!({"name": "escalate", "roles": ["read"]}),
        )
        .await;
        let list = get(&app, "/v1/api-keys", Auth::Bearer(&key)).await;
        let revoke = delete(
            &app,
            &format!("/v1/api-keys/{victim_id}"),
            Auth::Bearer(&key),
        )
        .await;

        assert_forbidden(&create, LACKS_ADMIN);
        assert_forbidden(&list, LACKS_ADMIN);
        assert_forbidden(&revoke, LACKS_ADMIN);
        assert_eq!(
            row_counts(&app).await,
            before,
            "{roles:?} changed something"
        );
    }
    assert_eq!(
        row_counts(&app).await.live_api_keys,
        before.live_api_keys + 4
    );
    assert_eq!(whoami_status(&app, &victim).await, StatusCode::OK);
}

#[tokio::test]
async fn a_scoped_admin_key_cannot_create_a_wider_key() {
    let app = spawn_app().await;
    let vault = app.vault("hank@example.com").await;
    let scoped = create_key(
        &app,
        &vault.admin_key,
        &json!({"name": "git admin", "roles": ["admin"], "scope": {"apps": ["git*"]}}),
    )
    .await;
    let scoped_key = scoped["key"].as_str().unwrap();
    let before = row_counts(&app).await;

    for scope in [
        None,
        Some(json!({"apps": ["*"]})),
        Some(json!({"apps": ["g*"]})),
        Some(json!({"apps": ["github", "slack"]})),
        Some(json!({"connections": ["team-*"]})),
    ] {
        let mut body = json!({"name": "wider", "roles": ["read"]});
        if let Some(scope) = &scope {
            body["scope"] = scope.clone();
        }

        let answer = post(&app, "/v1/api-keys", Auth::Bearer(scoped_key), &body).await;

        assert_forbidden(&answer, WIDER_SCOPE);
    }
    assert_eq!(row_counts(&app).await, before);

    let narrower = post(
        &app,
        "/v1/api-keys",
        Auth::Bearer(scoped_key),
        &json!({"name": "github reader", "roles": ["read"], "scope": {"apps": ["github"]}}),
    )
    .await;
    let body = narrower.expect_json(StatusCode::CREATED);
    assert_eq!(body["scope"], json!({"apps": ["github"]}));
    let same = post(
        &app,
        "/v1/api-keys",
        Auth::Bearer(scoped_key),
        &json!({"name": "git sub-admin", "roles": ["admin"], "scope": {"apps": ["git*"], "connections": ["team-*"]}}),
    )
    .await;
    same.expect_json(StatusCode::CREATED);
}

#[tokio::test]
async fn an_admin_of_another_vault_cannot_see_or_delete_this_vaults_keys() {
    let app = spawn_app().await;
    let ours = app.vault("ivy@example.com").await;
    let theirs = app.vault("mallory@example.com").await;
    let (id, key) = app.key(&ours, &["read"]).await;

    let revoke = delete(
        &app,
        &format!("/v1/api-keys/{id}"),
        Auth::Bearer(&theirs.admin_key),
    )
    .await;
    let list = get(&app, "/v1/api-keys", Auth::Bearer(&theirs.admin_key)).await;

    assert_problem(
        &revoke,
        StatusCode::NOT_FOUND,
        "not_found",
        "api key not found",
    );
    let list = list.expect_json(StatusCode::OK);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![theirs.admin_key_id.as_str()]);
    assert_eq!(whoami_status(&app, &key).await, StatusCode::OK);
}
