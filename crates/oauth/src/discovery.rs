//! OpenID Connect discovery (OpenID Connect Discovery 1.0 §4): turning an issuer into
//! the endpoints and capabilities a provider definition needs.

use serde_json::{Map, Value};
use tracing::instrument;
use url::Url;

use crate::http::{FetchError, OutboundClient, PolicyError};
use crate::provider::{ClientAuth, ProviderSpec};

/// What discovery learnt about an issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    /// The issuer, identical to the one asked for.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: Url,
    /// `token_endpoint`.
    pub token_endpoint: Url,
    /// `revocation_endpoint` (RFC 8414 §2).
    pub revocation_endpoint: Option<Url>,
    /// `userinfo_endpoint`.
    pub userinfo_endpoint: Option<Url>,
    /// `jwks_uri`.
    pub jwks_uri: Option<Url>,
    /// `code_challenge_methods_supported` contains `S256`.
    pub pkce_s256: bool,
    /// `authorization_response_iss_parameter_supported` (RFC 9207 §3).
    pub iss_parameter_supported: bool,
    /// Picked from `token_endpoint_auth_methods_supported`.
    pub client_auth: ClientAuth,
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The issuer is not an acceptable URL.
    #[error("issuer is not an acceptable URL: {0}")]
    InvalidIssuer(String),
    /// Fetching the document failed.
    #[error("fetching the discovery document failed: {0}")]
    Fetch(#[from] FetchError),
    /// OIDC Discovery §4.3: the document's `issuer` must equal the issuer asked for.
    #[error("the discovery document is for issuer `{found}`, not `{expected}`")]
    IssuerMismatch {
        /// The issuer asked for.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// A required field is absent.
    #[error("the discovery document lacks `{0}`")]
    MissingField(&'static str),
    /// A field is present but unusable.
    #[error("the discovery document's `{field}` is unusable: {problem}")]
    InvalidField {
        /// The metadata field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Neither `client_secret_basic` nor `client_secret_post` is supported.
    #[error("the provider supports neither client_secret_basic nor client_secret_post")]
    UnsupportedClientAuth,
}

/// Fetches `{issuer}/.well-known/openid-configuration` and reads it.
///
/// The issuer must be an https URL without query or fragment (http allowed by the
/// loopback policy); a trailing `/` is removed before the well-known suffix is added
/// (OIDC Discovery §4), but the comparison with the document's `issuer` is byte for
/// byte with the issuer as given (§4.3), which defeats impersonation by a document
/// served from another issuer's site.
#[instrument(skip_all, fields(oidc.issuer = %issuer))]
pub async fn discover(
    http: &OutboundClient,
    issuer: &str,
) -> Result<ProviderMetadata, DiscoveryError> {
    let url = well_known_url(issuer, http)?;
    let document = http.get_json(&url, None).await?;
    parse_metadata(issuer, &document, http)
}

fn well_known_url(issuer: &str, http: &OutboundClient) -> Result<Url, DiscoveryError> {
    let parsed = Url::parse(issuer).map_err(|e| DiscoveryError::InvalidIssuer(e.to_string()))?;
    http.policy()
        .check_url(&parsed)
        .map_err(|e| DiscoveryError::InvalidIssuer(e.to_string()))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(DiscoveryError::InvalidIssuer(
            "an issuer has no query or fragment".to_owned(),
        ));
    }
    let base = issuer.strip_suffix('/').unwrap_or(issuer);
    Url::parse(&format!("{base}/.well-known/openid-configuration"))
        .map_err(|e| DiscoveryError::InvalidIssuer(e.to_string()))
}

/// Reads a discovery document for `issuer`; every endpoint must pass the same outbound
/// policy as the issuer.
pub fn parse_metadata(
    issuer: &str,
    document: &Map<String, Value>,
    http: &OutboundClient,
) -> Result<ProviderMetadata, DiscoveryError> {
    let found = document
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or(DiscoveryError::MissingField("issuer"))?;
    if found != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: found.to_owned(),
        });
    }
    let endpoint = |field: &'static str| -> Result<Option<Url>, DiscoveryError> {
        let Some(value) = document.get(field) else {
            return Ok(None);
        };
        let invalid = |problem: String| DiscoveryError::InvalidField { field, problem };
        let text = value
            .as_str()
            .ok_or_else(|| invalid("not a string".to_owned()))?;
        let url = Url::parse(text).map_err(|e| invalid(e.to_string()))?;
        http.policy()
            .check_url(&url)
            .map_err(|e: PolicyError| invalid(e.to_string()))?;
        Ok(Some(url))
    };
    let required =
        |field: &'static str| endpoint(field)?.ok_or(DiscoveryError::MissingField(field));
    let strings = |field: &'static str| -> Option<Vec<&str>> {
        document
            .get(field)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect())
    };

    // RFC 8414 §2: when omitted, the default is client_secret_basic.
    let auth_methods = strings("token_endpoint_auth_methods_supported")
        .unwrap_or_else(|| vec!["client_secret_basic"]);
    let client_auth = if auth_methods.contains(&"client_secret_basic") {
        ClientAuth::Basic
    } else if auth_methods.contains(&"client_secret_post") {
        ClientAuth::Post
    } else {
        return Err(DiscoveryError::UnsupportedClientAuth);
    };

    Ok(ProviderMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: required("authorization_endpoint")?,
        token_endpoint: required("token_endpoint")?,
        revocation_endpoint: endpoint("revocation_endpoint")?,
        userinfo_endpoint: endpoint("userinfo_endpoint")?,
        jwks_uri: endpoint("jwks_uri")?,
        // RFC 8414 §2: omitted means PKCE is not supported.
        pkce_s256: strings("code_challenge_methods_supported")
            .is_some_and(|methods| methods.contains(&"S256")),
        iss_parameter_supported: document
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        client_auth,
    })
}

impl ProviderMetadata {
    /// A provider spec from this metadata, to adjust (explicit fields given beside the
    /// issuer override discovery) and check with
    /// [`crate::ProviderDefinition::from_spec`]. Asks for `openid` by default.
    pub fn into_spec(self, key: &str, display_name: &str) -> ProviderSpec {
        let mut spec = ProviderSpec::new(
            key,
            display_name,
            self.authorization_endpoint,
            self.token_endpoint,
        );
        spec.revocation_url = self.revocation_endpoint;
        spec.userinfo_url = self.userinfo_endpoint;
        spec.issuer = Some(self.issuer);
        spec.jwks_uri = self.jwks_uri;
        spec.default_scopes = vec!["openid".to_owned()];
        spec.client_auth = self.client_auth;
        spec.pkce = self.pkce_s256;
        spec.iss_parameter_supported = self.iss_parameter_supported;
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpPolicy;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn doc(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn google_like() -> Map<String, Value> {
        doc(serde_json::json!({
            "issuer": "https://accounts.example.com",
            "authorization_endpoint": "https://accounts.example.com/o/oauth2/v2/auth",
            "token_endpoint": "https://oauth2.example.com/token",
            "revocation_endpoint": "https://oauth2.example.com/revoke",
            "userinfo_endpoint": "https://openidconnect.example.com/v1/userinfo",
            "jwks_uri": "https://www.example.com/oauth2/v3/certs",
            "code_challenge_methods_supported": ["plain", "S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        }))
    }

    #[test]
    fn metadata_fields_are_read() -> TestResult {
        let http = HttpPolicy::default().build()?;
        let meta = parse_metadata("https://accounts.example.com", &google_like(), &http)?;
        assert_eq!(
            meta.token_endpoint.as_str(),
            "https://oauth2.example.com/token"
        );
        assert_eq!(
            meta.revocation_endpoint.as_ref().map(Url::as_str),
            Some("https://oauth2.example.com/revoke")
        );
        assert!(meta.pkce_s256);
        assert!(!meta.iss_parameter_supported);
        assert_eq!(meta.client_auth, ClientAuth::Basic);
        let spec = meta.into_spec("acme", "Acme");
        let def = crate::ProviderDefinition::from_spec(spec, &HttpPolicy::default())?;
        assert!(def.is_oidc());
        Ok(())
    }

    #[test]
    fn issuer_must_match_byte_for_byte() -> TestResult {
        let http = HttpPolicy::default().build()?;
        let result = parse_metadata("https://accounts.example.com/", &google_like(), &http);
        assert!(matches!(result, Err(DiscoveryError::IssuerMismatch { .. })));
        Ok(())
    }

    #[test]
    fn post_only_providers_get_post_and_others_are_refused() -> TestResult {
        let http = HttpPolicy::default().build()?;
        let mut d = google_like();
        d.insert(
            "token_endpoint_auth_methods_supported".into(),
            serde_json::json!(["client_secret_post"]),
        );
        assert_eq!(
            parse_metadata("https://accounts.example.com", &d, &http)?.client_auth,
            ClientAuth::Post
        );
        d.insert(
            "token_endpoint_auth_methods_supported".into(),
            serde_json::json!(["private_key_jwt"]),
        );
        assert!(matches!(
            parse_metadata("https://accounts.example.com", &d, &http),
            Err(DiscoveryError::UnsupportedClientAuth)
        ));
        Ok(())
    }

    #[test]
    fn missing_or_private_endpoints_are_named() -> TestResult {
        let http = HttpPolicy::default().build()?;
        let mut d = google_like();
        d.remove("token_endpoint");
        assert!(matches!(
            parse_metadata("https://accounts.example.com", &d, &http),
            Err(DiscoveryError::MissingField("token_endpoint"))
        ));
        let mut d = google_like();
        d.insert(
            "jwks_uri".into(),
            Value::String("https://169.254.169.254/keys".into()),
        );
        assert!(matches!(
            parse_metadata("https://accounts.example.com", &d, &http),
            Err(DiscoveryError::InvalidField {
                field: "jwks_uri",
                ..
            })
        ));
        let mut d = google_like();
        d.remove("code_challenge_methods_supported");
        assert!(!parse_metadata("https://accounts.example.com", &d, &http)?.pkce_s256);
        Ok(())
    }

    #[test]
    fn well_known_url_drops_one_trailing_slash_of_a_path() -> TestResult {
        let http = HttpPolicy::default().build()?;
        assert_eq!(
            well_known_url("https://login.example.com/tenant/v2.0/", &http)?.as_str(),
            "https://login.example.com/tenant/v2.0/.well-known/openid-configuration"
        );
        assert!(matches!(
            well_known_url("http://login.example.com", &http),
            Err(DiscoveryError::InvalidIssuer(_))
        ));
        Ok(())
    }
}
