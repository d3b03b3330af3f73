//! Sign-up, password login and failed-login limiting.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;
use tokenwarden_testing::{SpawnOptions, spawn_app, spawn_app_with};

use crate::helpers::{
    Auth, PASSWORD, assert_basic_unauthorized, assert_id, assert_problem, get, post, row_counts,
};

const WINDOW_SECS: i64 = 15 * 60;

#[tokio::test]
async fn signing_up_answers_201_with_the_id_and_the_lower_cased_email() {
    let app = spawn_app().await;

    let answer = post(
        &app,
        "/v1/accounts",
        Auth::None,
        &json!({"email": "  Alice@Example.COM ", "password": PASSWORD}),
    )
    .await;

    let body = answer.expect_json(StatusCode::CREATED);
    let id = assert_id(&body["id"], "acc");
    assert_eq!(body, json!({"id": id, "email": "alice@example.com"}));
    assert_eq!(row_counts(&app).await.accounts, 1);
}

#[tokio::test]
async fn an_account_signs_in_with_its_email_in_any_case() {
    let app = spawn_app().await;
    app.create_account("bob@example.com", PASSWORD).await;

    let answer = get(&app, "/v1/vaults", Auth::Basic("BOB@Example.com", PASSWORD)).await;

    assert_eq!(answer.expect_json(StatusCode::OK), json!([]));
}

#[tokio::test]
async fn signup_closed_refuses_new_accounts_with_403_signup_closed() {
    let app = spawn_app_with(SpawnOptions {
        signup_closed: true,
        ..Default::default()
    })
    .await;

    let answer = post(
        &app,
        "/v1/accounts",
        Auth::None,
        &json!({"email": "carol@example.com", "password": PASSWORD}),
    )
    .await;

    assert_problem(
        &answer,
        StatusCode::FORBIDDEN,
        "signup_closed",
        "account creation is closed on this server",
    );
    assert_eq!(row_counts(&app).await.accounts, 0);
}

#[tokio::test]
async fn a_wrong_password_gets_401_with_a_basic_challenge() {
    let app = spawn_app().await;
    app.create_account("dave@example.com", PASSWORD).await;

    let answer = get(
        &app,
        "/v1/vaults",
        Auth::Basic("dave@example.com", "not the password"),
    )
    .await;

    assert_basic_unauthorized(&answer);
}

#[tokio::test]
async fn missing_or_malformed_basic_credentials_get_the_same_401() {
    let app = spawn_app().await;
    let vault = app.vault("erin@example.com").await;
    let no_colon = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "erin@example.com"
        )
    );

    for auth in [
        Auth::None,
        Auth::Bearer(&vault.admin_key),
        Auth::Raw("Basic"),
        Auth::Raw("Basic !!!not-base64!!!"),
        Auth::Raw(&no_colon),
        Auth::Basic("nobody@example.com", PASSWORD),
        Auth::Basic("not an email", PASSWORD),
        Auth::Basic("erin@example.com", ""),
    ] {
        let answer = get(&app, "/v1/vaults", auth).await;

        assert_basic_unauthorized(&answer);
    }
}

#[tokio::test]
async fn five_wrong_passwords_lock_the_account_even_against_the_right_password() {
    let app = spawn_app().await;
    app.create_account("frank@example.com", PASSWORD).await;
    for _ in 0..5 {
        let answer = get(
            &app,
            "/v1/vaults",
            Auth::Basic("frank@example.com", "wrong!wrong!"),
        )
        .await;
        assert_basic_unauthorized(&answer);
    }

    let answer = get(
        &app,
        "/v1/vaults",
        Auth::Basic("frank@example.com", PASSWORD),
    )
    .await;

    assert_problem(
        &answer,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many failed logins for this account; try again later",
    );
    let retry_after: i64 = answer
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(
        (WINDOW_SECS - 30..=WINDOW_SECS).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_eq!(answer.header("www-authenticate"), None);
}

#[tokio::test]
async fn an_unknown_email_is_limited_like_a_known_one() {
    let app = spawn_app().await;
    for _ in 0..5 {
        let answer = get(
            &app,
            "/v1/vaults",
            Auth::Basic("ghost@example.com", PASSWORD),
        )
        .await;
        assert_basic_unauthorized(&answer);
    }

    let answer = get(
        &app,
        "/v1/vaults",
        Auth::Basic("Ghost@Example.com", PASSWORD),
    )
    .await;

    assert_problem(
        &answer,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many failed logins for this account; try again later",
    );
    let retry_after: i64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=WINDOW_SECS).contains(&retry_after), "{retry_after}");
}

#[tokio::test]
async fn the_right_password_works_again_once_the_window_has_passed() {
    let app = spawn_app().await;
    app.create_account("gina@example.com", PASSWORD).await;
    for _ in 0..5 {
        get(
            &app,
            "/v1/vaults",
            Auth::Basic("gina@example.com", "wrong!wrong!"),
        )
        .await;
    }
    app.clock.advance_secs(WINDOW_SECS - 60);
    let still_locked = get(
        &app,
        "/v1/vaults",
        Auth::Basic("gina@example.com", PASSWORD),
    )
    .await;
    assert_eq!(still_locked.status, StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance_secs(61);

    let answer = get(
        &app,
        "/v1/vaults",
        Auth::Basic("gina@example.com", PASSWORD),
    )
    .await;

    assert_eq!(answer.expect_json(StatusCode::OK), json!([]));
}

#[tokio::test]
async fn locking_one_account_leaves_another_alone() {
    let app = spawn_app().await;
    app.create_account("hank@example.com", PASSWORD).await;
    app.create_account("ivy@example.com", PASSWORD).await;
    for _ in 0..5 {
        get(
            &app,
            "/v1/vaults",
            Auth::Basic("hank@example.com", "wrong!wrong!"),
        )
        .await;
    }

    let answer = get(&app, "/v1/vaults", Auth::Basic("ivy@example.com", PASSWORD)).await;

    assert_eq!(answer.expect_json(StatusCode::OK), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_signups_with_one_email_create_exactly_one_account() {
    let app = Arc::new(spawn_app().await);
    let emails = [
        "jane@example.com",
        "JANE@example.com",
        "jane@EXAMPLE.com",
        "Jane@Example.Com",
    ];

    let tasks: Vec<_> = emails
        .iter()
        .map(|email| {
            let app = app.clone();
            let body = json!({"email": email, "password": PASSWORD});
            tokio::spawn(async move { post(&app, "/v1/accounts", Auth::None, &body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }

    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{answers:?}");
    for answer in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
        assert_problem(
            answer,
            StatusCode::CONFLICT,
            "conflict",
            "an account with this email already exists",
        );
    }
    assert_eq!(row_counts(&app).await.accounts, 1);
}
