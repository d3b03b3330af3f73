//! A persona makes the fake provider play one real provider: its endpoint paths, its
//! token request body, the shape of its token responses, the extra parameters of its
//! redirect and the way it takes revocations. The catalog conformance tests give each
//! built-in provider's documented behaviour this way, and point the catalog's URLs at
//! the fake (`https://host/path` → `{base}/host/path`), so the paths stay the real ones.

use serde_json::{Map, Value};

/// One provider's documented behaviour. Paths are relative to the fake's base URL.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Persona {
    /// Where `GET` authorization requests arrive.
    pub authorize_path: String,
    /// Where token requests arrive.
    pub token_path: String,
    /// Where refresh requests arrive, when not at `token_path` (Figma).
    pub refresh_path: Option<String>,
    /// Token requests carry a JSON object instead of a form.
    pub token_json_body: bool,
    /// The token fields are nested under this member (Slack's `authed_user`) in
    /// code-exchange responses.
    pub nest_tokens_under: Option<String>,
    /// Members added to every token response (`instance_url`, `team`, ...).
    pub extra_response_fields: Map<String, Value>,
    /// Parameters added to the authorization redirect (QuickBooks' `realmId`).
    pub redirect_params: Vec<(String, String)>,
    /// How revocations arrive, when the provider has them.
    pub revoke: Option<PersonaRevoke>,
}

/// A revocation route: its method, path (`{client_id}` and `{token}` match one segment)
/// and where the token is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonaRevoke {
    pub method: String,
    pub path: String,
    pub token: TokenSource,
}

/// Where a revocation request carries the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// A form parameter of this name.
    Form(String),
    /// A member of a JSON object body.
    Json(String),
    /// A query parameter.
    Query(String),
    /// `Authorization: Bearer`.
    Bearer,
    /// The `{token}` segment of the path.
    Path,
}

/// Whether `path` matches `pattern`, where a `{...}` segment matches any one segment;
/// returns the value of a `{token}` segment when there is one.
pub(crate) fn matches(pattern: &str, path: &str) -> Option<Option<String>> {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    if p.len() != s.len() {
        return None;
    }
    let mut token = None;
    for (a, b) in p.iter().zip(&s) {
        if a.starts_with('{') && a.ends_with('}') {
            if *a == "{token}" {
                token = Some(
                    percent_encoding::percent_decode_str(b)
                        .decode_utf8_lossy()
                        .into_owned(),
                );
            }
        } else if a != b {
            return None;
        }
    }
    Some(token)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn placeholders_match_one_segment_and_yield_the_token() {
        assert_eq!(
            matches(
                "/api.github.com/applications/{client_id}/grant",
                "/api.github.com/applications/abc/grant"
            ),
            Some(None)
        );
        assert_eq!(
            matches("/h/refresh-tokens/{token}", "/h/refresh-tokens/rt%2B1"),
            Some(Some("rt+1".to_owned()))
        );
        assert_eq!(matches("/h/a/{token}", "/h/a/b/c"), None);
    }
}
