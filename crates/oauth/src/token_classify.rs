//! How a token endpoint answer is classified before a token is looked for: transient
//! (5xx, 429), a provider error (whatever the status), or a readable body; and how the
//! secrets a request carried are cut out of a provider's error.

use reqwest::StatusCode;
use serde_json::{Map, Value};

use crate::token_error::{ProviderError, TokenError};

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

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json; charset=utf-8");

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
}
