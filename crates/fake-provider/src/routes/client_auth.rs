//! Client authentication at the token and revocation endpoints
//! (RFC 6749 §2.3.1): `client_secret_basic`, `client_secret_post`, or a public
//! client identified by `client_id` alone.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::config::{ClientAuthPolicy, ClientRegistration};
use crate::routes::oauth_error::OAuthError;
use crate::state::Shared;

/// Finds the first value of a form parameter.
pub(crate) fn param<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Authenticates the client of a token or revocation request.
pub(crate) fn authenticate<'s>(
    shared: &'s Shared,
    policy: ClientAuthPolicy,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Result<&'s ClientRegistration, OAuthError> {
    let basic = basic_credentials(headers)?;
    let form_id = param(form, "client_id");
    let form_secret = param(form, "client_secret");

    if let Some((id, secret)) = basic {
        if form_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "more than one client authentication method",
            ));
        }
        if form_id.is_some_and(|form_id| form_id != id) {
            return Err(OAuthError::invalid_client(
                "client_id in the body differs from the Authorization header",
                true,
            ));
        }
        if policy == ClientAuthPolicy::Post {
            return Err(OAuthError::invalid_client(
                "client_secret_basic is not allowed for this client; use client_secret_post",
                true,
            ));
        }
        return check_secret(shared, &id, &secret, true);
    }

    let Some(id) = form_id else {
        return Err(OAuthError::invalid_client(
            "no client authentication",
            false,
        ));
    };
    match form_secret {
        Some(secret) => {
            if policy == ClientAuthPolicy::Basic {
                return Err(OAuthError::invalid_client(
                    "client_secret_post is not allowed for this client; use client_secret_basic",
                    false,
                ));
            }
            check_secret(shared, id, secret, false)
        }
        None => match shared.client(id) {
            Some(client) if client.client_secret.is_none() => Ok(client),
            _ => Err(OAuthError::invalid_client(
                "client authentication required",
                false,
            )),
        },
    }
}

fn check_secret<'s>(
    shared: &'s Shared,
    id: &str,
    secret: &str,
    basic: bool,
) -> Result<&'s ClientRegistration, OAuthError> {
    match shared.client(id) {
        Some(client) if client.client_secret.as_deref() == Some(secret) => Ok(client),
        _ => Err(OAuthError::invalid_client(
            "unknown client or wrong secret",
            basic,
        )),
    }
}

/// Reads `Authorization: Basic`, whose id and secret are each
/// form-urlencoded before base64 (RFC 6749 §2.3.1).
pub(crate) fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client("malformed Basic credentials", true);
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let id = form_urldecode(id).ok_or_else(bad)?;
    let secret = form_urldecode(secret).ok_or_else(bad)?;
    Ok(Some((id, secret)))
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space,
/// `%XX` a byte. `None` on a malformed escape or invalid UTF-8.
pub(crate) fn form_urldecode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::form_urldecode;

    #[test]
    fn form_urldecode_turns_plus_into_space_and_decodes_escapes() {
        assert_eq!(form_urldecode("a+b%3A%25%2B").as_deref(), Some("a b:%+"));
        assert_eq!(form_urldecode("%C3%A9").as_deref(), Some("é"));
    }

    #[test]
    fn form_urldecode_rejects_broken_escapes() {
        assert_eq!(form_urldecode("%4"), None);
        assert_eq!(form_urldecode("%zz"), None);
        assert_eq!(form_urldecode("%FF"), None);
        assert_eq!(form_urldecode("%+1"), None);
    }
}
