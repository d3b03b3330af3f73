//! The written form of a provider definition: [`ProviderSpec`] (the serde shape of
//! `providers/*.toml` and of the API's JSON), its [`ProviderKey`] and [`ClientAuth`],
//! and the defaults a spec leaves out.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::provider_error::DefinitionError;
use crate::quirks::{
    ParamKind, RefreshSpec, RevocationSpec, TokenRequestSpec, TokenResponseSpec, is_default,
};

/// A provider's catalog key: `[a-z0-9][a-z0-9_-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ProviderKey(String);

impl ProviderKey {
    /// Parses a key; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, DefinitionError> {
        let mut bytes = s.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok =
            bytes.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
        if first_ok && rest_ok && s.len() <= 63 {
            Ok(Self(s.to_owned()))
        } else {
            Err(DefinitionError::field(
                "key",
                "must be 1 to 63 characters of a-z, 0-9, `_` or `-`, starting with a letter or digit",
            ))
        }
    }

    /// The key as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProviderKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How the client authenticates at the token and revocation endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with form-encoded id and secret (RFC 6749 §2.3.1).
    #[default]
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

/// A provider definition as written in a catalog file or sent to the API; checked by
/// [`ProviderDefinition::from_spec`](crate::provider::ProviderDefinition::from_spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// Catalog key, `[a-z0-9][a-z0-9_-]{0,62}`.
    pub key: String,
    /// Name shown to people.
    pub display_name: String,
    /// Authorization endpoint (RFC 6749 §3.1).
    pub authorization_url: Url,
    /// Token endpoint (RFC 6749 §3.2).
    pub token_url: Url,
    /// RFC 7009 revocation endpoint, when the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<Url>,
    /// OIDC userinfo endpoint (OIDC Core §5.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<Url>,
    /// Issuer identifier, compared byte for byte with `iss` in id_tokens and redirects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Where the issuer's signing keys are published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<Url>,
    /// API hosts the proxy may forward to.
    #[serde(default)]
    pub api_base_urls: Vec<Url>,
    /// Joins scopes in the `scope` parameter; RFC 6749 §3.3 says space, some use comma.
    #[serde(default = "default_separator")]
    pub scope_separator: String,
    /// Scopes requested when the app asks for none.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// Client authentication at the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Whether the provider accepts PKCE with S256 (RFC 7636).
    #[serde(default = "yes")]
    pub pkce: bool,
    /// Extra authorization request parameters, e.g. Google's `access_type=offline`.
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// RFC 9207 `authorization_response_iss_parameter_supported`: the redirect carries
    /// `iss`, and a redirect without it must be refused.
    #[serde(default)]
    pub iss_parameter_supported: bool,
    /// The provider wants `scope` again on refresh (most do not; RFC 6749 §6 makes it
    /// optional).
    #[serde(default)]
    pub refresh_requires_scopes: bool,
    /// Connect-session parameters the URLs use as `{name}` (`tenant`, `subdomain`,
    /// `shop`), with what each may hold.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, ParamKind>,
    /// The authorization request parameter that carries the scopes (Slack asks for
    /// user-token scopes in `user_scope`).
    #[serde(default = "scope_param", skip_serializing_if = "is_scope")]
    pub scope_param: String,
    /// A separate endpoint for the refresh grant (Figma); the token endpoint otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_url: Option<Url>,
    /// How the token endpoint is called.
    #[serde(default, skip_serializing_if = "is_default")]
    pub token_request: TokenRequestSpec,
    /// How token responses are read.
    #[serde(default, skip_serializing_if = "is_default")]
    pub token_response: TokenResponseSpec,
    /// Refresh-token rules.
    #[serde(default, skip_serializing_if = "is_default")]
    pub refresh: RefreshSpec,
    /// How revocation is requested at `revocation_url`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub revocation: RevocationSpec,
    /// Query parameters of the authorization redirect kept as extras (QuickBooks'
    /// `realmId`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_extras: Vec<String>,
    /// The provider's documentation the definition was written from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docs: Vec<Url>,
    /// Behaviour the documentation did not let the authors confirm.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed: Vec<String>,
}

impl ProviderSpec {
    /// A spec with these endpoints and every other field at its default.
    pub fn new(key: &str, display_name: &str, authorization_url: Url, token_url: Url) -> Self {
        Self {
            key: key.to_owned(),
            display_name: display_name.to_owned(),
            authorization_url,
            token_url,
            revocation_url: None,
            userinfo_url: None,
            issuer: None,
            jwks_uri: None,
            api_base_urls: Vec::new(),
            scope_separator: default_separator(),
            default_scopes: Vec::new(),
            client_auth: ClientAuth::Basic,
            pkce: true,
            authorize_params: BTreeMap::new(),
            iss_parameter_supported: false,
            refresh_requires_scopes: false,
            params: BTreeMap::new(),
            scope_param: scope_param(),
            refresh_url: None,
            token_request: TokenRequestSpec::default(),
            token_response: TokenResponseSpec::default(),
            refresh: RefreshSpec::default(),
            revocation: RevocationSpec::default(),
            redirect_extras: Vec::new(),
            docs: Vec::new(),
            unconfirmed: Vec::new(),
        }
    }
}

fn default_separator() -> String {
    " ".to_owned()
}

fn yes() -> bool {
    true
}

fn scope_param() -> String {
    "scope".to_owned()
}

fn is_scope(name: &String) -> bool {
    name == "scope"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_lowercase_pattern() {
        for good in ["a", "0", "github", "my-app_2", &"a".repeat(63)] {
            assert!(ProviderKey::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "GitHub", "-a", "_a", "a b", "a.b", "é", &"a".repeat(64)] {
            assert!(ProviderKey::parse(bad).is_err(), "{bad}");
        }
    }
}
