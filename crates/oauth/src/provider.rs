//! Provider definitions: what tokenwarden knows about one OAuth provider, as data.
//!
//! A definition is written as a [`ProviderSpec`] (TOML or JSON, see `providers/*.toml`)
//! and becomes a [`ProviderDefinition`] only through [`ProviderDefinition::from_spec`],
//! which checks every field against the outbound [`HttpPolicy`]. Deserialisation goes
//! through the spec because whether `http://127.0.0.1` is acceptable depends on that
//! policy, which serde cannot be given.
//!
//! This file holds the checked [`ProviderDefinition`]; the spec types are in
//! `provider_spec`, the checks in `provider_check`, the errors in `provider_error` and
//! the `{placeholder}` filling in `template`.

use std::collections::BTreeMap;

use serde::Serialize;
use url::Url;

use crate::http::HttpPolicy;
use crate::provider_check::check_spec;
use crate::provider_error::toml_problem;
pub use crate::provider_error::{DefinitionError, ParamError};
pub use crate::provider_spec::{ClientAuth, ProviderKey, ProviderSpec};
use crate::quirks::{ParamKind, RefreshSpec, RevocationSpec, TokenRequestSpec, TokenResponseSpec};
use crate::template::fill;

/// A checked provider definition. Read through its accessors; build it with
/// [`ProviderDefinition::from_spec`], [`ProviderDefinition::from_toml`] or
/// [`ProviderDefinition::from_json`]. Serialises as its [`ProviderSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "ProviderSpec")]
pub struct ProviderDefinition {
    key: ProviderKey,
    spec: ProviderSpec,
}

impl ProviderDefinition {
    /// Checks a spec against the policy and the rules each field follows.
    pub fn from_spec(spec: ProviderSpec, policy: &HttpPolicy) -> Result<Self, DefinitionError> {
        let key = check_spec(&spec, policy)?;
        Ok(Self { key, spec })
    }

    /// The connect-session parameters this provider's URLs need.
    pub fn params(&self) -> &BTreeMap<String, ParamKind> {
        &self.spec.params
    }

    /// Checks connect-session parameters: exactly the declared ones, each of its kind.
    pub fn check_params(&self, values: &BTreeMap<String, String>) -> Result<(), ParamError> {
        for name in self.spec.params.keys() {
            if !values.contains_key(name) {
                return Err(ParamError::Missing(name.clone()));
            }
        }
        for (name, value) in values {
            let Some(kind) = self.spec.params.get(name) else {
                return Err(ParamError::Unexpected(name.clone()));
            };
            if !kind.accepts(value) {
                return Err(ParamError::Invalid {
                    name: name.clone(),
                    rule: kind.describe(),
                });
            }
        }
        Ok(())
    }

    /// This definition with every `{param}` in its URLs replaced by the connection's
    /// values (after [`Self::check_params`]). Definitions without parameters come back
    /// unchanged.
    pub fn with_params(&self, values: &BTreeMap<String, String>) -> Result<Self, ParamError> {
        self.check_params(values)?;
        if self.spec.params.is_empty() {
            return Ok(self.clone());
        }
        let expand = |url: &Url| -> Result<Url, ParamError> {
            Url::parse(&fill(url.as_str(), values)).map_err(|_| ParamError::Unusable)
        };
        let opt = |url: &Option<Url>| url.as_ref().map(expand).transpose();
        let mut spec = self.spec.clone();
        spec.authorization_url = expand(&self.spec.authorization_url)?;
        spec.token_url = expand(&self.spec.token_url)?;
        spec.revocation_url = opt(&self.spec.revocation_url)?;
        spec.refresh_url = opt(&self.spec.refresh_url)?;
        spec.userinfo_url = opt(&self.spec.userinfo_url)?;
        spec.jwks_uri = opt(&self.spec.jwks_uri)?;
        spec.issuer = self.spec.issuer.as_ref().map(|i| fill(i, values));
        spec.api_base_urls = self.api_base_urls_for(values)?;
        // The values are now part of the URLs; nothing is left to fill.
        spec.params = BTreeMap::new();
        Ok(Self {
            key: self.key.clone(),
            spec,
        })
    }

    /// The API base URLs the proxy may call for a connection with these parameters
    /// (`https://{subdomain}.zendesk.com/api/v2` becomes the connection's own host).
    pub fn api_base_urls_for(
        &self,
        values: &BTreeMap<String, String>,
    ) -> Result<Vec<Url>, ParamError> {
        self.check_params(values)?;
        self.spec
            .api_base_urls
            .iter()
            .map(|url| Url::parse(&fill(url.as_str(), values)).map_err(|_| ParamError::Unusable))
            .collect()
    }

    /// The authorization request parameter carrying the scopes.
    pub fn scope_param(&self) -> &str {
        &self.spec.scope_param
    }
    /// Where the refresh grant is sent.
    pub fn refresh_url(&self) -> &Url {
        self.spec
            .refresh_url
            .as_ref()
            .unwrap_or(&self.spec.token_url)
    }
    /// How the token endpoint is called.
    pub fn token_request(&self) -> &TokenRequestSpec {
        &self.spec.token_request
    }
    /// How token responses are read.
    pub fn token_response(&self) -> &TokenResponseSpec {
        &self.spec.token_response
    }
    /// Refresh-token rules.
    pub fn refresh(&self) -> &RefreshSpec {
        &self.spec.refresh
    }
    /// How revocation is requested.
    pub fn revocation(&self) -> &RevocationSpec {
        &self.spec.revocation
    }
    /// Redirect query parameters kept as extras.
    pub fn redirect_extras(&self) -> &[String] {
        &self.spec.redirect_extras
    }
    /// Documentation pages.
    pub fn docs(&self) -> &[Url] {
        &self.spec.docs
    }

    /// Reads and checks a TOML definition.
    pub fn from_toml(text: &str, policy: &HttpPolicy) -> Result<Self, DefinitionError> {
        let spec: ProviderSpec =
            toml::from_str(text).map_err(|e| DefinitionError::Syntax(toml_problem(&e, text)))?;
        Self::from_spec(spec, policy)
    }

    /// Reads and checks a JSON definition.
    pub fn from_json(text: &str, policy: &HttpPolicy) -> Result<Self, DefinitionError> {
        let spec: ProviderSpec =
            serde_json::from_str(text).map_err(|e| DefinitionError::Syntax(e.to_string()))?;
        Self::from_spec(spec, policy)
    }

    /// The spec this definition was built from, to store or edit.
    pub fn spec(&self) -> &ProviderSpec {
        &self.spec
    }

    /// Catalog key.
    pub fn key(&self) -> &ProviderKey {
        &self.key
    }
    /// Name shown to people.
    pub fn display_name(&self) -> &str {
        &self.spec.display_name
    }
    /// Authorization endpoint.
    pub fn authorization_url(&self) -> &Url {
        &self.spec.authorization_url
    }
    /// Token endpoint.
    pub fn token_url(&self) -> &Url {
        &self.spec.token_url
    }
    /// RFC 7009 revocation endpoint.
    pub fn revocation_url(&self) -> Option<&Url> {
        self.spec.revocation_url.as_ref()
    }
    /// OIDC userinfo endpoint.
    pub fn userinfo_url(&self) -> Option<&Url> {
        self.spec.userinfo_url.as_ref()
    }
    /// Issuer identifier.
    pub fn issuer(&self) -> Option<&str> {
        self.spec.issuer.as_deref()
    }
    /// JWKS location.
    pub fn jwks_uri(&self) -> Option<&Url> {
        self.spec.jwks_uri.as_ref()
    }
    /// API hosts the proxy may reach.
    pub fn api_base_urls(&self) -> &[Url] {
        &self.spec.api_base_urls
    }
    /// Scope separator.
    pub fn scope_separator(&self) -> &str {
        &self.spec.scope_separator
    }
    /// Scopes requested when none are given.
    pub fn default_scopes(&self) -> &[String] {
        &self.spec.default_scopes
    }
    /// Token endpoint client authentication.
    pub fn client_auth(&self) -> ClientAuth {
        self.spec.client_auth
    }
    /// Whether PKCE S256 is sent.
    pub fn pkce(&self) -> bool {
        self.spec.pkce
    }
    /// Extra authorization request parameters.
    pub fn authorize_params(&self) -> &BTreeMap<String, String> {
        &self.spec.authorize_params
    }
    /// RFC 9207: the redirect must carry `iss`.
    pub fn iss_parameter_supported(&self) -> bool {
        self.spec.iss_parameter_supported
    }
    /// Whether refresh requests repeat `scope`.
    pub fn refresh_requires_scopes(&self) -> bool {
        self.spec.refresh_requires_scopes
    }
    /// Whether this is an OpenID Connect provider (has an issuer and keys to check
    /// id_tokens with).
    pub fn is_oidc(&self) -> bool {
        self.spec.issuer.is_some() && self.spec.jwks_uri.is_some()
    }

    /// Joins scopes with this provider's separator.
    pub fn join_scopes<S: AsRef<str>>(&self, scopes: &[S]) -> String {
        scopes
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(&self.spec.scope_separator)
    }
}

impl From<ProviderDefinition> for ProviderSpec {
    fn from(def: ProviderDefinition) -> Self {
        def.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        key = "acme"
        display_name = "Acme"
        authorization_url = "https://acme.example/authorize"
        token_url = "https://acme.example/token"
    "#;

    fn spec() -> Result<ProviderSpec, toml::de::Error> {
        toml::from_str(MINIMAL)
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn strict() -> HttpPolicy {
        HttpPolicy::default()
    }

    fn field_of(result: Result<ProviderDefinition, DefinitionError>) -> Option<&'static str> {
        result.err().and_then(|e| e.field_name())
    }

    #[test]
    fn minimal_spec_gets_the_documented_defaults() -> Result<(), Box<dyn std::error::Error>> {
        let def = ProviderDefinition::from_spec(spec()?, &strict())?;
        assert_eq!(def.key().as_str(), "acme");
        assert_eq!(def.scope_separator(), " ");
        assert_eq!(def.client_auth(), ClientAuth::Basic);
        assert!(def.pkce());
        assert!(!def.iss_parameter_supported());
        assert!(def.authorize_params().is_empty());
        assert!(!def.is_oidc());
        Ok(())
    }

    #[test]
    fn json_and_toml_forms_give_the_same_definition() -> Result<(), Box<dyn std::error::Error>> {
        let from_toml = ProviderDefinition::from_toml(MINIMAL, &strict())?;
        let json = serde_json::to_string(&from_toml)?;
        let from_json = ProviderDefinition::from_json(&json, &strict())?;
        assert_eq!(from_toml, from_json);
        Ok(())
    }

    #[test]
    fn each_bad_field_is_named_in_the_error() -> Result<(), toml::de::Error> {
        type Mutation = Box<dyn Fn(&mut ProviderSpec)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("key", Box::new(|s| s.key = "Acme".into())),
            ("display_name", Box::new(|s| s.display_name = " ".into())),
            (
                "token_url",
                Box::new(|s| s.token_url = url("http://acme.example/token")),
            ),
            (
                "authorization_url",
                Box::new(|s| s.authorization_url.set_fragment(Some("x"))),
            ),
            (
                "scope_separator",
                Box::new(|s| s.scope_separator = "".into()),
            ),
            (
                "default_scopes",
                Box::new(|s| s.default_scopes = vec!["read write".into()]),
            ),
            (
                "authorize_params",
                Box::new(|s| {
                    s.authorize_params
                        .insert("code_challenge_method".into(), "plain".into());
                }),
            ),
            ("issuer", Box::new(|s| s.iss_parameter_supported = true)),
            (
                "issuer",
                Box::new(|s| s.issuer = Some("https://acme.example/?tenant=1".into())),
            ),
        ];
        for (field, mutate) in cases {
            let mut s = spec()?;
            mutate(&mut s);
            assert_eq!(
                field_of(ProviderDefinition::from_spec(s, &strict())),
                Some(field)
            );
        }
        Ok(())
    }

    #[test]
    fn loopback_endpoints_need_the_loopback_policy() -> Result<(), toml::de::Error> {
        let mut s = spec()?;
        s.token_url = url("http://127.0.0.1:8080/token");
        assert_eq!(
            field_of(ProviderDefinition::from_spec(s.clone(), &strict())),
            Some("token_url")
        );
        let dev = HttpPolicy {
            allow_loopback: true,
            ..HttpPolicy::default()
        };
        assert!(ProviderDefinition::from_spec(s, &dev).is_ok());
        Ok(())
    }

    #[test]
    fn unknown_fields_are_refused_rather_than_ignored() {
        let text = format!("{MINIMAL}\nclient_auth_method = \"post\"\n");
        assert!(matches!(
            ProviderDefinition::from_toml(&text, &strict()),
            Err(DefinitionError::Syntax(_))
        ));
    }
}
