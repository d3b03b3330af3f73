//! One 401 for every unusable API key: nothing in the answer says which kind it was.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;
use tokenwarden_crypto::ApiKey;
use tokenwarden_testing::spawn_app;

use crate::helpers::{
    Answer, Auth, KEY_LEN, assert_key_format, assert_key_unauthorized, checksum, create_key,
    delete, get, post, secret_of, whoami_status, with_secret,
};

/// What may differ between two 401s without telling anything: nothing but the date.
fn fingerprint(answer: &Answer) -> (StatusCode, String, Vec<(String, String)>) {
    let mut headers: Vec<(String, String)> = answer
        .headers
        .iter()
        .filter(|(name, _)| name.as_str() != "date")
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (answer.status, answer.text.clone(), headers)
}

#[tokio::test]
async fn every_kind_of_unusable_key_gets_one_identical_401() {
    let app = spawn_app().await;
    let vault = app.vault("alice@example.com").await;
    let (revoked_id, revoked) = app.key(&vault, &["read"]).await;
    let gone = delete(
        &app,
        &format!("/v1/api-keys/{revoked_id}"),
        Auth::Bearer(&vault.admin_key),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let expiring = create_key(
        &app,
        &vault.admin_key,
        &json!({"name": "short", "roles": ["read"], "expires_in": 60}),
    )
    .await;
    let expiring = expiring["key"].as_str().unwrap().to_owned();

    let admin = vault.admin_key.as_str();
    let mut bad_checksum = admin.to_owned();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == 'A' { 'B' } else { 'A' });
    let unknown = ApiKey::generate().expose_secret().to_owned();
    assert_key_format(&unknown, &unknown[4..20]);
    // The admin key's id with another secret, checksum recomputed: well-formed, wrong.
    let mut other_secret: Vec<u8> = secret_of(admin).bytes().collect();
    other_secret.reverse();
    let other_secret = if other_secret == secret_of(admin).as_bytes() {
        "x".repeat(40)
    } else {
        String::from_utf8(other_secret).unwrap()
    };
    let wrong_secret = with_secret(admin, &other_secret);
    assert_key_format(&wrong_secret, &vault.admin_key_id);
    let upper_case = admin.to_uppercase();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("alice@example.com:{admin}"))
    );
    let token_scheme = format!("Token {admin}");
    let no_space = format!("Bearer{admin}");
    let trailing_garbage = format!("{admin}x");
    let body_without_checksum = &admin[..KEY_LEN - 6];
    let wrong_prefix = {
        let body = format!("twx_{}", &admin[4..KEY_LEN - 6]);
        format!("{body}{}", checksum(&body))
    };

    let cases: Vec<(&str, Auth<'_>)> = vec![
        ("no Authorization header", Auth::None),
        ("Basic instead of Bearer", Auth::Raw(&basic)),
        ("an unknown scheme", Auth::Raw(&token_scheme)),
        ("Bearer with nothing", Auth::Raw("Bearer")),
        ("Bearer with a blank", Auth::Raw("Bearer ")),
        ("no space after Bearer", Auth::Raw(&no_space)),
        ("a malformed key", Auth::Bearer("twk_nope")),
        ("garbage", Auth::Bearer("hunter2")),
        ("a key with a bad checksum", Auth::Bearer(&bad_checksum)),
        (
            "a key without its checksum",
            Auth::Bearer(body_without_checksum),
        ),
        (
            "a key with a trailing character",
            Auth::Bearer(&trailing_garbage),
        ),
        ("a key with another prefix", Auth::Bearer(&wrong_prefix)),
        ("a key in upper case", Auth::Bearer(&upper_case)),
        ("an unknown, well-formed key", Auth::Bearer(&unknown)),
        (
            "the right id with a wrong secret",
            Auth::Bearer(&wrong_secret),
        ),
        ("a revoked key", Auth::Bearer(&revoked)),
    ];
    let mut answers = Vec::new();
    for (what, auth) in cases {
        answers.push((what, get(&app, "/v1/whoami", auth).await));
    }
    assert_eq!(whoami_status(&app, &expiring).await, StatusCode::OK);
    app.clock.advance_secs(61);
    answers.push((
        "an expired key",
        get(&app, "/v1/whoami", Auth::Bearer(&expiring)).await,
    ));

    let reference = fingerprint(&answers[0].1);
    for (what, answer) in &answers {
        assert_key_unauthorized(answer);
        assert_eq!(fingerprint(answer), reference, "{what} answers differently");
    }
    assert_eq!(whoami_status(&app, admin).await, StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_key_gets_the_same_401_as_a_malformed_one_on_every_route() {
    let app = spawn_app().await;
    let vault = app.vault("bob@example.com").await;
    let (id, key) = app.key(&vault, &["admin"]).await;
    delete(
        &app,
        &format!("/v1/api-keys/{id}"),
        Auth::Bearer(&vault.admin_key),
    )
    .await;

    for auth in [Auth::Bearer(&key), Auth::Bearer("twk_malformed")] {
        let answers = [
            get(&app, "/v1/whoami", auth).await,
            get(&app, "/v1/api-keys", auth).await,
            post(
                &app,
                "/v1/api-keys",
                auth,
                &json!({"name": "x", "roles": ["read"]}),
            )
            .await,
            delete(&app, &format!("/v1/api-keys/{}", vault.admin_key_id), auth).await,
        ];

        for answer in &answers {
            assert_key_unauthorized(answer);
        }
    }
    assert_eq!(whoami_status(&app, &vault.admin_key).await, StatusCode::OK);
}

#[tokio::test]
async fn a_401_comes_before_any_look_at_the_body() {
    let app = spawn_app().await;

    let answer = crate::helpers::call(
        &app,
        reqwest::Method::POST,
        "/v1/api-keys",
        Auth::Bearer("twk_malformed"),
        Some(crate::helpers::Body::raw("text/plain", "{not json")),
    )
    .await;

    assert_key_unauthorized(&answer);
}
