//! Bad input gets a precise 4xx and changes nothing in the database.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_testing::{TestApp, TestVault, spawn_app};

use crate::helpers::{Auth, Body, PASSWORD, PROBLEM_JSON, assert_problem, call, row_counts};

const INVALID: &str = "invalid_request";
const NOT_JSON_CT: &str = "the body must be JSON (Content-Type: application/json)";
const TOO_LARGE: &str = "the body must be at most 65536 bytes";

/// One refused request: what it sends and exactly what it must get.
#[derive(Debug)]
struct Case {
    what: &'static str,
    body: Body,
    status: StatusCode,
    code: &'static str,
    detail: String,
}

fn bad(what: &'static str, body: Body, detail: &str) -> Case {
    Case {
        what,
        body,
        status: StatusCode::BAD_REQUEST,
        code: INVALID,
        detail: detail.to_owned(),
    }
}

fn bad_json(what: &'static str, body: Value, detail: &str) -> Case {
    bad(what, Body::json(&body), detail)
}

fn case(
    what: &'static str,
    body: Body,
    status: StatusCode,
    code: &'static str,
    detail: &str,
) -> Case {
    Case {
        what,
        body,
        status,
        code,
        detail: detail.to_owned(),
    }
}

/// Sends every case and checks its answer and that no row changed; reports every
/// mismatch at once.
async fn assert_refused(app: &TestApp, path: &str, auth: Auth<'_>, cases: Vec<Case>) {
    let mut mismatches = Vec::new();
    for c in cases {
        let before = row_counts(app).await;

        let answer = call(app, Method::POST, path, auth, Some(c.body)).await;

        let expected = json!({
            "type": format!("urn:tokenwarden:problem:{}", c.code),
            "title": c.status.canonical_reason().unwrap(),
            "status": c.status.as_u16(),
            "detail": c.detail,
            "code": c.code,
        });
        let body: Option<Value> = serde_json::from_str(&answer.text).ok();
        if answer.status != c.status
            || answer.content_type() != Some(PROBLEM_JSON)
            || body.as_ref() != Some(&expected)
        {
            mismatches.push(format!(
                "{}: got {} {:?} {}",
                c.what,
                answer.status,
                answer.content_type(),
                answer.text
            ));
        }
        if row_counts(app).await != before {
            mismatches.push(format!("{} changed the database", c.what));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

/// The content-type and size cases every JSON route shares.
fn transport_cases(valid: &Value) -> Vec<Case> {
    let valid = valid.to_string();
    let mut oversized = valid.clone();
    oversized.insert_str(1, &format!("\"padding\": \"{}\", ", "x".repeat(70 * 1024)));
    vec![
        case(
            "text/plain",
            Body::raw("text/plain", valid.clone()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            NOT_JSON_CT,
        ),
        case(
            "a form",
            Body::raw("application/x-www-form-urlencoded", "name=x"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            NOT_JSON_CT,
        ),
        case(
            "no content type",
            Body::untyped(valid.clone()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            NOT_JSON_CT,
        ),
        case(
            "a body over 64 KiB",
            Body::raw("application/json", oversized),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            TOO_LARGE,
        ),
        bad(
            "an empty body",
            Body::raw("application/json", ""),
            "the body is not valid JSON (line 1, column 0)",
        ),
        bad(
            "trailing characters",
            Body::raw("application/json", format!("{valid} {{}}")),
            "the body has trailing characters after the JSON value",
        ),
    ]
}

#[tokio::test]
async fn bad_signups_get_a_precise_400_and_create_nothing() {
    let app = spawn_app().await;
    let pw = PASSWORD;
    let long_password = "p".repeat(1025);

    let mut cases = vec![
        bad(
            "malformed JSON",
            Body::raw(
                "application/json",
                r#"{"email": "new@example.com", "password": "#,
            ),
            "the body is not valid JSON (line 1, column 41)",
        ),
        bad(
            "non-UTF-8 bytes",
            Body::raw(
                "application/json",
                [
                    &br#"{"email": "n"#[..],
                    &[0xff, 0xfe],
                    &br#"@example.com", "password": "correct horse battery staple"}"#[..],
                ]
                .concat(),
            ),
            "the body is not valid JSON (line 1, column 13)",
        ),
        bad_json(
            "a string instead of an object",
            json!("new@example.com"),
            "invalid type, expected struct CreateAccount",
        ),
        bad_json(
            "email as a number",
            json!({"email": 42, "password": pw}),
            "email: invalid type, expected a string",
        ),
        bad_json(
            "email as null",
            json!({"email": null, "password": pw}),
            "email: invalid type, expected a string",
        ),
        bad_json(
            "missing password",
            json!({"email": "new@example.com"}),
            "missing field `password`",
        ),
        bad_json(
            "missing email",
            json!({"password": pw}),
            "missing field `email`",
        ),
        bad_json(
            "an unknown field",
            json!({"email": "new@example.com", "password": pw, "admin": true}),
            "admin: unknown field `admin`, expected `email` or `password`",
        ),
        bad_json(
            "an email without @",
            json!({"email": "new.example.com", "password": pw}),
            "email: email must contain @",
        ),
        bad_json(
            "an email with two @",
            json!({"email": "a@b@example.com", "password": pw}),
            "email: email must have one @ between a local part and a domain",
        ),
        bad_json(
            "an empty email",
            json!({"email": "", "password": pw}),
            "email: email must not be empty",
        ),
        bad_json(
            "an email with a control character",
            json!({"email": "new\u{7}@example.com", "password": pw}),
            "email: email must not contain spaces or control characters",
        ),
        bad_json(
            "a short password",
            json!({"email": "new@example.com", "password": "s3cr3t!"}),
            "password: password must be at least 8 characters",
        ),
        bad_json(
            "a huge password",
            json!({"email": "new@example.com", "password": long_password}),
            "password: password must be at most 1024 bytes",
        ),
    ];
    cases.extend(transport_cases(
        &json!({"email": "new@example.com", "password": pw}),
    ));

    assert_refused(&app, "/v1/accounts", Auth::None, cases).await;
    assert_eq!(row_counts(&app).await.accounts, 0);
}

#[tokio::test]
async fn an_error_never_echoes_the_password() {
    let app = spawn_app().await;

    for body in [
        json!({"email": "new@example.com", "password": 12345678901_u64}),
        json!({"email": "new@example.com", "password": ["hunter2hunter2"]}),
        json!({"email": "new@example.com", "password": {"hunter2hunter2": 1}}),
        json!({"email": "hunter2hunter2", "password": "hunter2hunter2"}),
        json!({"email": "new@example.com", "password": "hunter2", "extra": 1}),
        json!({"email": "new@example.com", "password": "hunter2"}),
    ] {
        let answer = call(
            &app,
            Method::POST,
            "/v1/accounts",
            Auth::None,
            Some(Body::json(&body)),
        )
        .await;

        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        assert!(!answer.text.contains("12345678901"), "{}", answer.text);
        assert!(!answer.text.contains("hunter2"), "{}", answer.text);
    }
    let answer = call(
        &app,
        Method::POST,
        "/v1/accounts",
        Auth::None,
        Some(Body::json(
            &json!({"email": "new@example.com", "password": 12345678901_u64}),
        )),
    )
    .await;
    assert_problem(
        &answer,
        StatusCode::BAD_REQUEST,
        INVALID,
        "password: invalid type, expected a string",
    );
    assert_eq!(row_counts(&app).await.accounts, 0);
}

#[tokio::test]
async fn a_taken_email_gets_409_conflict_whatever_its_case() {
    let app = spawn_app().await;
    app.create_account("taken@example.com", PASSWORD).await;

    let cases = [
        "taken@example.com",
        "TAKEN@example.com",
        " Taken@Example.Com ",
    ]
    .into_iter()
    .map(|email| {
        case(
            "a taken email",
            Body::json(&json!({"email": email, "password": "another password"})),
            StatusCode::CONFLICT,
            "conflict",
            "an account with this email already exists",
        )
    })
    .collect();

    assert_refused(&app, "/v1/accounts", Auth::None, cases).await;
    assert_eq!(row_counts(&app).await.accounts, 1);
}

#[tokio::test]
async fn bad_vault_bodies_get_a_precise_400_and_create_nothing() {
    let app = spawn_app().await;
    app.create_account("alice@example.com", PASSWORD).await;

    let mut cases = vec![
        bad_json(
            "an empty name",
            json!({"name": ""}),
            "name: name must not be empty",
        ),
        bad_json(
            "a blank name",
            json!({"name": "   "}),
            "name: name must not be empty",
        ),
        bad_json(
            "a 10 kB name",
            json!({"name": "n".repeat(10 * 1024)}),
            "name: name must be at most 100 characters",
        ),
        bad_json(
            "a name with a control character",
            json!({"name": "team\u{7}"}),
            "name: name must not contain control characters",
        ),
        bad_json(
            "a name with a newline",
            json!({"name": "te\nam"}),
            "name: name must not contain control characters",
        ),
        bad_json(
            "a numeric name",
            json!({"name": 7}),
            "name: invalid type, expected a string",
        ),
        bad_json("no name", json!({}), "missing field `name`"),
        bad_json(
            "managed as a string",
            json!({"name": "team", "managed": "yes"}),
            "managed: invalid type, expected a boolean",
        ),
        bad_json(
            "an unknown field",
            json!({"name": "team", "owner": "bob"}),
            "owner: unknown field `owner`, expected `name` or `managed`",
        ),
        bad(
            "malformed JSON",
            Body::raw("application/json", "{\"name\": team}"),
            "the body is not valid JSON (line 1, column 11)",
        ),
    ];
    cases.extend(transport_cases(&json!({"name": "team"})));

    assert_refused(
        &app,
        "/v1/vaults",
        Auth::Basic("alice@example.com", PASSWORD),
        cases,
    )
    .await;
    assert_eq!(row_counts(&app).await.vaults, 0);
}

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

// serde would read a derived struct from a JSON array, field by field; the contract
// says object.
#[tokio::test]
async fn a_json_array_in_place_of_an_object_is_refused_and_creates_nothing() {
    let app = spawn_app().await;
    let vault: TestVault = app.vault("erin@example.com").await;

    assert_refused(
        &app,
        "/v1/accounts",
        Auth::None,
        vec![bad_json(
            "an account as an array",
            json!(["array@example.com", PASSWORD]),
            "invalid type, expected struct CreateAccount",
        )],
    )
    .await;
    assert_refused(
        &app,
        "/v1/api-keys",
        Auth::Bearer(&vault.admin_key),
        vec![
            bad_json(
                "a key as an array",
                json!(["k", ["read"]]),
                "invalid type, expected struct CreateApiKey",
            ),
            bad_json(
                "a scope as an array",
                json!({"name": "k", "roles": ["read"], "scope": [["github"]]}),
                "scope: invalid type, expected struct KeyScope",
            ),
        ],
    )
    .await;
}
