//! Vaults: creation with the first admin key, listing, member-issued keys, managed mode.

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;
use tokenwarden_testing::{SpawnOptions, spawn_app, spawn_app_with};

use crate::helpers::{
    Auth, PASSWORD, assert_basic_unauthorized, assert_fields, assert_id, assert_key_format,
    assert_problem, assert_recent, get, post, row_counts, whoami_status,
};

#[tokio::test]
async fn creating_a_vault_answers_201_with_its_first_admin_key_shown_once() {
    let app = spawn_app().await;
    app.create_account("alice@example.com", PASSWORD).await;

    let answer = post(
        &app,
        "/v1/vaults",
        Auth::Basic("alice@example.com", PASSWORD),
        &json!({"name": "  Platform team  "}),
    )
    .await;

    let body = answer.expect_json(StatusCode::CREATED);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_fields(&body, &["id", "name", "managed", "created_at", "api_key"]);
    assert_fields(&body["api_key"], &["id", "key", "roles"]);
    let vault_id = assert_id(&body["id"], "vlt");
    assert_eq!(body["name"], "Platform team");
    assert_eq!(body["managed"], false);
    assert_recent(&body["created_at"], Utc::now());
    assert_eq!(body["api_key"]["roles"], json!(["admin"]));
    let key_id = body["api_key"]["id"].as_str().unwrap();
    let key = body["api_key"]["key"].as_str().unwrap();
    assert_key_format(key, key_id);
    let whoami = get(&app, "/v1/whoami", Auth::Bearer(key))
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(
        whoami,
        json!({"vault_id": vault_id, "key_id": key_id, "roles": ["admin"], "scope": {}})
    );
}

#[tokio::test]
async fn listing_vaults_shows_exactly_the_vaults_of_the_account() {
    let app = spawn_app().await;
    let mine = app.vault("bob@example.com").await;
    app.vault("carol@example.com").await;
    let second = post(
        &app,
        "/v1/vaults",
        Auth::Basic("bob@example.com", PASSWORD),
        &json!({"name": "second"}),
    )
    .await
    .expect_json(StatusCode::CREATED);

    let answer = get(&app, "/v1/vaults", Auth::Basic("bob@example.com", PASSWORD)).await;

    let mut list = answer
        .expect_json(StatusCode::OK)
        .as_array()
        .unwrap()
        .clone();
    list.sort_by_key(|v| v["name"].as_str().unwrap().to_owned());
    assert_eq!(list.len(), 2, "{list:?}");
    assert_fields(&list[0], &["id", "name", "managed", "created_at"]);
    assert_eq!(list[0]["id"], second["id"]);
    assert_eq!(list[0]["name"], "second");
    assert_eq!(list[0]["managed"], false);
    assert_eq!(list[0]["created_at"], second["created_at"]);
    assert_eq!(list[1]["id"], mine.vault_id.as_str());
    assert_eq!(list[1]["name"], "team");
    assert_eq!(list[1]["managed"], false);
    assert_recent(&list[1]["created_at"], Utc::now());
}

#[tokio::test]
async fn a_member_issues_a_key_for_their_vault_with_their_password() {
    let app = spawn_app().await;
    let vault = app.vault("dave@example.com").await;

    let answer = post(
        &app,
        &format!("/v1/vaults/{}/api-keys", vault.vault_id),
        Auth::Basic("dave@example.com", PASSWORD),
        &json!({"name": "ci", "roles": ["read"], "scope": {"apps": ["github"]}}),
    )
    .await;

    let body = answer.expect_json(StatusCode::CREATED);
    assert_fields(
        &body,
        &[
            "id",
            "key",
            "name",
            "roles",
            "scope",
            "created_at",
            "expires_at",
        ],
    );
    let id = body["id"].as_str().unwrap();
    let key = body["key"].as_str().unwrap();
    assert_key_format(key, id);
    assert_eq!(body["name"], "ci");
    assert_eq!(body["roles"], json!(["read"]));
    assert_eq!(body["scope"], json!({"apps": ["github"]}));
    assert_eq!(body["expires_at"], json!(null));
    assert_recent(&body["created_at"], Utc::now());
    let whoami = get(&app, "/v1/whoami", Auth::Bearer(key))
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(
        whoami,
        json!({"vault_id": vault.vault_id, "key_id": id, "roles": ["read"], "scope": {"apps": ["github"]}})
    );
}

#[tokio::test]
async fn an_account_cannot_issue_keys_for_a_vault_it_is_not_a_member_of() {
    let app = spawn_app().await;
    let victim = app.vault("erin@example.com").await;
    app.create_account("mallory@example.com", PASSWORD).await;
    let before = row_counts(&app).await;

    let answer = post(
        &app,
        &format!("/v1/vaults/{}/api-keys", victim.vault_id),
        Auth::Basic("mallory@example.com", PASSWORD),
        &json!({"name": "sneaky", "roles": ["admin"]}),
    )
    .await;

    assert_problem(
        &answer,
        StatusCode::NOT_FOUND,
        "not_found",
        "vault not found",
    );
    assert_eq!(row_counts(&app).await, before);
    let theirs = get(
        &app,
        "/v1/vaults",
        Auth::Basic("mallory@example.com", PASSWORD),
    )
    .await;
    assert_eq!(theirs.expect_json(StatusCode::OK), json!([]));
}

#[tokio::test]
async fn an_unknown_or_malformed_vault_id_gets_404() {
    let app = spawn_app().await;
    app.vault("frank@example.com").await;
    let before = row_counts(&app).await;

    for vault_id in [
        "vlt_00000000000000000000",
        "vlt_short",
        "acc_00000000000000000000",
        "VLT_00000000000000000000",
        "not-a-vault",
    ] {
        let answer = post(
            &app,
            &format!("/v1/vaults/{vault_id}/api-keys"),
            Auth::Basic("frank@example.com", PASSWORD),
            &json!({"name": "k", "roles": ["read"]}),
        )
        .await;

        assert_problem(
            &answer,
            StatusCode::NOT_FOUND,
            "not_found",
            "vault not found",
        );
    }
    assert_eq!(row_counts(&app).await, before);
}

#[tokio::test]
async fn a_wrong_password_cannot_issue_a_key_for_a_vault() {
    let app = spawn_app().await;
    let vault = app.vault("gina@example.com").await;
    let before = row_counts(&app).await;

    let answer = post(
        &app,
        &format!("/v1/vaults/{}/api-keys", vault.vault_id),
        Auth::Basic("gina@example.com", "not the password"),
        &json!({"name": "k", "roles": ["read"]}),
    )
    .await;

    assert_basic_unauthorized(&answer);
    let after = row_counts(&app).await;
    assert_eq!(after.api_keys, before.api_keys);
    assert_eq!(after.audit_log, before.audit_log + 1, "the failed login");
}

#[tokio::test]
async fn a_managed_vault_needs_a_master_key_on_the_server() {
    let app = spawn_app().await;
    app.create_account("hank@example.com", PASSWORD).await;
    let before = row_counts(&app).await;

    let answer = post(
        &app,
        "/v1/vaults",
        Auth::Basic("hank@example.com", PASSWORD),
        &json!({"name": "managed", "managed": true}),
    )
    .await;

    assert_problem(
        &answer,
        StatusCode::BAD_REQUEST,
        "managed_unavailable",
        "managed vaults need the server to be configured with a master key",
    );
    assert_eq!(row_counts(&app).await, before);
}

#[tokio::test]
async fn a_managed_vault_is_created_when_the_server_has_a_master_key() {
    let app = spawn_app_with(SpawnOptions {
        master_key: Some([7; 32]),
        ..Default::default()
    })
    .await;
    app.create_account("ivy@example.com", PASSWORD).await;

    let answer = post(
        &app,
        "/v1/vaults",
        Auth::Basic("ivy@example.com", PASSWORD),
        &json!({"name": "managed", "managed": true}),
    )
    .await;

    let body = answer.expect_json(StatusCode::CREATED);
    assert_eq!(body["managed"], true);
    assert_eq!(body["api_key"]["roles"], json!(["admin"]));
    let key = body["api_key"]["key"].as_str().unwrap();
    assert_eq!(whoami_status(&app, key).await, StatusCode::OK);
    let list = get(&app, "/v1/vaults", Auth::Basic("ivy@example.com", PASSWORD))
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(list[0]["managed"], true);
    let has_master_slot = app
        .database
        .query_i64(
            "SELECT count(*) FROM vaults WHERE id = $1 AND master_slot IS NOT NULL",
            &[body["id"].as_str().unwrap()],
        )
        .await
        == Some(1);
    assert!(has_master_slot);
}

#[tokio::test]
async fn an_unmanaged_vault_has_no_master_slot_even_when_the_server_has_a_master_key() {
    let app = spawn_app_with(SpawnOptions {
        master_key: Some([8; 32]),
        ..Default::default()
    })
    .await;
    let vault = app.vault("jack@example.com").await;

    let has_master_slot = app
        .database
        .query_i64(
            "SELECT count(*) FROM vaults WHERE id = $1 AND master_slot IS NOT NULL",
            &[&vault.vault_id],
        )
        .await
        == Some(1);

    assert!(!has_master_slot);
}
