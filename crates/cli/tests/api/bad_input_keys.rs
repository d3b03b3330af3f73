//! Bad API-key bodies get a precise 4xx and change nothing in the database, on the
//! key route and the member route alike; the longest allowed values are accepted.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokenwarden_testing::{TestVault, spawn_app};

use crate::bad_input_support::{Case, assert_refused, bad_json, transport_cases};
use crate::helpers::{Auth, Body, PASSWORD, call, row_counts};

/// Bodies of `POST /v1/api-keys` (and of the member route, which takes the same).
fn bad_key_cases() -> Vec<Case> {
    let many: Vec<String> = (0..101).map(|i| format!("app{i}")).collect();
    let mut cases = vec![
        bad_json(
            "an unknown role",
            json!({"name": "k", "roles": ["root"]}),
            "roles[0]: role must be one of admin, connect, read, proxy, refresh",
        ),
        bad_json(
            "a role in upper case",
            json!({"name": "k", "roles": ["read", "ADMIN"]}),
            "roles[1]: role must be one of admin, connect, read, proxy, refresh",
        ),
        bad_json(
            "an empty role list",
            json!({"name": "k", "roles": []}),
            "roles: roles must name at least one role",
        ),
        bad_json(
            "roles as a string",
            json!({"name": "k", "roles": "admin"}),
            "roles: invalid type, expected a sequence",
        ),
        bad_json("no roles", json!({"name": "k"}), "missing field `roles`"),
        bad_json(
            "no name",
            json!({"roles": ["read"]}),
            "missing field `name`",
        ),
        bad_json(
            "an empty name",
            json!({"name": "", "roles": ["read"]}),
            "name: name must not be empty",
        ),
        bad_json(
            "a 10 kB name",
            json!({"name": "n".repeat(10 * 1024), "roles": ["read"]}),
            "name: name must be at most 100 characters",
        ),
        bad_json(
            "a name with a NUL",
            json!({"name": "a\u{0}b", "roles": ["read"]}),
            "name: name must not contain control characters",
        ),
        bad_json(
            "expires_in 0",
            json!({"name": "k", "roles": ["read"], "expires_in": 0}),
            "expires_in must be between 1 and 315360000 seconds",
        ),
        bad_json(
            "expires_in over ten years",
            json!({"name": "k", "roles": ["read"], "expires_in": 315_360_001}),
            "expires_in must be between 1 and 315360000 seconds",
        ),
        bad_json(
            "a negative expires_in",
            json!({"name": "k", "roles": ["read"], "expires_in": -1}),
            "expires_in: invalid value, expected u64",
        ),
        bad_json(
            "expires_in as a string",
            json!({"name": "k", "roles": ["read"], "expires_in": "60"}),
            "expires_in: invalid type, expected u64",
        ),
        bad_json(
            "a fractional expires_in",
            json!({"name": "k", "roles": ["read"], "expires_in": 1.5}),
            "expires_in: invalid type, expected u64",
        ),
        bad_json(
            "an empty app list",
            json!({"name": "k", "roles": ["read"], "scope": {"apps": []}}),
            "scope.apps: a scope list must hold 1 to 100 patterns (omit it for no limit)",
        ),
        bad_json(
            "an empty connection list",
            json!({"name": "k", "roles": ["read"], "scope": {"connections": []}}),
            "scope.connections: a scope list must hold 1 to 100 patterns (omit it for no limit)",
        ),
        bad_json(
            "101 app patterns",
            json!({"name": "k", "roles": ["read"], "scope": {"apps": many}}),
            "scope.apps: a scope list must hold 1 to 100 patterns (omit it for no limit)",
        ),
        bad_json(
            "an empty pattern",
            json!({"name": "k", "roles": ["read"], "scope": {"apps": [""]}}),
            "scope.apps[0]: scope pattern must be 1 to 200 bytes long",
        ),
        bad_json(
            "a pattern with a space",
            json!({"name": "k", "roles": ["read"], "scope": {"apps": ["git hub"]}}),
            "scope.apps[0]: scope pattern must not contain spaces or control characters",
        ),
        bad_json(
            "an unknown scope field",
            json!({"name": "k", "roles": ["read"], "scope": {"users": ["x"]}}),
            "scope.users: unknown field `users`, expected `apps` or `connections`",
        ),
        bad_json(
            "scope as a string",
            json!({"name": "k", "roles": ["read"], "scope": "github"}),
            "scope: invalid type, expected struct KeyScope",
        ),
        bad_json(
            "an unknown field",
            json!({"name": "k", "roles": ["read"], "key": "twk_mine"}),
            "key: unknown field `key`, expected one of `name`, `roles`, `scope`, `expires_in`",
        ),
    ];
    cases.extend(transport_cases(&json!({"name": "k", "roles": ["read"]})));
    cases
}

#[tokio::test]
async fn bad_key_bodies_get_a_precise_400_and_create_nothing() {
    let app = spawn_app().await;
    let vault: TestVault = app.vault("bob@example.com").await;

    assert_refused(
        &app,
        "/v1/api-keys",
        Auth::Bearer(&vault.admin_key),
        bad_key_cases(),
    )
    .await;
    assert_eq!(row_counts(&app).await.api_keys, 1);
}

#[tokio::test]
async fn bad_member_key_bodies_get_a_precise_400_and_create_nothing() {
    let app = spawn_app().await;
    let vault: TestVault = app.vault("carol@example.com").await;
    // Each case costs one password check; a handful shows the route shares the rules.
    let cases: Vec<Case> = bad_key_cases()
        .into_iter()
        .filter(|c| {
            [
                "an unknown role",
                "an empty role list",
                "expires_in 0",
                "an empty app list",
                "an unknown field",
                "text/plain",
                "a body over 64 KiB",
            ]
            .contains(&c.what)
        })
        .collect();
    assert_eq!(cases.len(), 7);

    assert_refused(
        &app,
        &format!("/v1/vaults/{}/api-keys", vault.vault_id),
        Auth::Basic("carol@example.com", PASSWORD),
        cases,
    )
    .await;
    assert_eq!(row_counts(&app).await.api_keys, 1);
}

#[tokio::test]
async fn the_longest_allowed_values_are_accepted() {
    let app = spawn_app().await;
    let vault: TestVault = app.vault("dave@example.com").await;
    let name = "é".repeat(100);

    let answer = call(
        &app,
        Method::POST,
        "/v1/api-keys",
        Auth::Bearer(&vault.admin_key),
        Some(Body::json(&json!({
            "name": name,
            "roles": ["read"],
            "expires_in": 315_360_000,
            "scope": {"apps": vec!["a"; 100]},
        }))),
    )
    .await;

    let body = answer.expect_json(StatusCode::CREATED);
    assert_eq!(body["name"], name.as_str());
    let created = crate::helpers::utc(&body["created_at"]);
    let expires = crate::helpers::utc(&body["expires_at"]);
    assert_eq!((expires - created).num_seconds(), 315_360_000);
}
