//! API keys: creation, listing, last use, whoami and concurrent creation.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenwarden_testing::spawn_app;

use crate::helpers::{
    Auth, assert_fields, assert_key_format, assert_recent, create_key, delete, get, post,
    row_counts, secret_of, utc, whoami_status,
};

#[tokio::test]
async fn an_admin_key_creates_a_key_with_roles_scope_and_expiry() {
    let app = spawn_app().await;
    let vault = app.vault("alice@example.com").await;

    let answer = post(
        &app,
        "/v1/api-keys",
        Auth::Bearer(&vault.admin_key),
        &json!({
            "name": "sync worker",
            "roles": ["proxy", "read", "read"],
            "scope": {"apps": ["github", "google"], "connections": ["team-*"]},
            "expires_in": 3600,
        }),
    )
    .await;

    let body = answer.expect_json(StatusCode::CREATED);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
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
    assert_eq!(body["name"], "sync worker");
    assert_eq!(
        body["roles"],
        json!(["read", "proxy"]),
        "canonical order, no duplicates"
    );
    assert_eq!(
        body["scope"],
        json!({"apps": ["github", "google"], "connections": ["team-*"]})
    );
    assert_recent(&body["created_at"], Utc::now());
    assert_eq!(
        (utc(&body["expires_at"]) - utc(&body["created_at"])).num_milliseconds(),
        3_600_000
    );
    let whoami = get(&app, "/v1/whoami", Auth::Bearer(key))
        .await
        .expect_json(StatusCode::OK);
    assert_eq!(
        whoami,
        json!({
            "vault_id": vault.vault_id,
            "key_id": id,
            "roles": ["read", "proxy"],
            "scope": {"apps": ["github", "google"], "connections": ["team-*"]},
        })
    );
}

#[tokio::test]
async fn every_new_key_is_different() {
    let app = spawn_app().await;
    let vault = app.vault("ann@example.com").await;

    let a = create_key(
        &app,
        &vault.admin_key,
        &json!({"name": "a", "roles": ["read"]}),
    )
    .await;
    let b = create_key(
        &app,
        &vault.admin_key,
        &json!({"name": "a", "roles": ["read"]}),
    )
    .await;

    assert_ne!(a["id"], b["id"]);
    assert_ne!(
        secret_of(a["key"].as_str().unwrap()),
        secret_of(b["key"].as_str().unwrap())
    );
}

#[tokio::test]
async fn whoami_answers_for_every_role() {
    let app = spawn_app().await;
    let vault = app.vault("bob@example.com").await;

    for role in ["admin", "connect", "read", "proxy"] {
        let (id, key) = app.key(&vault, &[role]).await;

        let answer = get(&app, "/v1/whoami", Auth::Bearer(&key)).await;

        assert_eq!(
            answer.expect_json(StatusCode::OK),
            json!({"vault_id": vault.vault_id, "key_id": id, "roles": [role], "scope": {}})
        );
    }
}

#[tokio::test]
async fn listing_keys_never_shows_a_key_and_tells_active_expired_and_revoked_apart() {
    let app = spawn_app().await;
    let vault = app.vault("carol@example.com").await;
    let short = create_key(
        &app,
        &vault.admin_key,
        &json!({"name": "short-lived", "roles": ["read"], "expires_in": 60}),
    )
    .await;
    let revoked = create_key(
        &app,
        &vault.admin_key,
        &json!({"name": "revoked", "roles": ["connect"]}),
    )
    .await;
    let scoped = create_key(
        &app,
        &vault.admin_key,
        &json!({"name": "scoped", "roles": ["proxy"], "scope": {"connections": ["user-*"]}}),
    )
    .await;
    let gone = delete(
        &app,
        &format!("/v1/api-keys/{}", revoked["id"].as_str().unwrap()),
        Auth::Bearer(&vault.admin_key),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    app.clock.advance_secs(61);

    let answer = get(&app, "/v1/api-keys", Auth::Bearer(&vault.admin_key)).await;

    let list = answer.expect_json(StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 4, "{list:?}");
    let by_id = |id: &Value| -> Value {
        list.iter()
            .find(|k| k["id"] == *id)
            .unwrap_or_else(|| panic!("{id} not listed"))
            .clone()
    };
    for k in list {
        assert_fields(
            k,
            &[
                "id",
                "name",
                "roles",
                "scope",
                "status",
                "created_at",
                "expires_at",
                "last_used_at",
                "revoked_at",
            ],
        );
    }
    let admin = by_id(&json!(vault.admin_key_id));
    assert_eq!(admin["name"], "admin");
    assert_eq!(admin["roles"], json!(["admin"]));
    assert_eq!(admin["scope"], json!({}));
    assert_eq!(admin["status"], "active");
    assert_eq!(admin["expires_at"], Value::Null);
    assert_eq!(admin["revoked_at"], Value::Null);

    let expired = by_id(&short["id"]);
    assert_eq!(expired["status"], "expired");
    assert_eq!(expired["name"], "short-lived");
    assert_eq!(expired["roles"], json!(["read"]));
    assert_eq!(expired["created_at"], short["created_at"]);
    assert_eq!(expired["expires_at"], short["expires_at"]);
    assert_eq!(expired["last_used_at"], Value::Null);
    assert_eq!(expired["revoked_at"], Value::Null);

    let revoked_row = by_id(&revoked["id"]);
    assert_eq!(revoked_row["status"], "revoked");
    assert_recent(&revoked_row["revoked_at"], Utc::now());

    let scoped_row = by_id(&scoped["id"]);
    assert_eq!(scoped_row["status"], "active");
    assert_eq!(scoped_row["scope"], json!({"connections": ["user-*"]}));
    assert_eq!(scoped_row["roles"], json!(["proxy"]));

    for created in [&short, &revoked, &scoped] {
        let key = created["key"].as_str().unwrap();
        assert!(!answer.text.contains(key));
        assert!(!answer.text.contains(secret_of(key)));
    }
    assert!(!answer.text.contains(&vault.admin_key));
    assert!(!answer.text.contains(secret_of(&vault.admin_key)));
    assert!(!answer.text.contains("twk_"), "{}", answer.text);
}

#[tokio::test]
async fn a_used_key_shows_when_it_was_last_used() {
    let app = spawn_app().await;
    let vault = app.vault("dave@example.com").await;
    let (id, key) = app.key(&vault, &["read"]).await;
    let (unused_id, _) = app.key(&vault, &["read"]).await;
    assert_eq!(whoami_status(&app, &key).await, StatusCode::OK);

    // The use is recorded off the request path: poll briefly.
    let mut last_used = Value::Null;
    let mut unused_last_used = Value::Null;
    for _ in 0..50 {
        let list = get(&app, "/v1/api-keys", Auth::Bearer(&vault.admin_key))
            .await
            .expect_json(StatusCode::OK);
        let row = |want: &str| {
            list.as_array()
                .unwrap()
                .iter()
                .find(|k| k["id"] == want)
                .unwrap()["last_used_at"]
                .clone()
        };
        last_used = row(&id);
        unused_last_used = row(&unused_id);
        if !last_used.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert_recent(&last_used, Utc::now());
    assert_eq!(unused_last_used, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrently_created_keys_are_all_distinct_and_working() {
    let app = Arc::new(spawn_app().await);
    let vault = app.vault("kim@example.com").await;

    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let app = app.clone();
            let admin = vault.admin_key.clone();
            tokio::spawn(async move {
                create_key(
                    &app,
                    &admin,
                    &json!({"name": format!("k{i}"), "roles": ["read"]}),
                )
                .await
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        created.push(task.await.unwrap());
    }

    let mut ids: Vec<&str> = created.iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 16);
    for c in &created {
        assert_eq!(
            whoami_status(&app, c["key"].as_str().unwrap()).await,
            StatusCode::OK
        );
    }
    assert_eq!(row_counts(&app).await.api_keys, 17);
}
