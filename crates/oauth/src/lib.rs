//! The OAuth 2.0 client side of tokenwarden: the provider catalog, authorization URLs,
//! PKCE, token endpoint calls, OIDC discovery, id_token verification and the outbound
//! HTTP policy they all go through. It stores nothing and knows no vault.
//!
//! # Public API
//!
//! Providers ([`provider`]):
//! - [`ProviderSpec`]: the serde shape of a definition (TOML or JSON, see
//!   `providers/*.toml`); [`ProviderDefinition::from_spec`]`(spec, &HttpPolicy)`,
//!   [`ProviderDefinition::from_toml`], [`ProviderDefinition::from_json`] check it and
//!   fail with a [`DefinitionError`] naming the field. A definition serialises as its spec.
//! - [`builtin_providers`]`() -> Result<Vec<ProviderDefinition>, CatalogError>`: the
//!   embedded catalog (`providers/*.toml`, 30+ providers); [`load_catalog`] adds an
//!   operator directory. A [`CatalogError`] reads `<file>: <field>: <problem>`.
//! - Quirks ([`quirks`]): connect-session `params` filled into URLs by
//!   [`ProviderDefinition::with_params`] and [`ProviderDefinition::api_base_urls_for`],
//!   token request format, token response mapping, refresh rules, revocation style.
//! - [`discover`]`(&OutboundClient, issuer) -> Result<ProviderMetadata, DiscoveryError>`
//!   then [`ProviderMetadata::into_spec`]`(key, display_name) -> ProviderSpec`.
//!
//! The authorization request ([`authorize`]):
//! - [`State::generate`], [`Nonce::generate`], [`PkceVerifier::generate`] (not `Clone`)
//!   and [`PkceVerifier::challenge`] (S256).
//! - [`authorization_url`]`(&ProviderDefinition, &AuthorizationRequest) -> Url`.
//! - [`check_response_issuer`]`(&ProviderDefinition, Option<&str>)`: RFC 9207 at the
//!   callback.
//!
//! The token endpoint ([`client`], [`token`]):
//! - [`exchange_code`], [`refresh`], [`revoke`], all taking an [`OutboundClient`], the
//!   definition, [`ClientCredentials`] and `now`, and failing with a [`TokenError`]
//!   (`InvalidGrant`, `Provider`, `Transient`, `Malformed`, `Transport`).
//! - [`parse_token_response`]`(status, content_type, body, now) -> Result<TokenResponse, TokenError>`.
//! - [`RetryPolicy::run`]: opt-in bounded retries of transient failures.
//!
//! OpenID Connect: [`IdTokenVerifier::verify`] checks an id_token against the issuer's
//! JWKS; [`fetch_userinfo`] reads the userinfo endpoint.
//!
//! Outbound HTTP ([`http`]): [`HttpPolicy::build`]`() -> OutboundClient`, no redirects,
//! timeouts, no non-global addresses unless `allow_loopback`; [`is_global`]`(IpAddr)`;
//! an injectable [`HostResolver`].
//!
//! The API proxy ([`proxy`]): [`proxy::proxy_target`]`(base, raw_path, raw_query)`, the
//! URL builder that never leaves the base, and the header filters for each direction.
//!
//! Secrets ([`AccessToken`], [`RefreshToken`], [`IdToken`], [`AuthorizationCode`],
//! [`State`], [`Nonce`], [`PkceVerifier`], the client secret) print `[redacted]` in
//! `Debug` and appear in no error, `Display` output or tracing field.

pub mod authorize;
pub mod catalog;
pub mod client;
pub mod discovery;
pub mod http;
mod http_address;
mod http_error;
mod http_resolver;
pub mod id_token;
pub mod pkce;
pub mod provider;
mod provider_check;
mod provider_error;
mod provider_spec;
pub mod proxy;
mod proxy_headers;
mod proxy_path;
pub mod quirks;
pub mod retry;
pub mod secret;
mod template;
pub mod token;
mod token_classify;
mod token_error;
mod token_fields;
pub mod userinfo;

pub use authorize::{
    AuthorizationRequest, IssuerCheckError, authorization_url, check_response_issuer,
};
pub use catalog::{
    CatalogEntry, CatalogError, CatalogSource, builtin_providers, builtin_providers_with,
    load_catalog, parse_catalog_file,
};
pub use client::{
    ClientCredentials, RevocableToken, Revocation, exchange_code, refresh, revoke, revoke_all,
};
pub use discovery::{DiscoveryError, ProviderMetadata, discover};
pub use http::{
    FetchError, HostResolver, HttpPolicy, Lookup, OutboundClient, PolicyError, TransportError,
    is_global,
};
pub use id_token::{IdTokenError, IdTokenVerifier};
pub use pkce::{PkceChallenge, PkceError, PkceVerifier};
pub use provider::{
    ClientAuth, DefinitionError, ParamError, ProviderDefinition, ProviderKey, ProviderSpec,
};
pub use quirks::{
    BodyFormat, ExpiryUnit, ParamKind, RefreshSpec, RevocationAuth, RevocationSpec, RevokeTokens,
    Rotation, TokenRequestSpec, TokenResponseSpec,
};
pub use retry::{CycleFailure, Repeat, RetryPolicy};
pub use secret::{AccessToken, AuthorizationCode, IdToken, Nonce, RefreshToken, State};
pub use token::{
    ProviderError, TokenError, TokenResponse, parse_token_response, parse_token_response_with,
};
pub use userinfo::fetch_userinfo;
