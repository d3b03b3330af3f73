//! Bad input gets a precise 4xx and changes nothing in the database: sign-ups (a
//! taken email gets 409, no error echoes the password), vaults, and JSON arrays in
//! place of objects.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokenwarden_testing::{TestVault, spawn_app};

use crate::bad_input_support::{INVALID, assert_refused, bad, bad_json, case, transport_cases};
use crate::helpers::{Auth, Body, PASSWORD, assert_problem, call, row_counts};

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
