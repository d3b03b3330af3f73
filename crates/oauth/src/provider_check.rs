//! The rules a provider spec must follow to become a definition: endpoints the outbound
//! policy allows, an issuer fit for OIDC, scope tokens and separator, authorization
//! parameters that cannot override the flow's own, and `{placeholders}` that match the
//! declared connect-session parameters.

use url::Url;

use crate::http::HttpPolicy;
use crate::provider_error::DefinitionError;
use crate::provider_spec::{ProviderKey, ProviderSpec};
use crate::template::placeholders;

/// Parameters this crate sets itself; `authorize_params` must not override them, or a
/// catalog entry could disable PKCE or redirect codes elsewhere.
const RESERVED_AUTHORIZE_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
];

/// Checks a spec against the policy and the rules each field follows; the key it
/// names when it passes.
pub(crate) fn check_spec(
    spec: &ProviderSpec,
    policy: &HttpPolicy,
) -> Result<ProviderKey, DefinitionError> {
    let key = ProviderKey::parse(&spec.key)?;
    check_display_name(&spec.display_name)?;
    check_endpoint("authorization_url", &spec.authorization_url, policy)?;
    check_endpoint("token_url", &spec.token_url, policy)?;
    for (field, url) in [
        ("refresh_url", &spec.refresh_url),
        ("revocation_url", &spec.revocation_url),
        ("userinfo_url", &spec.userinfo_url),
        ("jwks_uri", &spec.jwks_uri),
    ] {
        if let Some(url) = url {
            check_endpoint(field, url, policy)?;
        }
    }
    for url in &spec.api_base_urls {
        check_endpoint("api_base_urls", url, policy)?;
        if url.query().is_some() {
            return Err(DefinitionError::field(
                "api_base_urls",
                "must not have a query",
            ));
        }
    }
    if let Some(issuer) = &spec.issuer {
        check_issuer(issuer, policy)?;
    }
    if spec.iss_parameter_supported && spec.issuer.is_none() {
        return Err(DefinitionError::field(
            "issuer",
            "is required when iss_parameter_supported is true",
        ));
    }
    if spec.jwks_uri.is_some() && spec.issuer.is_none() {
        return Err(DefinitionError::field(
            "issuer",
            "is required when jwks_uri is given, to check id_tokens",
        ));
    }
    check_separator(&spec.scope_separator)?;
    for scope in &spec.default_scopes {
        check_scope_token(scope, &spec.scope_separator)?;
    }
    for name in spec.authorize_params.keys() {
        if RESERVED_AUTHORIZE_PARAMS.contains(&name.as_str()) {
            return Err(DefinitionError::field(
                "authorize_params",
                format!("must not set `{name}`, which tokenwarden sets itself"),
            ));
        }
        if name.is_empty() {
            return Err(DefinitionError::field(
                "authorize_params",
                "has an empty name",
            ));
        }
    }
    check_params(spec)?;
    if spec.scope_param.is_empty()
        || RESERVED_AUTHORIZE_PARAMS.contains(&spec.scope_param.as_str())
            && spec.scope_param != "scope"
    {
        return Err(DefinitionError::field(
            "scope_param",
            "must be a parameter name tokenwarden does not set otherwise",
        ));
    }
    spec.token_response.check()?;
    spec.revocation.check()?;
    for name in &spec.redirect_extras {
        if name.is_empty() || RESERVED_REDIRECT_PARAMS.contains(&name.as_str()) {
            return Err(DefinitionError::field(
                "redirect_extras",
                format!("cannot keep `{name}`"),
            ));
        }
    }
    for url in &spec.docs {
        if url.scheme() != "https" {
            return Err(DefinitionError::field("docs", "must be https URLs"));
        }
    }
    Ok(key)
}

/// Redirect parameters that are the flow's own and never extras.
const RESERVED_REDIRECT_PARAMS: &[&str] = &["code", "state", "iss", "error"];

/// Every `{name}` in the URLs is declared in `params`, every declared one is used,
/// and names are plain identifiers.
fn check_params(spec: &ProviderSpec) -> Result<(), DefinitionError> {
    let mut used = std::collections::BTreeSet::new();
    let urls = [
        Some(&spec.authorization_url),
        Some(&spec.token_url),
        spec.refresh_url.as_ref(),
        spec.revocation_url.as_ref(),
        spec.userinfo_url.as_ref(),
        spec.jwks_uri.as_ref(),
    ];
    for (field, url) in [
        "authorization_url",
        "token_url",
        "refresh_url",
        "revocation_url",
        "userinfo_url",
        "jwks_uri",
    ]
    .into_iter()
    .zip(urls)
    {
        let Some(url) = url else { continue };
        for name in placeholders(url.as_str()) {
            // The revocation URL may also name the client and the token.
            if field == "revocation_url" && (name == "client_id" || name == "token") {
                continue;
            }
            if !spec.params.contains_key(&name) {
                return Err(DefinitionError::field(
                    field,
                    format!("uses `{{{name}}}`, which is not declared in params"),
                ));
            }
            used.insert(name);
        }
    }
    for url in &spec.api_base_urls {
        for name in placeholders(url.as_str()) {
            if !spec.params.contains_key(&name) {
                return Err(DefinitionError::field(
                    "api_base_urls",
                    format!("uses `{{{name}}}`, which is not declared in params"),
                ));
            }
            used.insert(name);
        }
    }
    for name in spec.params.keys() {
        let ident = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|c| c.is_ascii_lowercase() || c == b'_');
        if !ident {
            return Err(DefinitionError::field(
                "params",
                format!("`{name}` must be 1 to 32 of a-z and `_`"),
            ));
        }
        if !used.contains(name) {
            return Err(DefinitionError::field(
                "params",
                format!("`{name}` is declared but no URL uses it"),
            ));
        }
    }
    Ok(())
}

fn check_display_name(name: &str) -> Result<(), DefinitionError> {
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(DefinitionError::field(
            "display_name",
            "must be 1 to 100 printable characters",
        ));
    }
    Ok(())
}

fn check_endpoint(
    field: &'static str,
    url: &Url,
    policy: &HttpPolicy,
) -> Result<(), DefinitionError> {
    policy
        .check_url(url)
        .map_err(|e| DefinitionError::field(field, format!("is not allowed: {e}")))?;
    // RFC 6749 §3.1 and §3.2: endpoint URIs MUST NOT include a fragment.
    if url.fragment().is_some() {
        return Err(DefinitionError::field(field, "must not have a fragment"));
    }
    Ok(())
}

fn check_issuer(issuer: &str, policy: &HttpPolicy) -> Result<(), DefinitionError> {
    let url = Url::parse(issuer)
        .map_err(|e| DefinitionError::field("issuer", format!("is not a URL: {e}")))?;
    policy
        .check_url(&url)
        .map_err(|e| DefinitionError::field("issuer", format!("is not allowed: {e}")))?;
    // OIDC Discovery §2 and RFC 8414 §2: an issuer has no query and no fragment.
    if url.query().is_some() || url.fragment().is_some() {
        return Err(DefinitionError::field(
            "issuer",
            "must not have a query or fragment",
        ));
    }
    Ok(())
}

fn check_separator(separator: &str) -> Result<(), DefinitionError> {
    let ok = !separator.is_empty()
        && separator.len() <= 3
        && separator
            .chars()
            .all(|c| c == ' ' || (c.is_ascii_punctuation() && c != '"' && c != '\\'));
    if ok {
        Ok(())
    } else {
        Err(DefinitionError::field(
            "scope_separator",
            "must be 1 to 3 spaces or punctuation characters",
        ))
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn check_scope_token(scope: &str, separator: &str) -> Result<(), DefinitionError> {
    let ok = !scope.is_empty()
        && scope
            .bytes()
            .all(|c| c == 0x21 || (0x23..=0x5b).contains(&c) || (0x5d..=0x7e).contains(&c))
        && !scope.contains(separator);
    if ok {
        Ok(())
    } else {
        Err(DefinitionError::field(
            "default_scopes",
            "must hold scope tokens of printable ASCII without spaces, quotes, backslashes or the separator",
        ))
    }
}
