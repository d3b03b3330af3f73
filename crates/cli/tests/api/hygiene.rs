//! Response hygiene: every answer that carries a key, a token, a connect link or
//! provider data says `Cache-Control: no-store`; every HTML page (connect links, their
//! 404 and 410 variants, the callback's success, failure and refusal pages) and every
//! redirect forbids framing, loading, Referer leaks and caching; nothing is sniffed.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::AuthorizeMode;
use tokenwarden_testing::SpawnOptions;

use crate::helpers::{Answer, Auth, Body, PASSWORD, call, fetch, get, post};
use crate::oauth_support::{
    OAuthEnv, SCOPES, authorize, browser, oauth_env, oauth_env_with, provider_config,
};
use crate::proxy_support::proxy_env;

/// What every answer of this server carries, whatever its status.
fn assert_base_headers(what: &str, answer: &Answer) {
    assert_eq!(
        answer.header("cache-control"),
        Some("no-store"),
        "{what}: {}",
        answer.status
    );
    assert_eq!(
        answer.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        answer.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{what}");
    let csp = answer
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{what}: {directive} in {csp}");
    }
    for loose in ["script-src", "'unsafe-eval'", "*"] {
        assert!(!csp.contains(loose), "{what}: {loose} in {csp}");
    }
}

/// An answer that carries a secret: the base headers, and the status expected.
fn assert_secret_answer(what: &str, answer: &Answer, status: StatusCode) {
    assert_eq!(answer.status, status, "{what}: {}", answer.text);
    assert_base_headers(what, answer);
}

/// An HTML page: the base headers, HTML, and a CSP whose only allowance is inline style
/// (and, for a connect link's page, its form's way to the provider).
fn assert_page(what: &str, answer: &Answer, status: StatusCode) {
    assert_eq!(answer.status, status, "{what}: {}", answer.text);
    assert_base_headers(what, answer);
    assert_eq!(
        answer.content_type(),
        Some("text/html; charset=utf-8"),
        "{what}"
    );
    let csp = answer.header("content-security-policy").unwrap_or("");
    assert!(csp.starts_with("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"), "{what}: {csp}");
}

/// The problem+json error answers of the API carry the same headers.
fn assert_problem_answer(what: &str, answer: &Answer, status: StatusCode) {
    assert_eq!(answer.status, status, "{what}: {}", answer.text);
    assert_eq!(
        answer.content_type(),
        Some("application/problem+json"),
        "{what}"
    );
    assert_base_headers(what, answer);
}

#[tokio::test]
async fn every_answer_that_carries_a_key_or_token_is_no_store_and_unframeable() {
    let env = oauth_env().await;
    let app = &env.app;

    // Accounts: signup, and the vault answers whose Basic login carries the first key.
    let email = "grace@example.com";
    let signup = post(
        app,
        "/v1/accounts",
        Auth::None,
        &json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_secret_answer("signup", &signup, StatusCode::CREATED);
    let vault = post(
        app,
        "/v1/vaults",
        Auth::Basic(email, PASSWORD),
        &json!({"name": "hygiene"}),
    )
    .await;
    assert_secret_answer("vault creation", &vault, StatusCode::CREATED);
    let vault = vault.json();
    let admin_key = vault["api_key"]["key"].as_str().unwrap().to_owned();
    assert!(admin_key.starts_with("twk_"));
    let vaults = get(app, "/v1/vaults", Auth::Basic(email, PASSWORD)).await;
    assert_secret_answer("vault list (login)", &vaults, StatusCode::OK);
    let member_key = post(
        app,
        &format!("/v1/vaults/{}/api-keys", vault["id"].as_str().unwrap()),
        Auth::Basic(email, PASSWORD),
        &json!({"name": "member", "roles": ["read"]}),
    )
    .await;
    assert_secret_answer("member key", &member_key, StatusCode::CREATED);

    // Keys.
    let created = post(
        app,
        "/v1/api-keys",
        Auth::Bearer(&admin_key),
        &json!({"name": "ci", "roles": ["read"]}),
    )
    .await;
    assert_secret_answer("key creation", &created, StatusCode::CREATED);
    assert!(created.json()["key"].as_str().unwrap().starts_with("twk_"));
    for path in ["/v1/api-keys", "/v1/whoami"] {
        let answer = get(app, path, Auth::Bearer(&admin_key)).await;
        assert_secret_answer(path, &answer, StatusCode::OK);
    }

    // A connect session: its authorization URL holds the state, its link is a secret.
    let session = env
        .start_session(&json!({"app": "fake", "connection_id": "c1"}))
        .await;
    assert_secret_answer("connect session", &session, StatusCode::CREATED);
    let session = session.json();
    let callback = authorize(&env.app.client, &session).await;
    let page = fetch(&env.app.client, Method::GET, &callback, Auth::None, None).await;
    assert_page("callback success page", &page, StatusCode::OK);
    assert!(page.text.contains("<code>c1</code>"), "{}", page.text);

    // Tokens: read, forced refresh, the connect role's refresh, an import.
    for query in ["", "?force_refresh=true"] {
        let token = env.token("c1", query).await;
        assert_secret_answer(&format!("token{query}"), &token, StatusCode::OK);
        assert!(token.json()["access_token"].as_str().is_some());
    }
    let refreshed = call(
        app,
        Method::POST,
        "/v1/connections/c1/refresh",
        Auth::Bearer(&env.connect_key),
        None,
    )
    .await;
    assert_secret_answer("refresh", &refreshed, StatusCode::OK);
    assert_eq!(refreshed.json()["id"], "c1");
    let imported = post(
        app,
        "/v1/connections",
        Auth::Bearer(&env.connect_key),
        &json!({"app": "fake", "connection_id": "imported", "access_token": "at-imported-1"}),
    )
    .await;
    assert_secret_answer("import", &imported, StatusCode::CREATED);
    for path in ["/v1/connections", "/v1/connections/c1"] {
        let answer = get(app, path, Auth::Bearer(&env.read_key)).await;
        assert_secret_answer(path, &answer, StatusCode::OK);
    }

    // Errors: problem+json answers carry the same headers.
    let unauthorized = get(app, "/v1/whoami", Auth::Bearer("twk_nope")).await;
    assert_problem_answer("401", &unauthorized, StatusCode::UNAUTHORIZED);
    let forbidden = get(
        app,
        "/v1/connections/c1/token",
        Auth::Bearer(&env.connect_key),
    )
    .await;
    assert_problem_answer("403", &forbidden, StatusCode::FORBIDDEN);
    let missing = env.token("nobody", "").await;
    assert_problem_answer("404", &missing, StatusCode::NOT_FOUND);
    let bad = post(
        app,
        "/v1/api-keys",
        Auth::Bearer(&admin_key),
        &json!({"name": "x", "roles": ["root"]}),
    )
    .await;
    assert_problem_answer("400", &bad, StatusCode::BAD_REQUEST);
    let no_route = get(app, "/v1/nowhere", Auth::None).await;
    assert_problem_answer("no route", &no_route, StatusCode::NOT_FOUND);
    let wrong_method = call(app, Method::PUT, "/v1/whoami", Auth::None, None).await;
    assert_problem_answer("405", &wrong_method, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn connect_link_pages_and_their_404_and_410_variants_are_locked_down() {
    let env = oauth_env().await;
    let new_link = |connection_id: &'static str| {
        let env = &env;
        async move {
            let session = env
                .start_session(&json!({"app": "fake", "connection_id": connection_id}))
                .await
                .expect_json(StatusCode::CREATED);
            let link = session["connect_link"].as_str().unwrap().to_owned();
            (session, link)
        }
    };
    let client = browser();
    let open = |method: Method, url: String| {
        let client = &client;
        async move { fetch(client, method, &url, Auth::None, None).await }
    };

    // The page, its HEAD, and the button's 303 to the provider.
    let (_, link) = new_link("c1").await;
    let page = open(Method::GET, link.clone()).await;
    assert_page("link page", &page, StatusCode::OK);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.ends_with(&format!("form-action 'self' {}", env.provider.base_url())),
        "{csp}"
    );
    let head = open(Method::HEAD, link.clone()).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_base_headers("link page (HEAD)", &head);
    let refused = open(Method::POST, link.clone()).await;
    assert_page("refused link press (403)", &refused, StatusCode::FORBIDDEN);
    let spent = crate::connect_links_support::press(&client, &link).await;
    assert_eq!(spent.status, StatusCode::SEE_OTHER, "{}", spent.text);
    assert_base_headers("link spend (303)", &spent);
    assert!(spent.header("set-cookie").is_some());

    // Spent: 410 to both methods.
    for method in [Method::GET, Method::POST] {
        let gone = open(method.clone(), link.clone()).await;
        assert_page(&format!("used link ({method})"), &gone, StatusCode::GONE);
        assert!(gone.text.contains("already used"), "{}", gone.text);
    }

    // Finished: the session completed through its authorization URL.
    let (session, finished_link) = new_link("c2").await;
    let callback = authorize(&env.app.client, &session).await;
    let done = open(Method::GET, callback).await;
    assert_page("callback success page", &done, StatusCode::OK);
    let gone = open(Method::GET, finished_link).await;
    assert_page("finished link", &gone, StatusCode::GONE);
    assert!(
        gone.text.contains("already been completed"),
        "{}",
        gone.text
    );

    // Unknown.
    for method in [Method::GET, Method::POST] {
        let unknown = open(
            method.clone(),
            format!("{}/connect/not-a-link", env.app.base_url),
        )
        .await;
        assert_page(
            &format!("unknown link ({method})"),
            &unknown,
            StatusCode::NOT_FOUND,
        );
    }

    // Expired.
    let (_, expired_link) = new_link("c3").await;
    env.app.clock.advance_secs(1801);
    for method in [Method::GET, Method::POST] {
        let gone = open(method.clone(), expired_link.clone()).await;
        assert_page(&format!("expired link ({method})"), &gone, StatusCode::GONE);
        assert!(gone.text.contains("expired"), "{}", gone.text);
    }
}

/// Follows a fresh session's authorization at the provider and opens the callback.
async fn run_callback(env: &OAuthEnv, body: &Value) -> Answer {
    let session = env
        .start_session(body)
        .await
        .expect_json(StatusCode::CREATED);
    let callback = authorize(&env.app.client, &session).await;
    fetch(&browser(), Method::GET, &callback, Auth::None, None).await
}

#[tokio::test]
async fn callback_failure_refusal_and_redirect_answers_are_locked_down() {
    let env = oauth_env_with(
        SpawnOptions {
            return_origins: vec!["https://app.example.com".into()],
            ..SpawnOptions::default()
        },
        provider_config(),
        &SCOPES,
    )
    .await;

    // A refused state: the error page.
    let refused = fetch(
        &browser(),
        Method::GET,
        &format!(
            "{}?code=c&state=not-a-state",
            env.oauth_app["redirect_uri"].as_str().unwrap()
        ),
        Auth::None,
        None,
    )
    .await;
    assert_page("refused callback", &refused, StatusCode::BAD_REQUEST);

    // Back to return_to: the 303 holds the connection id and leaks nothing onwards.
    let back = run_callback(
        &env,
        &json!({"app": "fake", "connection_id": "c1", "return_to": "https://app.example.com/done"}),
    )
    .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.text);
    assert_eq!(
        back.header("location"),
        Some("https://app.example.com/done?connection_id=c1")
    );
    assert_base_headers("callback redirect", &back);

    // The person said no at the provider: the failure page, and the failure redirect.
    env.provider.set_authorize_mode(AuthorizeMode::Deny);
    let failed = run_callback(&env, &json!({"app": "fake", "connection_id": "c2"})).await;
    assert_page("callback failure page", &failed, StatusCode::BAD_GATEWAY);
    assert!(
        failed.text.contains("<code>access_denied</code>"),
        "{}",
        failed.text
    );
    let failed_back = run_callback(
        &env,
        &json!({"app": "fake", "connection_id": "c3", "return_to": "https://app.example.com/done"}),
    )
    .await;
    assert_eq!(failed_back.status, StatusCode::SEE_OTHER);
    assert_eq!(
        failed_back.header("location"),
        Some("https://app.example.com/done?error=access_denied")
    );
    assert_base_headers("callback failure redirect", &failed_back);
}

#[tokio::test]
async fn proxied_provider_answers_are_never_cacheable_nor_run_as_pages() {
    let env = proxy_env().await;

    // The fake API says `Cache-Control: private, max-age=5`: replaced.
    let json_answer = env.get("alice/user").await;
    assert_eq!(json_answer.status, StatusCode::OK, "{}", json_answer.text);
    assert_base_headers("proxied JSON", &json_answer);
    assert!(
        json_answer
            .header("content-security-policy")
            .unwrap()
            .contains("sandbox")
    );

    // An HTML body from the provider is served from tokenwarden's origin: sandboxed.
    let html = fetch(
        &env.app.client,
        Method::POST,
        &env.app.url("/v1/proxy/alice/echo-body"),
        Auth::Bearer(&env.proxy_key),
        Some(Body::raw(
            "text/html",
            "<script>fetch('/v1/whoami')</script>",
        )),
    )
    .await;
    assert_eq!(html.status, StatusCode::OK, "{}", html.text);
    assert_eq!(html.content_type(), Some("text/html"));
    assert_base_headers("proxied HTML", &html);
    assert!(
        html.header("content-security-policy")
            .unwrap()
            .contains("sandbox")
    );

    // A redirect from the provider is passed on, with the same headers.
    let redirect = env
        .get("alice/redirect?to=https%3A%2F%2Felsewhere.example%2F")
        .await;
    assert_eq!(redirect.status, StatusCode::FOUND);
    assert_base_headers("proxied redirect", &redirect);

    // Errors of the proxy itself too.
    let refused = env.get("alice/a%2Fb").await;
    assert_problem_answer("proxy refusal", &refused, StatusCode::BAD_REQUEST);
}
