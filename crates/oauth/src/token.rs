//! Token endpoint responses (RFC 6749 §5.1) and errors (RFC 6749 §5.2), parsed as real
//! providers send them rather than as the RFC would like.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Map, Value};

use crate::http::TransportError;
use crate::quirks::{ExpiryUnit, TokenResponseSpec};
use crate::secret::{AccessToken, IdToken, RefreshToken};

/// A successful token response, with its expiry made absolute.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: AccessToken,
    /// `token_type`, compared case-insensitively (RFC 6749 §7.1); `bearer` in any case
    /// is normalised to `Bearer`.
    pub token_type: String,
    /// `now + expires_in`; `None` when the provider gave no lifetime.
    pub expires_at: Option<DateTime<Utc>>,
    /// A new refresh token. On refresh, `None` means keep the old one (RFC 6749 §6).
    pub refresh_token: Option<RefreshToken>,
    /// Granted scopes when the provider says; `None` means as requested (RFC 6749 §5.1).
    pub scopes: Option<Vec<String>>,
    /// The OIDC id_token, unverified (see [`crate::IdTokenVerifier`]).
    pub id_token: Option<IdToken>,
    /// Every other field, e.g. Salesforce's `instance_url`, minus anything named like a
    /// token or secret, at any depth.
    pub extras: Map<String, Value>,
}

/// An error response from the provider, as RFC 6749 §5.2 structures it.
///
/// `Display` shows only the `error` code: the description is free text from the
/// provider and is kept for logs and developers, not for echoing to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// The error code (`invalid_grant`, `invalid_client`, ...), limited to the RFC's
    /// character set and 64 characters.
    pub error: String,
    /// `error_description`.
    pub error_description: Option<String>,
    /// `error_uri`.
    pub error_uri: Option<String>,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.error)
    }
}

/// A failed token, refresh or revocation request.
///
/// Nothing here holds a token, code or secret, and no variant keeps the response body.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `invalid_grant` (RFC 6749 §5.2): the code or refresh token is no longer good. The
    /// connection needs the user again; retrying will not help.
    #[error("the provider refused the grant: {0}")]
    InvalidGrant(ProviderError),
    /// Any other provider error (`invalid_client`, `invalid_scope`, ...).
    #[error("the provider refused the request: {0}")]
    Provider(ProviderError),
    /// Worth retrying later: 5xx, 429, `temporarily_unavailable`, timeouts, failed
    /// connections.
    #[error("transient failure at the provider{}", status_suffix(*.status))]
    Transient {
        /// The HTTP status, when a response arrived.
        status: Option<StatusCode>,
        /// The provider's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// The transport failure, when no response arrived.
        #[source]
        source: Option<TransportError>,
    },
    /// A response that is neither a token nor an error. The body is not kept: it may
    /// hold a token.
    #[error("unexpected response from the provider (HTTP {status}, content type {})", content_type.as_deref().unwrap_or("none"))]
    Malformed {
        /// The HTTP status.
        status: StatusCode,
        /// The `Content-Type` header.
        content_type: Option<String>,
    },
    /// The request could not be made: refused by the outbound policy, response too
    /// large, or another non-transient transport failure.
    #[error(transparent)]
    Transport(TransportError),
}

fn status_suffix(status: Option<StatusCode>) -> String {
    status
        .map(|s| format!(" (HTTP {})", s.as_u16()))
        .unwrap_or_default()
}

impl TokenError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// Whether the request provably never reached the provider: refused by the outbound
    /// policy, or the connection failed before a byte of it was sent (DNS, a refused or
    /// reset connect, the TLS handshake, the connect timeout). Then repeating it cannot
    /// make the provider see it twice. A timeout after connecting, a connection lost
    /// during the exchange, and any HTTP answer (5xx and 429 included) are not: the
    /// provider may have acted on the request.
    pub fn never_sent(&self) -> bool {
        match self {
            Self::Transient {
                status: None,
                source: Some(source),
                ..
            }
            | Self::Transport(source) => match source {
                TransportError::Policy(_) | TransportError::Connect(_) => true,
                // A connect timeout is both; a timeout waiting for the answer is not.
                TransportError::Timeout(e) => e.is_connect(),
                TransportError::BodyTooLarge(_) | TransportError::Other(_) => false,
            },
            _ => false,
        }
    }

    /// The provider's `Retry-After`, when it sent one with a transient error.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The structured provider error, when there is one.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            Self::InvalidGrant(e) | Self::Provider(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn with_retry_after(self, value: Option<Duration>) -> Self {
        match self {
            Self::Transient {
                status,
                retry_after: None,
                source,
            } => Self::Transient {
                status,
                retry_after: value,
                source,
            },
            other => other,
        }
    }
}

impl From<TransportError> for TokenError {
    fn from(err: TransportError) -> Self {
        if err.is_transient() {
            Self::Transient {
                status: None,
                retry_after: None,
                source: Some(err),
            }
        } else {
            Self::Transport(err)
        }
    }
}

impl From<crate::http::PolicyError> for TokenError {
    fn from(err: crate::http::PolicyError) -> Self {
        Self::Transport(TransportError::Policy(err))
    }
}

/// Parses a token endpoint response.
///
/// Copes with: JSON or form-encoded bodies (GitHub answers form-encoded unless asked
/// for JSON), a missing or wrong content type, `expires_in` as a number, a string or
/// absent (then no expiry), `scope` as a string (space- or comma-separated) or an
/// array, `token_type` in any case, an empty `refresh_token`, and an HTTP 200 whose
/// body is an error (GitHub's `bad_verification_code`). `now` is when the response
/// arrived; `expires_at` is computed from it.
pub fn parse_token_response(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<TokenResponse, TokenError> {
    parse_token_response_with(
        status,
        content_type,
        body,
        now,
        &TokenResponseSpec::default(),
    )
}

/// Token fields that [`TokenResponseSpec::token_root`] moves to the top level.
const TOKEN_FIELDS: &[&str] = &[
    "access_token",
    "token_type",
    "refresh_token",
    "expires_in",
    "scope",
    "id_token",
];

/// [`parse_token_response`] with a provider's response mapping: token fields nested
/// under `token_root`, `expires_in` in milliseconds, a default lifetime, and which
/// extras to keep.
pub fn parse_token_response_with(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    spec: &TokenResponseSpec,
) -> Result<TokenResponse, TokenError> {
    parse_token_response_redacting(status, content_type, body, now, spec, &[])
}

/// [`parse_token_response_with`] that cuts `secrets` (what the request carried) out
/// of an error's fields; see [`checked_fields`].
pub(crate) fn parse_token_response_redacting(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
    spec: &TokenResponseSpec,
    secrets: &[&str],
) -> Result<TokenResponse, TokenError> {
    let mut fields = checked_fields(status, content_type, body, secrets)?;
    let malformed = || TokenError::Malformed {
        status,
        content_type: content_type.map(str::to_owned),
    };
    // A nested object with an access token is the token; what else the top level says
    // (a bot token beside Slack's user token) is not this connection's. Without one
    // (Slack's refresh responses), the top level is read as usual.
    if let Some(root) = &spec.token_root
        && let Some(Value::Object(inner)) = fields.get_mut(root)
        && inner.contains_key("access_token")
    {
        let mut moved = Map::new();
        for name in TOKEN_FIELDS {
            if let Some(value) = inner.remove(*name) {
                moved.insert((*name).to_owned(), value);
            }
        }
        for name in TOKEN_FIELDS {
            fields.remove(*name);
        }
        fields.extend(moved);
    }
    let access_token = take_string(&mut fields, "access_token").ok_or_else(malformed)?;
    let token_type = match take_string(&mut fields, "token_type") {
        Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
        Some(t) => t,
        // RFC 6749 §5.1 requires it, but some providers omit it for bearer tokens.
        None => "Bearer".to_owned(),
    };
    let expires_at = match fields.remove("expires_in") {
        None | Some(Value::Null) => spec
            .default_lifetime_secs
            .and_then(|s| i64::try_from(s).ok())
            .and_then(chrono::Duration::try_seconds)
            .and_then(|d| now.checked_add_signed(d)),
        Some(value) => Some(expiry(&value, spec.expires_in_unit, now).ok_or_else(malformed)?),
    };
    let refresh_token = take_string(&mut fields, "refresh_token").map(RefreshToken::new);
    let id_token = take_string(&mut fields, "id_token").map(IdToken::new);
    let scopes = fields.remove("scope").and_then(parse_scopes);
    strip_secrets(&mut fields);
    if !spec.extras.is_empty() {
        fields = spec
            .extras
            .iter()
            .filter_map(|path| lookup(&fields, path).map(|v| (path.clone(), v.clone())))
            .collect();
    }
    Ok(TokenResponse {
        access_token: AccessToken::new(access_token),
        token_type,
        expires_at,
        refresh_token,
        scopes,
        id_token,
        extras: fields,
    })
}

/// Classifies a response before looking for a token: 5xx and 429 are transient, a body
/// with `error` is a provider error whatever the status, any other non-2xx or
/// unreadable body is malformed. Returns the body's fields otherwise.
///
/// `secrets` are what the request carried (the code, verifier, refresh token, client
/// secret): a careless provider quotes them in its error, whose fields reach logs and
/// answers, so they are cut out of it.
pub(crate) fn checked_fields(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
    secrets: &[&str],
) -> Result<Map<String, Value>, TokenError> {
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(TokenError::Transient {
            status: Some(status),
            retry_after: None,
            source: None,
        });
    }
    let malformed = || TokenError::Malformed {
        status,
        content_type: content_type.map(str::to_owned),
    };
    let fields = decode_body(content_type, body).ok_or_else(malformed)?;
    if let Some(err) = provider_error(&fields, secrets) {
        return Err(match err.error.as_str() {
            "invalid_grant" => TokenError::InvalidGrant(err),
            // Defined for the authorization endpoint (RFC 6749 §4.1.2.1), but some
            // token endpoints answer it too; it means "try again later".
            "temporarily_unavailable" => TokenError::Transient {
                status: Some(status),
                retry_after: None,
                source: None,
            },
            _ => TokenError::Provider(err),
        });
    }
    if !status.is_success() {
        return Err(malformed());
    }
    Ok(fields)
}

fn media_type(content_type: Option<&str>) -> Option<String> {
    content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
}

/// JSON when the content type says so, form-encoded when it says so, and for a missing
/// or vague content type (`text/plain`, `text/html`) whichever of the two parses.
fn decode_body(content_type: Option<&str>, body: &[u8]) -> Option<Map<String, Value>> {
    let json = || match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    let form = || {
        let text = std::str::from_utf8(body).ok()?.trim();
        let plausible = text.contains('=')
            && !text
                .chars()
                .any(|c| c.is_whitespace() || c == '<' || c == '{' || c == '"');
        plausible.then(|| {
            url::form_urlencoded::parse(text.as_bytes())
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect()
        })
    };
    match media_type(content_type).as_deref() {
        Some(m) if m == "application/json" || m.ends_with("+json") => json(),
        Some("application/x-www-form-urlencoded") => form(),
        _ => json().or_else(form),
    }
}

/// The RFC 6749 §5.2 error fields, when the body has an `error` string, with every
/// one of `secrets` cut out (before the code is shortened, so no part survives).
pub(crate) fn provider_error(
    fields: &Map<String, Value>,
    secrets: &[&str],
) -> Option<ProviderError> {
    let error = redact(fields.get("error")?.as_str()?, secrets);
    // RFC 6749 §5.2: error = 1*( %x20-21 / %x23-5B / %x5D-7E ). Anything else is
    // dropped so that the code is safe to log and match on.
    let error: String = error
        .chars()
        .filter(|&c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
        .take(64)
        .collect();
    let text = |name| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .map(|t| redact(t, secrets))
    };
    Some(ProviderError {
        error: if error.is_empty() {
            "unknown_error".to_owned()
        } else {
            error
        },
        error_description: text("error_description"),
        error_uri: text("error_uri"),
    })
}

/// `text` with each secret, raw or form-encoded, replaced by `[redacted]`. Secrets
/// shorter than 8 bytes are left alone: cutting them would garble the text and they
/// are no real secret.
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for form in [
            *secret,
            encoded.as_str(),
            encoded.replace('+', "%20").as_str(),
        ] {
            if text.contains(form) {
                text = text.replace(form, "[redacted]");
            }
        }
    }
    text
}

fn take_string(fields: &mut Map<String, Value>, name: &str) -> Option<String> {
    match fields.remove(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// `expires_in` as a non-negative integer, or a string holding one (seen in the wild,
/// and every value in a form-encoded body is a string).
fn expiry(value: &Value, unit: ExpiryUnit, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let seconds = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })?,
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    let seconds = match unit {
        ExpiryUnit::Seconds => seconds,
        ExpiryUnit::Milliseconds => seconds / 1000,
    };
    let delta = chrono::Duration::try_seconds(i64::try_from(seconds).ok()?)?;
    now.checked_add_signed(delta)
}

/// The value at a dotted path (`team.id`).
fn lookup<'a>(fields: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = fields.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

fn parse_scopes(value: Value) -> Option<Vec<String>> {
    match value {
        // RFC 6749 §3.3 says space-delimited; GitHub answers comma-delimited.
        Value::String(s) => Some(
            s.split([' ', ','])
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Value::Array(items) => Some(
            items
                .into_iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Removes, at any depth, every field whose name says it is a token or a secret
/// (Slack nests a user's `access_token` under `authed_user`), so that `extras` can be
/// shown and stored as metadata.
fn strip_secrets(fields: &mut Map<String, Value>) {
    fields.retain(|name, _| {
        let name = name.to_ascii_lowercase();
        !(name.ends_with("token") || name.ends_with("secret") || name.contains("password"))
    });
    for value in fields.values_mut() {
        strip_value(value);
    }
}

fn strip_value(value: &mut Value) {
    match value {
        Value::Object(map) => strip_secrets(map),
        Value::Array(items) => items.iter_mut().for_each(strip_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5)
            .single()
            .unwrap_or_default()
    }

    const JSON: Option<&str> = Some("application/json; charset=utf-8");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn ok(ct: Option<&str>, body: &str) -> Result<TokenResponse, TokenError> {
        parse_token_response(StatusCode::OK, ct, body.as_bytes(), now())
    }

    #[test]
    fn full_json_response_is_parsed_with_absolute_expiry() -> Result<(), TokenError> {
        let t = ok(
            JSON,
            r#"{"access_token":"at","token_type":"bearer","expires_in":3600,
                "refresh_token":"rt","scope":"openid email","id_token":"it",
                "instance_url":"https://x.my.salesforce.com"}"#,
        )?;
        assert_eq!(t.access_token.expose_secret(), "at");
        assert_eq!(t.token_type, "Bearer");
        assert_eq!(t.expires_at, Some(now() + chrono::Duration::seconds(3600)));
        assert_eq!(
            t.refresh_token.as_ref().map(|r| r.expose_secret()),
            Some("rt")
        );
        assert_eq!(t.id_token.as_ref().map(|r| r.expose_secret()), Some("it"));
        assert_eq!(
            t.scopes,
            Some(vec!["openid".to_owned(), "email".to_owned()])
        );
        assert_eq!(
            Value::Object(t.extras),
            serde_json::json!({"instance_url": "https://x.my.salesforce.com"})
        );
        Ok(())
    }

    #[test]
    fn slack_user_token_nested_under_authed_user_is_the_token() -> Result<(), TokenError> {
        let spec = TokenResponseSpec {
            token_root: Some("authed_user".into()),
            extras: vec!["team.id".into(), "authed_user.id".into()],
            ..TokenResponseSpec::default()
        };
        let t = parse_token_response_with(
            StatusCode::OK,
            JSON,
            br#"{"ok":true,"access_token":"xoxb-bot","token_type":"bot","team":{"id":"T1","name":"n"},
                "authed_user":{"id":"U1","access_token":"xoxp-user","token_type":"user",
                "scope":"chat:write","refresh_token":"xoxe-1","expires_in":43200}}"#,
            now(),
            &spec,
        )?;
        assert_eq!(t.access_token.expose_secret(), "xoxp-user");
        assert_eq!(t.token_type, "user");
        assert_eq!(
            t.refresh_token.as_ref().map(|r| r.expose_secret()),
            Some("xoxe-1")
        );
        assert_eq!(t.expires_at, Some(now() + chrono::Duration::seconds(43200)));
        assert_eq!(
            Value::Object(t.extras),
            serde_json::json!({"team.id": "T1", "authed_user.id": "U1"})
        );
        Ok(())
    }

    #[test]
    fn milliseconds_and_default_lifetimes_give_the_documented_expiry() -> Result<(), TokenError> {
        let ms = TokenResponseSpec {
            expires_in_unit: ExpiryUnit::Milliseconds,
            ..TokenResponseSpec::default()
        };
        let t = parse_token_response_with(
            StatusCode::OK,
            JSON,
            br#"{"access_token":"a","expires_in":"7200000"}"#,
            now(),
            &ms,
        )?;
        assert_eq!(t.expires_at, Some(now() + chrono::Duration::seconds(7200)));
        let lifetime = TokenResponseSpec {
            default_lifetime_secs: Some(600),
            ..TokenResponseSpec::default()
        };
        let t = parse_token_response_with(
            StatusCode::OK,
            JSON,
            br#"{"access_token":"a"}"#,
            now(),
            &lifetime,
        )?;
        assert_eq!(t.expires_at, Some(now() + chrono::Duration::seconds(600)));
        Ok(())
    }

    #[test]
    fn github_form_encoded_response_is_parsed() -> Result<(), TokenError> {
        let t = ok(
            FORM,
            "access_token=gho_abc&scope=repo%2Cgist&token_type=bearer",
        )?;
        assert_eq!(t.access_token.expose_secret(), "gho_abc");
        assert_eq!(t.token_type, "Bearer");
        assert_eq!(t.expires_at, None);
        assert!(t.refresh_token.is_none());
        assert_eq!(t.scopes, Some(vec!["repo".to_owned(), "gist".to_owned()]));
        assert!(t.extras.is_empty());
        Ok(())
    }

    #[test]
    fn form_body_with_a_wrong_content_type_is_still_understood() -> Result<(), TokenError> {
        let t = ok(Some("text/plain"), "access_token=a&expires_in=60")?;
        assert_eq!(t.expires_at, Some(now() + chrono::Duration::seconds(60)));
        let t = ok(None, r#"{"access_token":"b","token_type":"Bearer"}"#)?;
        assert_eq!(t.access_token.expose_secret(), "b");
        Ok(())
    }

    #[test]
    fn expires_in_may_be_a_string_a_float_null_or_missing() -> Result<(), TokenError> {
        let in_an_hour = Some(now() + chrono::Duration::seconds(3600));
        assert_eq!(
            ok(JSON, r#"{"access_token":"a","expires_in":"3600"}"#)?.expires_at,
            in_an_hour
        );
        assert_eq!(
            ok(JSON, r#"{"access_token":"a","expires_in":3600.0}"#)?.expires_at,
            in_an_hour
        );
        assert_eq!(
            ok(JSON, r#"{"access_token":"a","expires_in":null}"#)?.expires_at,
            None
        );
        assert_eq!(ok(JSON, r#"{"access_token":"a"}"#)?.expires_at, None);
        Ok(())
    }

    #[test]
    fn nonsense_expires_in_is_malformed_rather_than_never_expiring() {
        for body in [
            r#"{"access_token":"a","expires_in":-5}"#,
            r#"{"access_token":"a","expires_in":"soon"}"#,
            r#"{"access_token":"a","expires_in":1e300}"#,
        ] {
            assert!(
                matches!(ok(JSON, body), Err(TokenError::Malformed { .. })),
                "{body}"
            );
        }
    }

    #[test]
    fn token_type_is_case_insensitive_and_other_types_are_kept() -> Result<(), TokenError> {
        assert_eq!(
            ok(JSON, r#"{"access_token":"a","token_type":"BEARER"}"#)?.token_type,
            "Bearer"
        );
        assert_eq!(
            ok(JSON, r#"{"access_token":"a","token_type":"DPoP"}"#)?.token_type,
            "DPoP"
        );
        Ok(())
    }

    #[test]
    fn empty_refresh_token_counts_as_absent_and_scope_arrays_are_read() -> Result<(), TokenError> {
        let t = ok(
            JSON,
            r#"{"access_token":"a","refresh_token":"","scope":["x","y"]}"#,
        )?;
        assert!(t.refresh_token.is_none());
        assert_eq!(t.scopes, Some(vec!["x".to_owned(), "y".to_owned()]));
        Ok(())
    }

    #[test]
    fn nested_tokens_never_reach_extras() -> Result<(), TokenError> {
        let t = ok(
            JSON,
            r#"{"ok":true,"access_token":"xoxb","team":{"id":"T1"},
                "authed_user":{"id":"U1","access_token":"xoxp","refresh_token":"r","scope":"chat:write"},
                "incoming_webhook":{"url":"https://hooks"},"bot_token":"t","client_secret":"s"}"#,
        )?;
        assert_eq!(
            Value::Object(t.extras),
            serde_json::json!({
                "ok": true,
                "team": {"id": "T1"},
                "authed_user": {"id": "U1", "scope": "chat:write"},
                "incoming_webhook": {"url": "https://hooks"}
            })
        );
        Ok(())
    }

    #[test]
    fn error_with_http_200_is_an_error() {
        let err = ok(
            JSON,
            r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired.","error_uri":"https://docs.github.com/x"}"#,
        );
        match err {
            Err(TokenError::Provider(e)) => {
                assert_eq!(e.error, "bad_verification_code");
                assert_eq!(
                    e.error_description.as_deref(),
                    Some("The code passed is incorrect or expired.")
                );
                assert_eq!(e.error_uri.as_deref(), Some("https://docs.github.com/x"));
            }
            other => panic!("expected a provider error, got {other:?}"),
        }
    }

    #[test]
    fn invalid_grant_is_classified_apart_and_display_omits_the_description() {
        let err = parse_token_response(
            StatusCode::BAD_REQUEST,
            FORM,
            b"error=invalid_grant&error_description=token+rt_123+revoked",
            now(),
        );
        let Err(err) = err else {
            panic!("expected an error")
        };
        assert!(matches!(err, TokenError::InvalidGrant(_)));
        assert!(!err.is_transient());
        assert_eq!(
            err.to_string(),
            "the provider refused the grant: `invalid_grant`"
        );
    }

    #[test]
    fn secrets_the_request_carried_are_cut_out_of_a_provider_error() {
        let rt = "rt/secret+value 42";
        let body = serde_json::json!({
            "error": format!("refresh_token={rt} is unknown, and so is {}", "x".repeat(60)),
            "error_description": "got rt%2Fsecret%2Bvalue+42 and client-secret-1234",
            "error_uri": "https://p.example/e?token=rt%2Fsecret%2Bvalue%2042",
        });
        let Err(TokenError::Provider(e)) = checked_fields(
            StatusCode::BAD_REQUEST,
            JSON,
            body.to_string().as_bytes(),
            &[rt, "client-secret-1234", "short"],
        ) else {
            panic!("expected a provider error")
        };
        let kept: String = format!(
            "refresh_token=[redacted] is unknown, and so is {}",
            "x".repeat(60)
        )
        .chars()
        .take(64)
        .collect();
        assert_eq!(e.error, kept);
        assert_eq!(
            e.error_description.as_deref(),
            Some("got [redacted] and [redacted]")
        );
        assert_eq!(
            e.error_uri.as_deref(),
            Some("https://p.example/e?token=[redacted]")
        );
    }

    #[test]
    fn server_errors_rate_limits_and_temporarily_unavailable_are_transient() {
        for (status, body) in [
            (StatusCode::INTERNAL_SERVER_ERROR, "{}"),
            (StatusCode::BAD_GATEWAY, "<html>"),
            (StatusCode::TOO_MANY_REQUESTS, ""),
            (
                StatusCode::BAD_REQUEST,
                r#"{"error":"temporarily_unavailable"}"#,
            ),
        ] {
            let result = parse_token_response(status, JSON, body.as_bytes(), now());
            assert!(
                result.as_ref().is_err_and(TokenError::is_transient),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn unreadable_bodies_are_malformed_and_the_message_omits_the_body() {
        for (status, ct, body) in [
            (
                StatusCode::OK,
                Some("text/html"),
                "<html>access_token=secret</html>",
            ),
            (StatusCode::OK, JSON, r#"{"token_type":"bearer"}"#),
            (StatusCode::OK, JSON, r#"["access_token","secret"]"#),
            (StatusCode::UNAUTHORIZED, None, ""),
            (StatusCode::FOUND, Some("text/html"), "moved"),
        ] {
            let err = parse_token_response(status, ct, body.as_bytes(), now());
            let Err(err @ TokenError::Malformed { .. }) = err else {
                panic!("expected malformed for {body}, got {err:?}")
            };
            assert!(!err.to_string().contains("secret"));
            assert!(!format!("{err:?}").contains("secret"));
        }
        let err = parse_token_response(StatusCode::OK, Some("text/html"), b"<p>", now());
        assert_eq!(
            err.err().map(|e| e.to_string()),
            Some(
                "unexpected response from the provider (HTTP 200 OK, content type text/html)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn error_codes_outside_the_rfc_charset_are_cleaned() {
        let err = ok(JSON, "{\"error\":\"bad\\\"code\\n\"}");
        assert_eq!(
            err.err()
                .and_then(|e| e.provider_error().map(|p| p.error.clone())),
            Some("badcode".to_owned())
        );
    }
}
