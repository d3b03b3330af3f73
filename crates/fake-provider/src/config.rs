//! Start-up configuration of the fake provider: registered clients, client
//! authentication policy, token lifetimes, OIDC and the fake user.

use std::time::Duration;

/// Everything fixed when the provider starts. Behaviour that tests flip while
/// it runs ([`crate::Quirks`], [`crate::Fault`], the authorize mode, ...) is
/// changed through the [`crate::FakeProvider`] handle instead.
#[derive(Clone, Debug)]
pub struct FakeProviderConfig {
    /// Clients the provider accepts. At least one is needed for any flow.
    pub clients: Vec<ClientRegistration>,
    /// Which client authentication methods the token and revocation
    /// endpoints accept (RFC 6749 §2.3.1).
    pub client_auth: ClientAuthPolicy,
    /// What `GET /authorize` does with a valid request.
    pub authorize_mode: AuthorizeMode,
    /// Lifetime of access tokens, reported as `expires_in`.
    pub access_token_ttl: Duration,
    /// Lifetime of authorization codes (RFC 6749 §4.1.2 recommends ≤ 10 min).
    pub code_ttl: Duration,
    /// Rotate the refresh token on every refresh, with reuse detection.
    pub rotate_refresh_tokens: bool,
    /// Issue `id_token`s when the `openid` scope is granted.
    pub oidc: bool,
    /// Refuse authorize requests without a PKCE S256 challenge.
    pub require_pkce: bool,
    /// How long a [`crate::FaultKind::Hang`] keeps a request open (it is also
    /// released when the provider shuts down).
    pub hang_duration: Duration,
    /// The resource owner every grant is issued for.
    pub user: FakeUser,
    /// How many requests the log keeps (the oldest are dropped first);
    /// 0 disables the log. Bounds memory in a long-running demo.
    pub request_log_capacity: usize,
    /// Written into every code, access token and refresh token after its prefix
    /// (`fake_at_{marker}_...`), so that leak tests can grep for one recognisable
    /// word whatever a value was cut or re-encoded into. Empty: no marker.
    pub secret_marker: String,
}

impl Default for FakeProviderConfig {
    fn default() -> Self {
        Self {
            clients: vec![ClientRegistration::default()],
            client_auth: ClientAuthPolicy::Either,
            authorize_mode: AuthorizeMode::AutoApprove,
            access_token_ttl: Duration::from_secs(3600),
            code_ttl: Duration::from_secs(600),
            rotate_refresh_tokens: true,
            oidc: true,
            require_pkce: false,
            hang_duration: Duration::from_secs(30),
            user: FakeUser::default(),
            request_log_capacity: 10_000,
            secret_marker: String::new(),
        }
    }
}

impl FakeProviderConfig {
    /// A configuration with a single client.
    pub fn with_client(client: ClientRegistration) -> Self {
        Self {
            clients: vec![client],
            ..Self::default()
        }
    }
}

/// A registered OAuth client.
#[derive(Clone, Debug)]
pub struct ClientRegistration {
    pub client_id: String,
    /// `None` registers a public client (`token_endpoint_auth_method=none`),
    /// which identifies itself by `client_id` in the form only.
    pub client_secret: Option<String>,
    /// Registered redirect URIs, compared byte for byte. Empty accepts any
    /// absolute `http(s)` redirect URI.
    pub redirect_uris: Vec<String>,
}

impl ClientRegistration {
    /// A confidential client with no registered redirect URIs.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(client_secret.into()),
            redirect_uris: Vec::new(),
        }
    }

    /// Registers one exact redirect URI.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }
}

impl Default for ClientRegistration {
    fn default() -> Self {
        Self::new(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    }
}

/// Client id of the default registration.
pub const DEFAULT_CLIENT_ID: &str = "fake-client-id";
/// Client secret of the default registration.
pub const DEFAULT_CLIENT_SECRET: &str = "fake-client-secret";

/// Client authentication methods accepted at the token and revocation
/// endpoints. Public clients (no secret) are accepted under every policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthPolicy {
    /// Only `client_secret_basic`.
    Basic,
    /// Only `client_secret_post`.
    Post,
    /// Either one (but never both in the same request, RFC 6749 §2.3).
    Either,
}

/// What `GET /authorize` does with a valid request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorizeMode {
    /// Redirect straight back with a code (tests).
    AutoApprove,
    /// Show an HTML page with Approve / Deny buttons (the browser demo).
    ConsentPage,
    /// Redirect back with `error=access_denied`.
    Deny,
}

/// The resource owner.
#[derive(Clone, Debug)]
pub struct FakeUser {
    pub subject: String,
    pub email: String,
    pub name: String,
}

impl Default for FakeUser {
    fn default() -> Self {
        Self {
            subject: "fake-user-1".to_owned(),
            email: "ada@fake-provider.test".to_owned(),
            name: "Ada Fake".to_owned(),
        }
    }
}
