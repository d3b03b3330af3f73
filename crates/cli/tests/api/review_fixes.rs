//! Attacks a reviewer found: an operator editing the database, a scoped key reaching
//! into another app's connection, parallel password guesses.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Auth, assert_problem};
use crate::oauth_support::{authorize, create_app, fetch, oauth_env, report, send};

/// The SQLite file opened for writing, as an operator would; `None` (the test is
/// skipped with a note) on other backends, whose tampering SQL would differ.
pub(crate) fn writable_db(app: &tokenwarden_testing::TestApp) -> Option<rusqlite::Connection> {
    let path = app.sqlite_file("edits the database with SQLite SQL")?;
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    Some(conn)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_who_swaps_the_vaults_public_key_still_cannot_read_new_tokens() {
    let env = oauth_env().await;
    let session = env
        .start_session(&json!({"app": "fake", "connection_id": "c1"}))
        .await
        .expect_json(StatusCode::CREATED);
    // The operator replaces the stored public key with one of their own.
    let (_, attacker_public) =
        tokenwarden_crypto::SealingPrivateKey::generate(tokenwarden_crypto::KeyId(1));
    let Some(db) = writable_db(&env.app) else {
        return;
    };
    db.execute(
        "UPDATE vaults SET sealing_public_key = ?1",
        [attacker_public.to_bytes()],
    )
    .unwrap();

    let callback = authorize(&env.app.client, &session).await;
    let page = fetch(&env.app.client, Method::GET, &callback, Auth::None, None).await;

    assert_eq!(page.status, StatusCode::OK);
    // Sealed to the key the key holder unlocked at session creation, not the column:
    // the vault's own key holder can read it.
    let token = env.token("c1", "").await.expect_json(StatusCode::OK);
    assert_eq!(
        token["access_token"].as_str(),
        env.grant().access_token.as_deref()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_who_redirects_the_token_endpoint_during_a_connect_gets_no_code() {
    let env = oauth_env().await;
    let session = env
        .start_session(&json!({"app": "fake", "connection_id": "c1"}))
        .await
        .expect_json(StatusCode::CREATED);
    // The provider is custom (stored as JSON): point its token URL elsewhere.
    let Some(db) = writable_db(&env.app) else {
        return;
    };
    db.execute(
        "UPDATE providers SET spec = json_set(spec, '$.token_url', 'http://127.0.0.1:9/steal')",
        [],
    )
    .unwrap();

    let callback = authorize(&env.app.client, &session).await;
    let page = fetch(&env.app.client, Method::GET, &callback, Auth::None, None).await;

    // The callback uses the definition captured in the session's encrypted secrets.
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(env.provider.code_exchanges(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connect_key_cannot_move_another_apps_connection_to_its_app() {
    let env = oauth_env().await;
    let (_, page) = env.connect("shared").await;
    assert_eq!(page.status, StatusCode::OK);
    create_app(&env.app, &env.vault.admin_key, "other", &["openid"]).await;
    let scoped = send(
        &env.app,
        Method::POST,
        "/v1/api-keys",
        Auth::Bearer(&env.vault.admin_key),
        Some(&json!({"name": "other only", "roles": ["connect"], "scope": {"apps": ["other"]}})),
    )
    .await
    .expect_json(StatusCode::CREATED);

    let answer = send(
        &env.app,
        Method::POST,
        "/v1/connect-sessions",
        Auth::Bearer(scoped["key"].as_str().unwrap()),
        Some(&json!({"app": "other", "connection_id": "shared"})),
    )
    .await;

    assert_problem(
        &answer,
        StatusCode::CONFLICT,
        "conflict",
        "connection shared belongs to another app; delete it first or choose another connection_id",
    );
    let token = env.token("shared", "").await.expect_json(StatusCode::OK);
    assert_eq!(
        token["access_token"].as_str(),
        env.grant().access_token.as_deref()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_wrong_passwords_cannot_slip_past_the_limit() {
    let app = tokenwarden_testing::spawn_app().await;
    app.create_account("guess@example.com", "correct horse battery staple")
        .await;
    let url = app.url("/v1/vaults");
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let client = app.client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                client
                    .get(url)
                    .header(
                        "authorization",
                        tokenwarden_testing::TestApp::basic(
                            "guess@example.com",
                            &format!("wrong password {i}"),
                        ),
                    )
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut unauthorized = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    report(format_args!(
        "12 parallel guesses: {unauthorized} checked (401), {limited} refused (429)"
    ));
    assert_eq!(unauthorized, 5);
    assert_eq!(limited, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_who_redirects_the_token_endpoint_gets_no_refresh_token() {
    let env = oauth_env().await;
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK);
    env.token("c1", "").await.expect_json(StatusCode::OK);
    let catcher =
        tokenwarden_fake_provider::FakeProvider::start(crate::oauth_support::provider_config())
            .await
            .unwrap();
    let Some(db) = writable_db(&env.app) else {
        return;
    };
    db.execute(
        "UPDATE providers SET spec = json_set(spec, '$.token_url', ?1)",
        [catcher.token_endpoint()],
    )
    .unwrap();

    let answer = env.token("c1", "?force_refresh=true").await;

    // The client secret is bound to the provider definition it was registered with:
    // the edited definition cannot open it, so nothing is sent anywhere.
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(catcher.token_calls(), 0);
    assert_eq!(env.provider.refresh_calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_who_moves_a_connection_to_another_app_makes_it_unreadable() {
    let env = oauth_env().await;
    let (_, page) = env.connect("c1").await;
    assert_eq!(page.status, StatusCode::OK);
    env.token("c1", "").await.expect_json(StatusCode::OK);
    let other = create_app(&env.app, &env.vault.admin_key, "other", &["openid"]).await;
    let Some(db) = writable_db(&env.app) else {
        return;
    };
    db.execute(
        "UPDATE connections SET app_id = ?1 WHERE id = 'c1'",
        [other["id"].as_str().unwrap()],
    )
    .unwrap();

    let answer = env.token("c1", "?force_refresh=true").await;

    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(env.provider.refresh_calls(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_who_gives_up_mid_refresh_does_not_lose_the_rotated_token() {
    let env = oauth_env().await;
    env.connect_expiring("c1").await;
    env.provider
        .set_token_latency(std::time::Duration::from_millis(800));
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(200))
        .build()
        .unwrap();

    let gave_up = impatient
        .get(env.app.url("/v1/connections/c1/token"))
        .bearer_auth(&env.read_key)
        .send()
        .await;
    assert!(gave_up.is_err(), "the client was meant to time out");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    env.provider.set_token_latency(std::time::Duration::ZERO);

    let token = env.token("c1", "").await.expect_json(StatusCode::OK);

    // The refresh the first caller started finished and was committed without it.
    assert_eq!(env.provider.refresh_calls(), 1);
    assert_eq!(env.provider.reuse_detections(), 0);
    assert_eq!(
        token["access_token"].as_str(),
        env.grant().access_token.as_deref()
    );
}
