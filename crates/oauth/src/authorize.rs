//! The authorization request (RFC 6749 §4.1.1) and the checks on its response.

use url::Url;

use crate::pkce::PkceChallenge;
use crate::provider::ProviderDefinition;
use crate::secret::{Nonce, State};

/// What one authorization request is made of, beside the provider definition.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizationRequest<'a> {
    /// The app's client id.
    pub client_id: &'a str,
    /// The registered redirect URI, sent byte for byte as given (RFC 6749 §4.1.3
    /// requires the token request to repeat it identically, so it is never re-parsed).
    pub redirect_uri: &'a str,
    /// Scopes to ask for; empty means the provider's default scopes.
    pub scopes: &'a [String],
    /// The flow's state.
    pub state: &'a State,
    /// The PKCE challenge; sent only when the provider supports PKCE.
    pub code_challenge: Option<&'a PkceChallenge>,
    /// The OIDC nonce; sent when given.
    pub nonce: Option<&'a Nonce>,
}

/// Builds the URL to send the user's browser to.
///
/// The endpoint's own query is kept (RFC 6749 §3.1), then `response_type=code`,
/// `client_id`, `redirect_uri`, `scope` (joined with the provider's separator; omitted
/// when there are no scopes at all), `state`, `code_challenge` and
/// `code_challenge_method=S256` when the provider supports PKCE, `nonce` when given,
/// and finally the provider's `authorize_params`.
pub fn authorization_url(def: &ProviderDefinition, request: &AuthorizationRequest<'_>) -> Url {
    let mut url = def.authorization_url().clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", request.client_id)
            .append_pair("redirect_uri", request.redirect_uri);
        let scopes = if request.scopes.is_empty() {
            def.default_scopes()
        } else {
            request.scopes
        };
        if !scopes.is_empty() {
            query.append_pair(def.scope_param(), &def.join_scopes(scopes));
        }
        query.append_pair("state", request.state.expose_secret());
        if let Some(challenge) = request.code_challenge.filter(|_| def.pkce()) {
            query
                .append_pair("code_challenge", challenge.as_str())
                .append_pair("code_challenge_method", challenge.method());
        }
        if let Some(nonce) = request.nonce {
            query.append_pair("nonce", nonce.expose_secret());
        }
        for (name, value) in def.authorize_params() {
            query.append_pair(name, value);
        }
    }
    url
}

/// Why an authorization response was refused by [`check_response_issuer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IssuerCheckError {
    /// The provider declares `iss` in redirects (RFC 9207 §2.4) but this one had none.
    #[error("the authorization response lacks the `iss` parameter the provider always sends")]
    Missing,
    /// `iss` names another issuer: a possible mix-up attack (RFC 9207 §2.4).
    #[error("the authorization response comes from another issuer")]
    Mismatch,
}

/// RFC 9207 §2.4: compare the redirect's `iss` with the provider's issuer by simple
/// string comparison, whenever it is present and an issuer is configured, and require
/// it when the provider's metadata says it is always sent.
pub fn check_response_issuer(
    def: &ProviderDefinition,
    received_iss: Option<&str>,
) -> Result<(), IssuerCheckError> {
    match (def.issuer(), received_iss) {
        (Some(expected), Some(got)) if expected == got => Ok(()),
        (Some(_), Some(_)) => Err(IssuerCheckError::Mismatch),
        (Some(_), None) if def.iss_parameter_supported() => Err(IssuerCheckError::Missing),
        // Without a configured issuer there is nothing to compare with; the per-app
        // redirect URI remains the mix-up defence (RFC 9700 §4.4.2).
        (Some(_), None) | (None, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpPolicy;
    use crate::pkce::PkceVerifier;
    use std::collections::HashMap;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn google() -> Result<ProviderDefinition, Box<dyn std::error::Error>> {
        let all = crate::catalog::builtin_providers()?;
        all.into_iter()
            .find(|p| p.key().as_str() == "google")
            .ok_or_else(|| "google missing".into())
    }

    fn custom(extra: &str) -> Result<ProviderDefinition, Box<dyn std::error::Error>> {
        let text = format!(
            "key = \"acme\"\ndisplay_name = \"Acme\"\n\
             authorization_url = \"https://acme.example/authorize?tenant=t1\"\n\
             token_url = \"https://acme.example/token\"\n{extra}"
        );
        Ok(ProviderDefinition::from_toml(
            &text,
            &HttpPolicy::default(),
        )?)
    }

    fn pairs(url: &Url) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn google_url_has_every_parameter_in_order() -> TestResult {
        let def = google()?;
        let state = State::new("st");
        let verifier = PkceVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into())?;
        let challenge = verifier.challenge();
        let nonce = Nonce::new("n0");
        let url = authorization_url(
            &def,
            &AuthorizationRequest {
                client_id: "cid.apps.googleusercontent.com",
                redirect_uri: "https://vault.example/v1/oauth/callback/app_1",
                scopes: &[],
                state: &state,
                code_challenge: Some(&challenge),
                nonce: Some(&nonce),
            },
        );
        assert_eq!(
            url.as_str(),
            "https://accounts.google.com/o/oauth2/v2/auth?response_type=code\
             &client_id=cid.apps.googleusercontent.com\
             &redirect_uri=https%3A%2F%2Fvault.example%2Fv1%2Foauth%2Fcallback%2Fapp_1\
             &scope=openid+email+profile&state=st\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
             &code_challenge_method=S256&nonce=n0&access_type=offline&prompt=consent"
        );
        Ok(())
    }

    #[test]
    fn endpoint_query_is_kept_and_scopes_use_the_separator() -> TestResult {
        let def = custom("scope_separator = \",\"\ndefault_scopes = [\"a\"]\n")?;
        let state = State::new("s");
        let scopes = vec!["repo".to_owned(), "read:org".to_owned()];
        let url = authorization_url(
            &def,
            &AuthorizationRequest {
                client_id: "c",
                redirect_uri: "https://v/cb",
                scopes: &scopes,
                state: &state,
                code_challenge: None,
                nonce: None,
            },
        );
        let map: HashMap<_, _> = pairs(&url).into_iter().collect();
        assert_eq!(map.get("tenant").map(String::as_str), Some("t1"));
        assert_eq!(map.get("scope").map(String::as_str), Some("repo,read:org"));
        assert!(!map.contains_key("code_challenge_method"));
        assert!(!map.contains_key("nonce"));
        Ok(())
    }

    #[test]
    fn no_challenge_is_sent_to_a_provider_without_pkce_and_no_scope_when_none_known() -> TestResult
    {
        let def = custom("pkce = false\n")?;
        let state = State::new("s");
        let challenge = PkceVerifier::generate(&mut rand::thread_rng()).challenge();
        let url = authorization_url(
            &def,
            &AuthorizationRequest {
                client_id: "c",
                redirect_uri: "https://v/cb",
                scopes: &[],
                state: &state,
                code_challenge: Some(&challenge),
                nonce: None,
            },
        );
        let names: Vec<String> = pairs(&url).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "tenant",
                "response_type",
                "client_id",
                "redirect_uri",
                "state"
            ]
        );
        Ok(())
    }

    #[test]
    fn response_issuer_is_compared_exactly_and_required_when_declared() -> TestResult {
        let plain = custom("")?;
        let oidc = custom("issuer = \"https://acme.example\"\n")?;
        let rfc9207 =
            custom("issuer = \"https://acme.example\"\niss_parameter_supported = true\n")?;
        assert_eq!(check_response_issuer(&plain, None), Ok(()));
        assert_eq!(check_response_issuer(&plain, Some("https://x")), Ok(()));
        assert_eq!(check_response_issuer(&oidc, None), Ok(()));
        assert_eq!(
            check_response_issuer(&oidc, Some("https://acme.example")),
            Ok(())
        );
        assert_eq!(
            check_response_issuer(&oidc, Some("https://acme.example/")),
            Err(IssuerCheckError::Mismatch)
        );
        assert_eq!(
            check_response_issuer(&rfc9207, None),
            Err(IssuerCheckError::Missing)
        );
        assert_eq!(
            check_response_issuer(&rfc9207, Some("https://acme.example")),
            Ok(())
        );
        Ok(())
    }
}
