//! Provider definitions: what tokenwarden knows about one OAuth provider, as data.
//!
//! A definition is written as a [`ProviderSpec`] (TOML or JSON, see `providers/*.toml`)
//! and becomes a [`ProviderDefinition`] only through [`ProviderDefinition::from_spec`],
//! which checks every field against the outbound [`HttpPolicy`]. Deserialisation goes
//! through the spec because whether `http://127.0.0.1` is acceptable depends on that
//! policy, which serde cannot be given.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::http::HttpPolicy;
use crate::quirks::{
    ParamKind, RefreshSpec, RevocationSpec, TokenRequestSpec, TokenResponseSpec, fill, is_default,
    placeholders,
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
/// [`ProviderDefinition::from_spec`].
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

/// A checked provider definition. Read through its accessors; build it with
/// [`ProviderDefinition::from_spec`], [`ProviderDefinition::from_toml`] or
/// [`ProviderDefinition::from_json`]. Serialises as its [`ProviderSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "ProviderSpec")]
pub struct ProviderDefinition {
    key: ProviderKey,
    spec: ProviderSpec,
}

/// A definition that does not hold together, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    /// One field is wrong.
    #[error("provider field `{field}` {problem}")]
    Field {
        /// The field's name as written in the spec.
        field: &'static str,
        /// What is wrong, as a sentence fragment.
        problem: String,
    },
    /// The TOML or JSON text could not be read as a spec.
    #[error("provider definition could not be read: {0}")]
    Syntax(String),
}

/// A TOML error as one line: the parser's message and where it points. Some messages
/// are empty (a control character in a comment), which alone would tell an operator
/// nothing.
pub(crate) fn toml_problem(err: &toml::de::Error, text: &str) -> String {
    let message = match err.message().trim() {
        "" => "is not valid TOML",
        m => m,
    };
    let before = err.span().and_then(|span| text.get(..span.start));
    match before {
        Some(before) => {
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{message} (line {line}, column {column})")
        }
        None => message.to_owned(),
    }
}

impl DefinitionError {
    pub(crate) fn field(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Field {
            field,
            problem: problem.into(),
        }
    }

    /// The field at fault, when it is one field.
    pub fn field_name(&self) -> Option<&'static str> {
        match self {
            Self::Field { field, .. } => Some(field),
            Self::Syntax(_) => None,
        }
    }
}

/// Connect-session parameters that are wrong for a provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("params.{0} is required by this provider")]
    Missing(String),
    #[error("params.{0} is not used by this provider")]
    Unexpected(String),
    #[error("params.{name} must be {rule}")]
    Invalid { name: String, rule: &'static str },
    #[error("the parameters do not make a usable URL")]
    Unusable,
}

/// Redirect parameters that are the flow's own and never extras.
const RESERVED_REDIRECT_PARAMS: &[&str] = &["code", "state", "iss", "error"];

/// Every `{name}` in the URLs is declared in `params`, every declared one is used,
/// and names are plain identifiers.
fn check_params(spec: &ProviderSpec) -> Result<(), DefinitionError> {
    let mut used = std::collections::BTreeSet::new();
    let urls = [
        Some(&spec.authorization_url),
        Some(&spec.token_url),
        spec.refresh_url.as_ref(),
        spec.revocation_url.as_ref(),
        spec.userinfo_url.as_ref(),
        spec.jwks_uri.as_ref(),
    ];
    for (field, url) in [
        "authorization_url",
        "token_url",
        "refresh_url",
        "revocation_url",
        "userinfo_url",
        "jwks_uri",
    ]
    .into_iter()
    .zip(urls)
    {
        let Some(url) = url else { continue };
        for name in placeholders(url.as_str()) {
            // The revocation URL may also name the client and the token.
            if field == "revocation_url" && (name == "client_id" || name == "token") {
                continue;
            }
            if !spec.params.contains_key(&name) {
                return Err(DefinitionError::field(
                    field,
                    format!("uses `{{{name}}}`, which is not declared in params"),
                ));
            }
            used.insert(name);
        }
    }
    for url in &spec.api_base_urls {
        for name in placeholders(url.as_str()) {
            if !spec.params.contains_key(&name) {
                return Err(DefinitionError::field(
                    "api_base_urls",
                    format!("uses `{{{name}}}`, which is not declared in params"),
                ));
            }
            used.insert(name);
        }
    }
    for name in spec.params.keys() {
        let ident = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|c| c.is_ascii_lowercase() || c == b'_');
        if !ident {
            return Err(DefinitionError::field(
                "params",
                format!("`{name}` must be 1 to 32 of a-z and `_`"),
            ));
        }
        if !used.contains(name) {
            return Err(DefinitionError::field(
                "params",
                format!("`{name}` is declared but no URL uses it"),
            ));
        }
    }
    Ok(())
}

/// Parameters this crate sets itself; `authorize_params` must not override them, or a
/// catalog entry could disable PKCE or redirect codes elsewhere.
const RESERVED_AUTHORIZE_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
];

impl ProviderDefinition {
    /// Checks a spec against the policy and the rules each field follows.
    pub fn from_spec(spec: ProviderSpec, policy: &HttpPolicy) -> Result<Self, DefinitionError> {
        let key = ProviderKey::parse(&spec.key)?;
        check_display_name(&spec.display_name)?;
        check_endpoint("authorization_url", &spec.authorization_url, policy)?;
        check_endpoint("token_url", &spec.token_url, policy)?;
        for (field, url) in [
            ("refresh_url", &spec.refresh_url),
            ("revocation_url", &spec.revocation_url),
            ("userinfo_url", &spec.userinfo_url),
            ("jwks_uri", &spec.jwks_uri),
        ] {
            if let Some(url) = url {
                check_endpoint(field, url, policy)?;
            }
        }
        for url in &spec.api_base_urls {
            check_endpoint("api_base_urls", url, policy)?;
            if url.query().is_some() {
                return Err(DefinitionError::field(
                    "api_base_urls",
                    "must not have a query",
                ));
            }
        }
        if let Some(issuer) = &spec.issuer {
            check_issuer(issuer, policy)?;
        }
        if spec.iss_parameter_supported && spec.issuer.is_none() {
            return Err(DefinitionError::field(
                "issuer",
                "is required when iss_parameter_supported is true",
            ));
        }
        if spec.jwks_uri.is_some() && spec.issuer.is_none() {
            return Err(DefinitionError::field(
                "issuer",
                "is required when jwks_uri is given, to check id_tokens",
            ));
        }
        check_separator(&spec.scope_separator)?;
        for scope in &spec.default_scopes {
            check_scope_token(scope, &spec.scope_separator)?;
        }
        for name in spec.authorize_params.keys() {
            if RESERVED_AUTHORIZE_PARAMS.contains(&name.as_str()) {
                return Err(DefinitionError::field(
                    "authorize_params",
                    format!("must not set `{name}`, which tokenwarden sets itself"),
                ));
            }
            if name.is_empty() {
                return Err(DefinitionError::field(
                    "authorize_params",
                    "has an empty name",
                ));
            }
        }
        check_params(&spec)?;
        if spec.scope_param.is_empty()
            || RESERVED_AUTHORIZE_PARAMS.contains(&spec.scope_param.as_str())
                && spec.scope_param != "scope"
        {
            return Err(DefinitionError::field(
                "scope_param",
                "must be a parameter name tokenwarden does not set otherwise",
            ));
        }
        spec.token_response.check()?;
        spec.revocation.check()?;
        for name in &spec.redirect_extras {
            if name.is_empty() || RESERVED_REDIRECT_PARAMS.contains(&name.as_str()) {
                return Err(DefinitionError::field(
                    "redirect_extras",
                    format!("cannot keep `{name}`"),
                ));
            }
        }
        for url in &spec.docs {
            if url.scheme() != "https" {
                return Err(DefinitionError::field("docs", "must be https URLs"));
            }
        }
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

fn check_display_name(name: &str) -> Result<(), DefinitionError> {
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(DefinitionError::field(
            "display_name",
            "must be 1 to 100 printable characters",
        ));
    }
    Ok(())
}

fn check_endpoint(
    field: &'static str,
    url: &Url,
    policy: &HttpPolicy,
) -> Result<(), DefinitionError> {
    policy
        .check_url(url)
        .map_err(|e| DefinitionError::field(field, format!("is not allowed: {e}")))?;
    // RFC 6749 §3.1 and §3.2: endpoint URIs MUST NOT include a fragment.
    if url.fragment().is_some() {
        return Err(DefinitionError::field(field, "must not have a fragment"));
    }
    Ok(())
}

fn check_issuer(issuer: &str, policy: &HttpPolicy) -> Result<(), DefinitionError> {
    let url = Url::parse(issuer)
        .map_err(|e| DefinitionError::field("issuer", format!("is not a URL: {e}")))?;
    policy
        .check_url(&url)
        .map_err(|e| DefinitionError::field("issuer", format!("is not allowed: {e}")))?;
    // OIDC Discovery §2 and RFC 8414 §2: an issuer has no query and no fragment.
    if url.query().is_some() || url.fragment().is_some() {
        return Err(DefinitionError::field(
            "issuer",
            "must not have a query or fragment",
        ));
    }
    Ok(())
}

fn check_separator(separator: &str) -> Result<(), DefinitionError> {
    let ok = !separator.is_empty()
        && separator.len() <= 3
        && separator
            .chars()
            .all(|c| c == ' ' || (c.is_ascii_punctuation() && c != '"' && c != '\\'));
    if ok {
        Ok(())
    } else {
        Err(DefinitionError::field(
            "scope_separator",
            "must be 1 to 3 spaces or punctuation characters",
        ))
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub(crate) fn check_scope_token(scope: &str, separator: &str) -> Result<(), DefinitionError> {
    let ok = !scope.is_empty()
        && scope
            .bytes()
            .all(|c| c == 0x21 || (0x23..=0x5b).contains(&c) || (0x5d..=0x7e).contains(&c))
        && !scope.contains(separator);
    if ok {
        Ok(())
    } else {
        Err(DefinitionError::field(
            "default_scopes",
            "must hold scope tokens of printable ASCII without spaces, quotes, backslashes or the separator",
        ))
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
    fn keys_follow_the_lowercase_pattern() {
        for good in ["a", "0", "github", "my-app_2", &"a".repeat(63)] {
            assert!(ProviderKey::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "GitHub", "-a", "_a", "a b", "a.b", "é", &"a".repeat(64)] {
            assert!(ProviderKey::parse(bad).is_err(), "{bad}");
        }
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
