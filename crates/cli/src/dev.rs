//! `tokenwarden serve --dev`: a temporary database, loopback providers allowed, a demo
//! OAuth provider served by the same process under `/demo-provider`, and a ready vault
//! with an admin key and a `demo` app, printed at start.

use anyhow::{Context, anyhow};
use rand::Rng;
use secrecy::SecretString;
use tokenwarden_domain::{AppKey, Email, Name, Password, Scopes};
use tokenwarden_fake_provider::{
    AuthorizeMode, ClientRegistration, FakeProvider, FakeProviderConfig,
};
use tokenwarden_server::{App, ServerConfig};
use tokenwarden_service::{NewApp, ProviderSpec, RequestContext};
use url::Url;

pub const DEMO_PATH: &str = "/demo-provider";
const DEMO_CLIENT_ID: &str = "tokenwarden-demo";

/// What `--dev` prints once the server is up.
pub struct DevBootstrap {
    pub email: String,
    pub password: String,
    pub admin_key: String,
    pub public_url: String,
}

fn random_text(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// Mounts the demo provider and adds it to the catalog as `demo`. Returns the client
/// secret the demo provider accepts.
pub fn configure(config: &mut ServerConfig) -> anyhow::Result<String> {
    let base = format!("{}{DEMO_PATH}", config.public_url);
    let secret = random_text(32);
    let provider = FakeProvider::mounted(
        FakeProviderConfig {
            authorize_mode: AuthorizeMode::ConsentPage,
            ..FakeProviderConfig::with_client(ClientRegistration::new(
                DEMO_CLIENT_ID,
                secret.clone(),
            ))
        },
        &base,
    )
    .map_err(|e| anyhow!("demo provider: {e}"))?;
    let url = |path: &str| Url::parse(&format!("{base}{path}")).context("demo provider URL");
    let mut demo = ProviderSpec::new(
        "demo",
        "Demo provider (built into --dev)",
        url("/authorize")?,
        url("/token")?,
    );
    demo.revocation_url = Some(url("/revoke")?);
    demo.userinfo_url = Some(url("/userinfo")?);
    demo.issuer = Some(provider.issuer().to_owned());
    demo.jwks_uri = Some(url("/jwks")?);
    demo.api_base_urls = vec![url("/api/")?];
    demo.default_scopes = vec!["openid".into(), "profile".into()];
    demo.client_auth = Default::default();
    demo.iss_parameter_supported = true;
    config.extra_providers.push(demo);
    config.extra_routes = Some((DEMO_PATH.to_owned(), provider.router()));
    // The handle owns the provider's state through the router; keep it for the
    // process's life.
    std::mem::forget(provider);
    Ok(secret)
}

/// Creates an account, a vault with its admin key, and the `demo` app.
pub async fn bootstrap(
    app: &App,
    public_url: &str,
    client_secret: String,
) -> anyhow::Result<DevBootstrap> {
    let services = app.services();
    let ctx = RequestContext::default();
    let email = "dev@tokenwarden.localhost".to_owned();
    let password = random_text(20);
    services
        .sign_up(
            Email::parse(&email).map_err(|e| anyhow!("{e}"))?,
            Password::parse(password.clone()).map_err(|e| anyhow!("{e}"))?,
            &ctx,
        )
        .await
        .map_err(|e| anyhow!("creating the dev account: {e}"))?;
    let session = services
        .login(
            &email,
            Password::parse_login(password.clone()).map_err(|e| anyhow!("{e}"))?,
            &ctx,
        )
        .await
        .map_err(|e| anyhow!("signing in the dev account: {e}"))?;
    let vault = services
        .create_vault(
            &session,
            Name::parse("dev").map_err(|e| anyhow!("{e}"))?,
            false,
            &ctx,
        )
        .await
        .map_err(|e| anyhow!("creating the dev vault: {e}"))?;
    let admin_key = vault.api_key.key.expose_secret().to_owned();
    let caller = services
        .authenticate(&admin_key)
        .await
        .map_err(|e| anyhow!("using the dev key: {e}"))?;
    services
        .create_app(
            &caller,
            NewApp {
                key: AppKey::parse("demo").map_err(|e| anyhow!("{e}"))?,
                provider: "demo".into(),
                client_id: DEMO_CLIENT_ID.into(),
                client_secret: SecretString::from(client_secret),
                scopes: Scopes::parse(&["openid", "profile"]).map_err(|e| anyhow!("{e}"))?,
            },
            &ctx,
        )
        .await
        .map_err(|e| anyhow!("creating the demo app: {e}"))?;
    Ok(DevBootstrap {
        email,
        password,
        admin_key,
        public_url: public_url.to_owned(),
    })
}

impl DevBootstrap {
    pub fn banner(&self) -> String {
        let u = &self.public_url;
        let k = &self.admin_key;
        [
            String::new(),
            format!("tokenwarden --dev is running at {u}"),
            format!("(temporary database; demo OAuth provider at {u}{DEMO_PATH})"),
            String::new(),
            format!("  account    {} / {}", self.email, self.password),
            format!("  admin key  {k}"),
            String::new(),
            "1. Start a connect session, then open its authorization_url in a browser and approve:".into(),
            String::new(),
            format!("  curl -s -X POST {u}/v1/connect-sessions -H 'Authorization: Bearer {k}' \\"),
            "       -H 'Content-Type: application/json' -d '{\"app\": \"demo\", \"connection_id\": \"me\"}'".into(),
            String::new(),
            "2. Read the connection's token:".into(),
            String::new(),
            format!("  curl -s {u}/v1/connections/me/token -H 'Authorization: Bearer {k}'"),
            String::new(),
        ]
        .join("\n")
    }
}
