//! Token endpoint responses (RFC 6749 §5.1) and errors (RFC 6749 §5.2), parsed as real
//! providers send them rather than as the RFC would like.
//!
//! This file turns a response into a [`TokenResponse`]; the errors are in `token_error`,
//! the classification of error answers in `token_classify` and the field readers in
//! `token_fields`.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Map, Value};

use crate::quirks::TokenResponseSpec;
use crate::secret::{AccessToken, IdToken, RefreshToken};
use crate::token_classify::checked_fields;
pub use crate::token_error::{ProviderError, TokenError};
use crate::token_fields::{expiry, lookup, parse_scopes, strip_secrets, take_string};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quirks::ExpiryUnit;
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
