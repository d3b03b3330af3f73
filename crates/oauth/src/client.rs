//! Calls to the token endpoint (RFC 6749 §4.1.3, §6) and the revocation endpoint
//! (RFC 7009), with the provider's client authentication.

use std::fmt;

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};
use secrecy::{ExposeSecret as _, SecretString};
use tracing::instrument;
use url::Url;
use zeroize::Zeroizing;

use crate::http::OutboundClient;
use crate::pkce::PkceVerifier;
use crate::provider::{ClientAuth, ProviderDefinition};
use crate::quirks::{BodyFormat, RevocationAuth, RevokeTokens};
use crate::secret::{AccessToken, AuthorizationCode, RefreshToken};
use crate::token::{TokenError, TokenResponse, parse_token_response_redacting};
use crate::token_classify::checked_fields;

/// An app's client credentials at one provider.
#[derive(Clone)]
pub struct ClientCredentials {
    /// The client id; public.
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

/// Exchanges an authorization code for tokens (RFC 6749 §4.1.3).
///
/// `redirect_uri` must be byte-identical to the one in the authorization request.
/// `verifier` is the flow's PKCE verifier when the provider supports PKCE (RFC 7636
/// §4.5). `now` is taken as the response time for `expires_at`; the network time
/// between makes the computed expiry slightly early, which errs on the safe side.
#[instrument(skip_all, fields(provider.key = %def.key()))]
pub async fn exchange_code(
    http: &OutboundClient,
    def: &ProviderDefinition,
    credentials: &ClientCredentials,
    code: &AuthorizationCode,
    redirect_uri: &str,
    verifier: Option<&PkceVerifier>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, TokenError> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.expose_secret()),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(verifier) = verifier.filter(|_| def.pkce()) {
        form.push(("code_verifier", verifier.expose_secret()));
    }
    token_request(http, def, def.token_url(), credentials, form, now).await
}

/// Refreshes an access token (RFC 6749 §6).
///
/// `scopes` are sent only when not empty; RFC 6749 §6 makes them optional (the grant
/// keeps its scopes) but some providers (see
/// [`ProviderDefinition::refresh_requires_scopes`]) want them again. A response
/// without `refresh_token` means the old refresh token stays valid.
#[instrument(skip_all, fields(provider.key = %def.key()))]
pub async fn refresh(
    http: &OutboundClient,
    def: &ProviderDefinition,
    credentials: &ClientCredentials,
    refresh_token: &RefreshToken,
    scopes: &[String],
    now: DateTime<Utc>,
) -> Result<TokenResponse, TokenError> {
    let joined = def.join_scopes(scopes);
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose_secret()),
    ];
    if !scopes.is_empty() {
        form.push(("scope", joined.as_str()));
    }
    token_request(http, def, def.refresh_url(), credentials, form, now).await
}

/// A token to revoke, which also gives the `token_type_hint` (RFC 7009 §2.1).
#[derive(Debug, Clone, Copy)]
pub enum RevocableToken<'a> {
    /// An access token.
    Access(&'a AccessToken),
    /// A refresh token; revoking it usually revokes its access tokens too (RFC 7009 §2.1).
    Refresh(&'a RefreshToken),
}

/// The outcome of [`revoke`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The provider answered 200: revoked, or already invalid (RFC 7009 §2.2).
    Revoked,
    /// The provider has no RFC 7009 endpoint; nothing was sent.
    NotSupported,
}

/// Revokes one token as the provider's [`RevocationSpec`] says: RFC 7009 by default,
/// or another method, body format, token parameter or client authentication
/// (GitHub's `DELETE /applications/{client_id}/grant` with Basic and JSON, Dropbox's
/// bearer call, HubSpot's token in the path). `access` is the connection's access
/// token, for providers that authenticate the call with it.
#[instrument(skip_all, fields(provider.key = %def.key()))]
pub async fn revoke(
    http: &OutboundClient,
    def: &ProviderDefinition,
    credentials: &ClientCredentials,
    token: RevocableToken<'_>,
    access: &AccessToken,
    now: DateTime<Utc>,
) -> Result<Revocation, TokenError> {
    let Some(url) = def.revocation_url() else {
        return Ok(Revocation::NotSupported);
    };
    let spec = def.revocation();
    let (value, hint) = match token {
        RevocableToken::Access(t) => (t.expose_secret(), "access_token"),
        RevocableToken::Refresh(t) => (t.expose_secret(), "refresh_token"),
    };
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let url_text = Zeroizing::new(
        url.as_str()
            .replace("%7Bclient_id%7D", &encode(&credentials.client_id))
            .replace("%7Btoken%7D", &encode(value)),
    );
    let token_in_url = url.as_str().contains("%7Btoken%7D");
    let url = Url::parse(&url_text).map_err(|_| TokenError::Malformed {
        status: reqwest::StatusCode::BAD_REQUEST,
        content_type: None,
    })?;
    let auth = spec.auth.unwrap_or(match def.client_auth() {
        ClientAuth::Basic => RevocationAuth::Basic,
        ClientAuth::Post => RevocationAuth::Post,
    });
    let mut params: Vec<(&str, &str)> = Vec::new();
    if !token_in_url && auth != RevocationAuth::Bearer {
        params.push((spec.token_param.as_str(), value));
        if spec.token_type_hint {
            params.push(("token_type_hint", hint));
        }
    }
    let method = if spec.method == "DELETE" {
        Method::DELETE
    } else {
        Method::POST
    };
    let mut request = http
        .request(method, &url)?
        .header(ACCEPT, "application/json");
    match auth {
        RevocationAuth::Basic => {
            let (id, secret) = basic_credentials(credentials);
            request = request.basic_auth(id, Some(secret.as_str()));
        }
        RevocationAuth::Post => {
            params.push(("client_id", &credentials.client_id));
            params.push(("client_secret", credentials.client_secret.expose_secret()));
        }
        RevocationAuth::ClientId => params.push(("client_id", &credentials.client_id)),
        RevocationAuth::Bearer => request = request.bearer_auth(access.expose_secret()),
        RevocationAuth::None => {}
    }
    if !params.is_empty() {
        request = with_params(request, spec.format, params)?;
    }
    let (meta, body) = http.send(request, now).await?;
    if meta.status.is_success() {
        // RFC 7009 §2.2: the content of a 200 response is ignored.
        return Ok(Revocation::Revoked);
    }
    // RFC 7009 §2.2.1: errors are RFC 6749 §5.2 errors, and 503 means retry later.
    let secrets = [
        value,
        credentials.client_secret.expose_secret(),
        access.expose_secret(),
    ];
    let err = match checked_fields(meta.status, meta.content_type.as_deref(), &body, &secrets) {
        Err(err) => err,
        Ok(_) => TokenError::Malformed {
            status: meta.status,
            content_type: meta.content_type,
        },
    };
    Err(err.with_retry_after(meta.retry_after))
}

/// Revokes a connection's tokens, choosing which as the provider's
/// [`RevocationSpec::tokens`] says.
pub async fn revoke_all(
    http: &OutboundClient,
    def: &ProviderDefinition,
    credentials: &ClientCredentials,
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
    now: DateTime<Utc>,
) -> Result<Revocation, TokenError> {
    let tokens: Vec<RevocableToken<'_>> = match (def.revocation().tokens, refresh) {
        (RevokeTokens::RefreshThenAccess, Some(r)) => {
            vec![RevocableToken::Refresh(r), RevocableToken::Access(access)]
        }
        (RevokeTokens::RefreshOrAccess, Some(r)) => vec![RevocableToken::Refresh(r)],
        _ => vec![RevocableToken::Access(access)],
    };
    let mut outcome = Revocation::NotSupported;
    for token in tokens {
        outcome = revoke(http, def, credentials, token, access, now).await?;
    }
    Ok(outcome)
}

/// Token request parameters whose values are secrets, for cutting out of errors.
const SECRET_PARAMS: [&str; 4] = ["code", "code_verifier", "refresh_token", "client_secret"];

async fn token_request(
    http: &OutboundClient,
    def: &ProviderDefinition,
    url: &Url,
    credentials: &ClientCredentials,
    mut form: Vec<(&str, &str)>,
    now: DateTime<Utc>,
) -> Result<TokenResponse, TokenError> {
    let format = def.token_request().format;
    let method = if format == BodyFormat::Query {
        Method::GET
    } else {
        Method::POST
    };
    let mut request = http
        .request(method, url)?
        .header(ACCEPT, "application/json");
    match def.client_auth() {
        ClientAuth::Basic => {
            let (id, secret) = basic_credentials(credentials);
            // reqwest base64-encodes `id:secret` and marks the header sensitive.
            request = request.basic_auth(id, Some(secret.as_str()));
        }
        ClientAuth::Post => {
            // RFC 6749 §2.3.1: client_secret_post sends both in the body.
            form.push(("client_id", &credentials.client_id));
            form.push(("client_secret", credentials.client_secret.expose_secret()));
        }
    }
    let mut secrets: Vec<&str> = form
        .iter()
        .filter(|(name, _)| SECRET_PARAMS.contains(name))
        .map(|(_, value)| *value)
        .collect();
    secrets.push(credentials.client_secret.expose_secret());
    let request = with_params(request, format, form)?;
    let (meta, body) = http.send(request, now).await?;
    let result = parse_token_response_redacting(
        meta.status,
        meta.content_type.as_deref(),
        &body,
        now,
        def.token_response(),
        &secrets,
    );
    if let Err(err) = &result {
        tracing::debug!(http.status = meta.status.as_u16(), error = %err, "token request failed");
    }
    result.map_err(|err| err.with_retry_after(meta.retry_after))
}

/// Puts parameters where the format says: a form body, a JSON object body, or the
/// query string. The serialised body is zeroised once copied into the request.
fn with_params(
    request: RequestBuilder,
    format: BodyFormat,
    params: Vec<(&str, &str)>,
) -> Result<RequestBuilder, TokenError> {
    Ok(match format {
        BodyFormat::Form => {
            let body = Zeroizing::new(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params)
                    .finish(),
            );
            request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.as_bytes().to_vec())
        }
        BodyFormat::Json => {
            let object: serde_json::Map<String, serde_json::Value> = params
                .into_iter()
                .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
                .collect();
            let body =
                Zeroizing::new(
                    serde_json::to_vec(&object).map_err(|_| TokenError::Malformed {
                        status: reqwest::StatusCode::BAD_REQUEST,
                        content_type: None,
                    })?,
                );
            request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec())
        }
        BodyFormat::Query => request.query(&params),
    })
}

/// RFC 6749 §2.3.1: the client id and secret are each encoded with
/// `application/x-www-form-urlencoded` before they become the Basic user and password,
/// so a `:` in the id cannot shift the split.
fn basic_credentials(credentials: &ClientCredentials) -> (String, Zeroizing<String>) {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    (
        encode(&credentials.client_id),
        Zeroizing::new(encode(credentials.client_secret.expose_secret())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() -> Result<(), Box<dyn std::error::Error>>
    {
        let credentials = ClientCredentials {
            client_id: "my:client id%".to_owned(),
            client_secret: SecretString::from("s3:cr et%/ü"),
        };
        let (id, secret) = basic_credentials(&credentials);
        assert_eq!(id, "my%3Aclient+id%25");
        assert_eq!(secret.as_str(), "s3%3Acr+et%25%2F%C3%BC");

        let request = reqwest::Client::new()
            .post("https://example.com/token")
            .basic_auth(id, Some(secret.as_str()))
            .build()?;
        let header = request
            .headers()
            .get(reqwest::header::AUTHORIZATION)
            .ok_or("no Authorization header")?;
        let expected = format!(
            "Basic {}",
            STANDARD.encode("my%3Aclient+id%25:s3%3Acr+et%25%2F%C3%BC")
        );
        assert_eq!(header.to_str()?, expected);
        assert!(header.is_sensitive());
        Ok(())
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let credentials = ClientCredentials {
            client_id: "cid".to_owned(),
            client_secret: SecretString::from("hunter2"),
        };
        assert_eq!(
            format!("{credentials:?}"),
            r#"ClientCredentials { client_id: "cid", client_secret: "[redacted]" }"#
        );
    }
}
