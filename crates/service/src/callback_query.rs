//! Reading the OAuth callback's query string into [`CallbackParams`].

use std::collections::BTreeMap;

use url::form_urlencoded;

use crate::{CallbackParams, CallbackRejected};

/// The authorization response parameters the callback reads itself (RFC 6749 §4.1.2,
/// §4.1.2.1; RFC 9207 `iss`); everything else goes to `extra`.
const NAMED: [&str; 4] = ["code", "state", "iss", "error"];

impl CallbackParams {
    /// Reads the raw (still encoded) query of `GET /v1/oauth/callback/{app_id}`:
    /// `application/x-www-form-urlencoded` as browsers send it (`+` is a space, invalid
    /// UTF-8 after decoding becomes U+FFFD, a name without `=` has an empty value).
    /// `code`, `state`, `iss` and `error` may each appear once; of other repeated
    /// parameters the last one counts. `cookies` are the request's binding cookies.
    pub fn from_query(
        raw_query: Option<&str>,
        cookies: Vec<(String, String)>,
    ) -> Result<Self, CallbackRejected> {
        let mut named: [Option<String>; 4] = Default::default();
        let mut extra = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(raw_query.unwrap_or("").as_bytes()) {
            match NAMED.iter().position(|n| *n == name) {
                Some(i) => {
                    if named[i].is_some() {
                        return Err(CallbackRejected::RepeatedParameter(NAMED[i]));
                    }
                    named[i] = Some(value.into_owned());
                }
                None => {
                    extra.insert(name.into_owned(), value.into_owned());
                }
            }
        }
        let [code, state, iss, error] = named;
        Ok(Self {
            code,
            state,
            iss,
            error,
            cookies,
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<CallbackParams, CallbackRejected> {
        CallbackParams::from_query(Some(q), Vec::new())
    }

    #[test]
    fn a_provider_redirect_is_read_and_decoded() {
        let p =
            parse("code=a%2Bb+c&state=s%3D1&iss=https%3A%2F%2Fid.example&realmId=42&x").unwrap();
        assert_eq!(p.code.as_deref(), Some("a+b c"));
        assert_eq!(p.state.as_deref(), Some("s=1"));
        assert_eq!(p.iss.as_deref(), Some("https://id.example"));
        assert_eq!(p.error, None);
        assert_eq!(
            p.extra,
            BTreeMap::from([
                ("realmId".to_owned(), "42".to_owned()),
                ("x".to_owned(), String::new())
            ])
        );
    }

    #[test]
    fn a_repeated_response_parameter_is_refused_and_other_repeats_keep_the_last() {
        for (q, name) in [
            ("state=a&state=b", "state"),
            ("code=a&state=s&c%6fde=b", "code"),
            ("iss=x&iss=x", "iss"),
            ("error=access_denied&error=", "error"),
        ] {
            assert!(
                matches!(parse(q), Err(CallbackRejected::RepeatedParameter(n)) if n == name),
                "{q}"
            );
        }
        let p = parse("realmId=1&realmId=2").unwrap();
        assert_eq!(p.extra.get("realmId").map(String::as_str), Some("2"));
    }

    #[test]
    fn no_query_is_an_empty_response() {
        let p = CallbackParams::from_query(None, Vec::new()).unwrap();
        assert!(p.code.is_none() && p.state.is_none() && p.extra.is_empty());
    }
}
