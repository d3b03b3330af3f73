//! The hardening review's findings that need a whole server: templated providers in the
//! proxy and on the link page, forced refreshes a proxy key could repeat without end,
//! provider definitions read back from the database.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokenwarden_fake_provider::FakeProvider;
use tokenwarden_service::ProviderSpec;
use tokenwarden_testing::SpawnOptions;

use crate::helpers::Auth;
use crate::oauth_support::{
    CLIENT_ID, CLIENT_SECRET, OAuthEnv, authorize, fetch, oauth_env, provider_config, send,
};
use crate::review_fixes::writable_db;

/// A provider whose every URL is on a host named by the connection's `octet`
/// parameter (`http://127.0.0.{octet}:port`), as Shopify's and Zendesk's are on
/// `{shop}.myshopify.com`: only the filled-in URL reaches the fake provider.
fn templated(fake: &FakeProvider) -> ProviderSpec {
    let port = url::Url::parse(fake.base_url()).unwrap().port().unwrap();
    let base = format!("http://127.0.0.{{octet}}:{port}");
    serde_json::from_value(json!({
        "key": "tmpl",
        "display_name": "Templated",
        "authorization_url": format!("{base}/authorize"),
        "token_url": format!("{base}/token"),
        "api_base_urls": [format!("{base}/api")],
        "params": {"octet": "label"},
        "client_auth": "basic",
    }))
    .unwrap()
}

async fn templated_app(env: &OAuthEnv) -> (tokenwarden_testing::TestApp, String) {
    let app = tokenwarden_testing::spawn_app_with(SpawnOptions {
        extra_providers: vec![templated(&env.provider)],
        ..SpawnOptions::default()
    })
    .await;
    let vault = app.vault("tmpl@example.com").await;
    send(
        &app,
        Method::POST,
        "/v1/apps",
        Auth::Bearer(&vault.admin_key),
        Some(
            &json!({"key": "shop", "provider": "tmpl", "client_id": CLIENT_ID,
                     "client_secret": CLIENT_SECRET, "scopes": ["profile"]}),
        ),
    )
    .await
    .expect_json(StatusCode::CREATED);
    (app, vault.admin_key)
}

#[tokio::test]
async fn a_templated_providers_proxy_calls_and_link_page_use_the_connections_own_host() {
    let env = oauth_env().await;
    let (app, admin) = templated_app(&env).await;
    let session = send(
        &app,
        Method::POST,
        "/v1/connect-sessions",
        Auth::Bearer(&admin),
        Some(&json!({"app": "shop", "connection_id": "s1", "params": {"octet": "1"}})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let origin = url::Url::parse(env.provider.base_url())
        .unwrap()
        .origin()
        .ascii_serialization();
    assert!(
        session["authorization_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{origin}/authorize?")),
        "{session}"
    );

    // The link page lets its form go to the filled-in host, not the template's.
    let page = fetch(
        &app.client,
        Method::GET,
        session["connect_link"].as_str().unwrap(),
        Auth::None,
        None,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let csp = page.header("content-security-policy").unwrap().to_owned();
    assert!(
        csp.contains(&format!("form-action 'self' {origin}")),
        "{csp}"
    );
    assert!(!csp.contains("octet"), "{csp}");

    let callback = authorize(&app.client, &session).await;
    let done = fetch(&app.client, Method::GET, &callback, Auth::None, None).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);

    // The proxy calls the connection's own host.
    let before = env.provider.api_calls();
    let proxied = send(
        &app,
        Method::GET,
        "/v1/proxy/s1/user",
        Auth::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(proxied.status, StatusCode::OK, "{}", proxied.text);
    assert_eq!(env.provider.api_calls(), before + 1);
}

async fn register_with_api(env: &OAuthEnv, key: &str) {
    send(
        &env.app,
        Method::POST,
        "/v1/providers",
        Auth::Bearer(&env.vault.admin_key),
        Some(&json!({"key": key, "issuer": env.provider.issuer(),
                     "api_base_url": env.provider.api_base_url()})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    send(
        &env.app,
        Method::POST,
        "/v1/apps",
        Auth::Bearer(&env.vault.admin_key),
        Some(&json!({"key": key, "provider": key, "client_id": CLIENT_ID,
                     "client_secret": CLIENT_SECRET, "scopes": ["profile"]})),
    )
    .await
    .expect_json(StatusCode::CREATED);
}

async fn connect_app(env: &OAuthEnv, app: &str, connection: &str) {
    let session = env
        .start_session(&json!({"app": app, "connection_id": connection}))
        .await
        .expect_json(StatusCode::CREATED);
    let callback = authorize(&env.app.client, &session).await;
    let page = fetch(&env.app.client, Method::GET, &callback, Auth::None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
}

async fn proxy_get(env: &OAuthEnv, path: &str) -> crate::helpers::Answer {
    send(
        &env.app,
        Method::GET,
        &format!("/v1/proxy/{path}"),
        Auth::Bearer(&env.read_key),
        None,
    )
    .await
}

#[tokio::test]
async fn an_upstream_401_forces_at_most_one_refresh_per_connection_in_thirty_seconds() {
    let env = oauth_env().await;
    register_with_api(&env, "api").await;
    connect_app(&env, "api", "c1").await;

    // The first 401 forces a refresh and the retry succeeds.
    env.provider.refuse_api_tokens(1);
    assert_eq!(proxy_get(&env, "c1/user").await.status, StatusCode::OK);
    assert_eq!(env.provider.refresh_calls(), 1);

    // Moments later a key cannot force another one: the 401 goes back as it is.
    for _ in 0..5 {
        env.provider.refuse_api_tokens(1);
        let answer = proxy_get(&env, "c1/user").await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
    }
    assert_eq!(env.provider.refresh_calls(), 1);

    // Once the window has passed, a 401 may force one again.
    env.app.clock.advance_secs(31);
    env.provider.refuse_api_tokens(1);
    assert_eq!(proxy_get(&env, "c1/user").await.status, StatusCode::OK);
    assert_eq!(env.provider.refresh_calls(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_providers_api_base_url_edited_in_the_database_gets_no_token() {
    let env = oauth_env().await;
    register_with_api(&env, "api").await;
    connect_app(&env, "api", "c1").await;
    assert_eq!(proxy_get(&env, "c1/user").await.status, StatusCode::OK);
    let attacker = FakeProvider::start(provider_config()).await.unwrap();
    let Some(db) = writable_db(&env.app) else {
        return;
    };
    db.execute(
        "UPDATE providers SET spec = json_set(spec, '$.api_base_urls', json_array(?1)) WHERE key = 'api'",
        [attacker.api_base_url()],
    )
    .unwrap();

    let answer = proxy_get(&env, "c1/user").await;

    assert_eq!(
        answer.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        answer.text
    );
    assert_eq!(
        attacker.requests().len(),
        0,
        "the token went to the edited host"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_row_named_like_a_builtin_provider_never_shadows_it() {
    let env = oauth_env().await;
    register_with_api(&env, "api").await;
    let attacker = FakeProvider::start(provider_config()).await.unwrap();
    // An app of the built-in `github`, with an imported token.
    send(
        &env.app,
        Method::POST,
        "/v1/apps",
        Auth::Bearer(&env.vault.admin_key),
        Some(
            &json!({"key": "gh", "provider": "github", "client_id": CLIENT_ID,
                     "client_secret": CLIENT_SECRET, "scopes": []}),
        ),
    )
    .await
    .expect_json(StatusCode::CREATED);
    send(
        &env.app,
        Method::POST,
        "/v1/connections",
        Auth::Bearer(&env.connect_key),
        Some(&json!({"app": "gh", "connection_id": "g1", "access_token": "gho_imported"})),
    )
    .await
    .expect_json(StatusCode::CREATED);
    let Some(db) = writable_db(&env.app) else {
        return;
    };
    // A custom provider row named `github` that sends the API elsewhere.
    db.execute(
        "INSERT INTO providers (vault_id, key, spec, created_at)
         SELECT vault_id, 'github', json_set(spec, '$.key', 'github', '$.api_base_urls', json_array(?1)), created_at
         FROM providers WHERE key = 'api'",
        [attacker.api_base_url()],
    )
    .unwrap();

    let answer = proxy_get(&env, "g1/user").await;

    // The built-in definition is used (api.github.com, unreachable from here), never
    // the row.
    assert_ne!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        attacker.requests().len(),
        0,
        "the token went to the row's host"
    );
    let providers: Value = send(
        &env.app,
        Method::GET,
        "/v1/providers",
        Auth::Bearer(&env.vault.admin_key),
        None,
    )
    .await
    .expect_json(StatusCode::OK);
    let github: Vec<&Value> = providers
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["key"] == "github")
        .collect();
    assert_eq!(github.len(), 1);
    assert_eq!(
        github[0]["authorization_url"],
        "https://github.com/login/oauth/authorize"
    );
}
