//! API keys: creation, listing, revocation, whoami, roles and scopes.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenwarden_testing::spawn_app;

use crate::helpers::{
    Auth, assert_fields, assert_forbidden, assert_key_format, assert_key_unauthorized,
    assert_problem, assert_recent, create_key, delete, get, post, row_counts, secret_of, utc,
    whoami_status,
};

const LACKS_ADMIN: &str = "this API key lacks the admin role";
const WIDER_SCOPE: &str = "a key cannot create a key with a wider scope than its own";

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
