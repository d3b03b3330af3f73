//! `GET /authorize` and the consent page's `POST /authorize/decision`
//! (RFC 6749 §4.1.1–4.1.2, RFC 7636, RFC 9207).

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use url::Url;

use crate::behaviour::RedirectIss;
use crate::config::AuthorizeMode;
use crate::records::AuthorizationRecord;
use crate::routes::client_auth::param;
use crate::state::{
    CODE_PREFIX, CONSENT_PREFIX, CodeRecord, PendingConsent, Shared, lock, random_value,
    secret_value,
};

/// A request that passed client and redirect URI validation.
struct Validated {
    record: AuthorizationRecord,
    /// Where the response goes.
    redirect_uri: String,
}

pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    shared.count(|c| c.authorize_calls += 1);
    let validated = match validate_client(&shared, params) {
        Ok(v) => v,
        Err(message) => return error_page(StatusCode::BAD_REQUEST, &message),
    };
    if let Err((error, description)) = validate_request(&shared, &validated.record) {
        let target = error_redirect(&shared, &validated, error, &description);
        return found(StatusCode::FOUND, &target);
    }
    lock(&shared.store)
        .authorizations
        .push(validated.record.clone());

    let mode = shared.settings().authorize_mode;
    match mode {
        AuthorizeMode::AutoApprove => {
            let target = approve(&shared, &validated);
            found(StatusCode::FOUND, &target)
        }
        AuthorizeMode::Deny => {
            let target = error_redirect(
                &shared,
                &validated,
                "access_denied",
                "the user denied access",
            );
            found(StatusCode::FOUND, &target)
        }
        AuthorizeMode::ConsentPage => consent_page(&shared, validated),
    }
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct Decision {
    consent: String,
    decision: String,
}

pub(crate) async fn decision(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<Decision>,
) -> Response {
    shared.count(|c| c.consent_decisions += 1);
    let pending = lock(&shared.store).consents.remove(&form.consent);
    let Some(pending) = pending.filter(|p| p.expires_at > shared.now()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This consent request is unknown, expired or already answered.",
        );
    };
    let validated = Validated {
        record: pending.record,
        redirect_uri: pending.redirect_uri,
    };
    let target = if form.decision == "approve" {
        approve(&shared, &validated)
    } else {
        error_redirect(
            &shared,
            &validated,
            "access_denied",
            "the user denied access",
        )
    };
    // 303: the browser follows a POST's redirect with a GET.
    found(StatusCode::SEE_OTHER, &target)
}

/// Checks what must be right before anything may be redirected
/// (RFC 6749 §4.1.2.1): the client and the redirect URI.
fn validate_client(shared: &Shared, params: Vec<(String, String)>) -> Result<Validated, String> {
    for (i, (name, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(n, _)| n == name) {
            return Err(format!("Parameter {name} is repeated (RFC 6749 §3.1)."));
        }
    }
    let client_id = param(&params, "client_id").ok_or("Missing client_id.")?;
    let client = shared
        .client(client_id)
        .ok_or_else(|| format!("Unknown client_id {client_id:?}."))?;
    let sent = param(&params, "redirect_uri").map(str::to_owned);
    let redirect_uri = match (&sent, client.redirect_uris.as_slice()) {
        (Some(uri), []) => {
            let parsed = Url::parse(uri)
                .map_err(|_| format!("redirect_uri {uri:?} is not an absolute URL."))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.fragment().is_some() {
                return Err(format!(
                    "redirect_uri {uri:?} must be http(s) without a fragment."
                ));
            }
            uri.clone()
        }
        (Some(uri), registered) => {
            if !registered.iter().any(|r| r == uri) {
                return Err(format!(
                    "redirect_uri {uri:?} is not registered for this client."
                ));
            }
            uri.clone()
        }
        (None, [only]) => only.clone(),
        (None, _) => return Err("Missing redirect_uri.".to_owned()),
    };
    let get = |name: &str| param(&params, name).map(str::to_owned);
    let record = AuthorizationRecord {
        client_id: client.client_id.clone(),
        redirect_uri: sent,
        scope: get("scope"),
        state: get("state"),
        nonce: get("nonce"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        params,
    };
    Ok(Validated {
        record,
        redirect_uri,
    })
}

/// Checks the rest; these errors are redirected to the client.
fn validate_request(
    shared: &Shared,
    r: &AuthorizationRecord,
) -> Result<(), (&'static str, String)> {
    match param(&r.params, "response_type") {
        Some("code") => {}
        Some(other) => {
            return Err((
                "unsupported_response_type",
                format!("response_type {other:?} is not supported; use code"),
            ));
        }
        None => return Err(("invalid_request", "missing response_type".to_owned())),
    }
    match (&r.code_challenge, r.code_challenge_method.as_deref()) {
        (None, None) if shared.require_pkce => {
            return Err((
                "invalid_request",
                "PKCE (code_challenge with S256) is required".to_owned(),
            ));
        }
        (None, None) => {}
        (None, Some(_)) => {
            return Err((
                "invalid_request",
                "code_challenge_method without code_challenge".to_owned(),
            ));
        }
        (Some(_), method) if method != Some("S256") => {
            return Err((
                "invalid_request",
                "code_challenge_method must be S256".to_owned(),
            ));
        }
        (Some(challenge), _) => {
            // BASE64URL(SHA-256) is 43 characters (RFC 7636 §4.2).
            let ok = challenge.len() == 43
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err((
                    "invalid_request",
                    "code_challenge is not a base64url SHA-256".to_owned(),
                ));
            }
        }
    }
    Ok(())
}

/// Issues a code and builds the success redirect.
fn approve(shared: &Shared, v: &Validated) -> String {
    let code = secret_value(CODE_PREFIX, &shared.secret_marker);
    let record = CodeRecord {
        client_id: v.record.client_id.clone(),
        redirect_uri: v.redirect_uri.clone(),
        redirect_uri_sent: v.record.redirect_uri.is_some(),
        scope: v.record.scope.clone().unwrap_or_default(),
        nonce: v.record.nonce.clone(),
        code_challenge: v.record.code_challenge.clone(),
        expires_at: shared.now()
            + chrono::Duration::from_std(shared.code_ttl).unwrap_or(chrono::Duration::minutes(10)),
        used: false,
        grant: None,
    };
    lock(&shared.store).codes.insert(code.clone(), record);
    redirect_target(shared, v, &[("code", code)])
}

fn error_redirect(shared: &Shared, v: &Validated, error: &str, description: &str) -> String {
    redirect_target(
        shared,
        v,
        &[
            ("error", error.to_owned()),
            ("error_description", description.to_owned()),
        ],
    )
}

/// The redirect URI plus the response parameters, `state` and `iss`.
fn redirect_target(shared: &Shared, v: &Validated, pairs: &[(&str, String)]) -> String {
    let iss = match shared.settings().quirks.redirect_iss {
        RedirectIss::Correct => Some(shared.issuer().to_owned()),
        RedirectIss::Omitted => None,
        RedirectIss::Wrong(other) => Some(other),
    };
    // validate_client checked that the URI parses.
    let Ok(mut url) = Url::parse(&v.redirect_uri) else {
        return v.redirect_uri.clone();
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, val) in pairs {
            query.append_pair(k, val);
        }
        if let Some(state) = &v.record.state {
            query.append_pair("state", state);
        }
        if let Some(iss) = &iss {
            query.append_pair("iss", iss);
        }
        if let Some(persona) = shared.settings().persona {
            for (k, val) in &persona.redirect_params {
                query.append_pair(k, val);
            }
        }
    }
    url.into()
}

fn found(status: StatusCode, target: &str) -> Response {
    (status, [(header::LOCATION, target.to_owned())]).into_response()
}

fn consent_page(shared: &Shared, v: Validated) -> Response {
    let id = random_value(CONSENT_PREFIX);
    let scope = v.record.scope.clone().unwrap_or_default();
    let client_id = v.record.client_id.clone();
    lock(&shared.store).consents.insert(
        id.clone(),
        PendingConsent {
            record: v.record,
            redirect_uri: v.redirect_uri,
            expires_at: shared.now() + chrono::Duration::minutes(10),
        },
    );
    let scopes: String = scope
        .split_whitespace()
        .map(|s| format!("<li><code>{}</code></li>", escape(s)))
        .collect();
    let body = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake provider: authorize</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}}.note{{color:#666;font-size:.9rem}}</style></head>
<body>
<h1>Fake provider</h1>
<p><strong>{client}</strong> wants to access the account of <strong>{user}</strong> ({email}).</p>
<p>Requested scopes:</p><ul>{scopes}</ul>
<form method="post" action="{action}">
<input type="hidden" name="consent" value="{id}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>
<p class="note">This is tokenwarden's built-in fake OAuth provider for demos and tests. No real account is involved.</p>
</body></html>"#,
        client = escape(&client_id),
        user = escape(&shared.user.name),
        email = escape(&shared.user.email),
        action = escape(&shared.endpoint("/authorize/decision")),
        id = escape(&id),
    );
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(body),
    )
        .into_response()
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Fake provider: error</title></head>\
         <body><h1>Authorization request rejected</h1><p>{}</p></body></html>",
        escape(message)
    );
    (status, Html(body)).into_response()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
