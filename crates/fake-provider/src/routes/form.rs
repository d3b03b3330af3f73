//! Reading token and revocation request bodies: a form (RFC 6749 §3.2, with repeated
//! parameters refused) or, for personas that take one, a JSON object.

use axum::http::{HeaderMap, header};
use serde_json::Value;

use crate::routes::oauth_error::OAuthError;

pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// A JSON object body of string members, for personas whose token endpoint takes JSON.
pub(crate) fn parse_json(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect()),
        _ => Err(OAuthError::invalid_request(
            "the body must be a JSON object",
        )),
    }
}

/// Parses a form body, refusing other content types and repeated
/// parameters (RFC 6749 §3.2).
pub(crate) fn parse_form(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| OAuthError::invalid_request("malformed form body"))?;
    for (i, (name, _)) in form.iter().enumerate() {
        if form[..i].iter().any(|(n, _)| n == name) {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
    }
    Ok(form)
}
