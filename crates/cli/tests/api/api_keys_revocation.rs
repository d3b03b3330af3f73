//! API keys stop working: deleting a key (also twice, or an unknown one), a key
//! revoking itself, and expiry.

use reqwest::StatusCode;
use serde_json::json;
use tokenwarden_testing::spawn_app;

use crate::helpers::{
    Auth, assert_key_unauthorized, assert_problem, create_key, delete, get, row_counts,
    whoami_status,
};

#[tokio::test]
async fn deleting_a_key_answers_204_and_the_key_gets_401_from_then_on() {
    let app = spawn_app().await;
    let vault = app.vault("erin@example.com").await;
    let (id, key) = app.key(&vault, &["read"]).await;
    let (_, other) = app.key(&vault, &["read"]).await;
    assert_eq!(whoami_status(&app, &key).await, StatusCode::OK);

    let answer = delete(
        &app,
        &format!("/v1/api-keys/{id}"),
        Auth::Bearer(&vault.admin_key),
    )
    .await;

    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(answer.text, "");
    assert_key_unauthorized(&get(&app, "/v1/whoami", Auth::Bearer(&key)).await);
    assert_eq!(whoami_status(&app, &other).await, StatusCode::OK);
    assert_eq!(whoami_status(&app, &vault.admin_key).await, StatusCode::OK);
    let wiped = app
        .database
        .query_i64(
            "SELECT count(*) FROM api_keys WHERE id = $1 AND slot IS NULL AND lookup_hash IS NULL",
            &[&id],
        )
        .await;
    assert!(wiped == Some(1), "a revoked key keeps its slot or hash");
}

#[tokio::test]
async fn deleting_a_key_twice_or_an_unknown_key_gets_404() {
    let app = spawn_app().await;
    let vault = app.vault("frank@example.com").await;
    let (id, _) = app.key(&vault, &["read"]).await;
    let first = delete(
        &app,
        &format!("/v1/api-keys/{id}"),
        Auth::Bearer(&vault.admin_key),
    )
    .await;
    assert_eq!(first.status, StatusCode::NO_CONTENT);
    let before = row_counts(&app).await;

    for path in [
        format!("/v1/api-keys/{id}"),
        "/v1/api-keys/0000000000000000".to_owned(),
        "/v1/api-keys/not-a-key-id".to_owned(),
        "/v1/api-keys/AAAAAAAAAAAAAAAA".to_owned(),
    ] {
        let answer = delete(&app, &path, Auth::Bearer(&vault.admin_key)).await;

        assert_problem(
            &answer,
            StatusCode::NOT_FOUND,
            "not_found",
            "api key not found",
        );
    }
    assert_eq!(row_counts(&app).await, before);
}

#[tokio::test]
async fn an_admin_key_can_revoke_itself() {
    let app = spawn_app().await;
    let vault = app.vault("gail@example.com").await;

    let answer = delete(
        &app,
        &format!("/v1/api-keys/{}", vault.admin_key_id),
        Auth::Bearer(&vault.admin_key),
    )
    .await;

    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_key_unauthorized(&get(&app, "/v1/api-keys", Auth::Bearer(&vault.admin_key)).await);
}

#[tokio::test]
async fn a_key_stops_working_the_moment_it_expires() {
    let app = spawn_app().await;
    let vault = app.vault("jack@example.com").await;
    let created = create_key(
        &app,
        &vault.admin_key,
        &json!({"name": "minute", "roles": ["read"], "expires_in": 60}),
    )
    .await;
    let key = created["key"].as_str().unwrap();
    app.clock.advance_secs(55);
    assert_eq!(whoami_status(&app, key).await, StatusCode::OK);

    app.clock.advance_secs(6);

    assert_key_unauthorized(&get(&app, "/v1/whoami", Auth::Bearer(key)).await);
    assert_eq!(whoami_status(&app, &vault.admin_key).await, StatusCode::OK);
}
