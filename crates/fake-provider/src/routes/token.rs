//! `POST /token`: the `authorization_code` and `refresh_token` grants
//! (RFC 6749 §4.1.3, §6; RFC 7636 §4.6; OIDC Core §3.1.3), with the quirks
//! and faults the handle switches on.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::behaviour::EchoSecrets;
use crate::config::ClientRegistration;
use crate::records::GrantId;
use crate::routes::client_auth::{authenticate, basic_credentials, param};
use crate::routes::form::{is_json, parse_form, parse_json};
use crate::routes::oauth_error::OAuthError;
use crate::routes::token_render::{Issued, fault_response, render_tokens};
use crate::state::{RefreshStatus, Settings, Shared, Store, lock};

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json_allowed = shared.settings().persona.is_some_and(|p| p.token_json_body);
    let form = if json_allowed && is_json(&headers) {
        parse_json(&body)
    } else {
        parse_form(&headers, &body)
    };
    let grant_type = form
        .as_ref()
        .ok()
        .and_then(|f| param(f, "grant_type"))
        .map(str::to_owned);
    shared.count(|c| {
        c.token_calls += 1;
        match grant_type.as_deref() {
            Some("authorization_code") => c.code_exchanges += 1,
            Some("refresh_token") => c.refresh_calls += 1,
            _ => {}
        }
    });

    let latency = shared.settings().token_latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let settings = shared.settings();
    let fault = shared.take_fault(grant_type.as_deref());
    if let Some(kind) = fault.clone().filter(|k| !k.after_processing()) {
        tracing::debug!(fault = ?kind, "fake provider answers a token call with a fault");
        return fault_response(&shared, kind, &settings.quirks).await;
    }

    let echoed = secrets_of(&headers, form.as_ref().map(Vec::as_slice).unwrap_or(&[]));
    let result = form.and_then(|form| {
        let client = authenticate(&shared, settings.client_auth, &headers, &form)?;
        let now = shared.now();
        match grant_type.as_deref() {
            Some("authorization_code") => exchange_code(&shared, &settings, client, &form, now),
            Some("refresh_token") => refresh(&shared, &settings, client, &form, now),
            Some(other) => Err(OAuthError::unsupported_grant_type(format!(
                "grant_type {other:?} is not supported"
            ))),
            None => Err(OAuthError::invalid_request("missing grant_type")),
        }
    });
    if let Some(kind) = fault {
        tracing::debug!(fault = ?kind, processed = result.is_ok(), "fake provider loses its answer to a processed token call");
        return fault_response(&shared, kind, &settings.quirks).await;
    }
    match result {
        Ok(issued) => render_tokens(
            issued,
            &settings,
            grant_type.as_deref() == Some("authorization_code"),
        ),
        Err(mut error) => {
            match settings.quirks.echo_secrets {
                EchoSecrets::Never => {}
                EchoSecrets::InDescription => {
                    error.description = format!("{} (request: {echoed})", error.description);
                }
                EchoSecrets::AsErrorCode => error.error = echoed.into(),
            }
            error.render(&settings.quirks)
        }
    }
}

/// The secrets a token request carried, as a careless provider quotes them.
fn secrets_of(headers: &HeaderMap, form: &[(String, String)]) -> String {
    let mut quoted: Vec<String> = ["code", "refresh_token", "code_verifier", "client_secret"]
        .into_iter()
        .filter_map(|name| param(form, name).map(|v| format!("{name}={v}")))
        .collect();
    if let Ok(Some((_, secret))) = basic_credentials(headers) {
        quoted.push(format!("client_secret={secret}"));
    }
    quoted.join(", ")
}

fn exchange_code(
    shared: &Shared,
    settings: &Settings,
    client: &ClientRegistration,
    form: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<Issued, OAuthError> {
    let code = param(form, "code").ok_or_else(|| OAuthError::invalid_request("missing code"))?;
    let mut store = lock(&shared.store);
    let Some(record) = store.codes.get_mut(code) else {
        return Err(OAuthError::invalid_grant("unknown authorization code"));
    };
    if record.used {
        // A replayed code revokes what it produced (RFC 6749 §4.1.2).
        if let Some(grant) = record.grant {
            store.revoke_grant(grant);
            shared.count(|c| c.reuse_detections += 1);
        }
        return Err(OAuthError::invalid_grant(
            "authorization code already used; tokens issued from it are revoked",
        ));
    }
    // Every attempt spends the code, so a wrong verifier cannot be retried.
    record.used = true;
    let record = record.clone();

    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if record.expires_at <= now {
        return Err(OAuthError::invalid_grant("authorization code expired"));
    }
    let sent = param(form, "redirect_uri");
    let redirect_ok = match sent {
        Some(uri) => uri == record.redirect_uri,
        None => !record.redirect_uri_sent,
    };
    if !redirect_ok {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    let verifier = param(form, "code_verifier");
    match (&record.code_challenge, verifier) {
        (None, None) => {}
        // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade.
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but the authorization request had no code_challenge",
            ));
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("missing code_verifier")),
        (Some(challenge), Some(verifier)) => {
            if !valid_verifier(verifier) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier must be 43-128 unreserved characters",
                ));
            }
            if &s256(verifier) != challenge {
                return Err(OAuthError::invalid_grant("PKCE verification failed"));
            }
        }
    }

    let grant = store.new_grant(code, &record);
    if let Some(r) = store.codes.get_mut(code) {
        r.grant = Some(grant);
    }
    let with_refresh = !settings.quirks.no_refresh_token;
    issue(
        shared,
        settings,
        &mut store,
        grant,
        &record.scope,
        with_refresh,
        record.nonce.as_deref(),
        now,
    )
}

fn refresh(
    shared: &Shared,
    settings: &Settings,
    client: &ClientRegistration,
    form: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<Issued, OAuthError> {
    let presented = param(form, "refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("missing refresh_token"))?;
    let mut store = lock(&shared.store);
    let Some(record) = store.refresh.get(presented).cloned() else {
        return Err(OAuthError::invalid_grant("unknown refresh token"));
    };
    let Some(grant) = store.grants.get(&record.grant).cloned() else {
        return Err(OAuthError::invalid_grant("unknown refresh token"));
    };
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    match record.status {
        RefreshStatus::Revoked => return Err(OAuthError::invalid_grant("refresh token revoked")),
        RefreshStatus::Rotated => {
            // Reuse of a rotated token: assume theft and revoke the whole
            // grant (RFC 9700 §4.14.2).
            store.revoke_grant(record.grant);
            shared.count(|c| c.reuse_detections += 1);
            return Err(OAuthError::invalid_grant(
                "refresh token already used; the grant is revoked",
            ));
        }
        RefreshStatus::Active => {}
    }
    if grant.revoked {
        return Err(OAuthError::invalid_grant("grant revoked"));
    }
    if record.is_dead(now, settings.refresh_lifetimes) {
        shared.count(|c| c.dead_refresh_token_refusals += 1);
        // Google's words for a refresh token that expired or was revoked.
        return Err(OAuthError::invalid_grant(
            "Token has been expired or revoked.",
        ));
    }
    let scope = match param(form, "scope") {
        None => grant.scope.clone(),
        Some(requested) => {
            let granted: Vec<&str> = grant.scope.split_whitespace().collect();
            if let Some(extra) = requested.split_whitespace().find(|s| !granted.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {extra:?} was not granted"
                )));
            }
            requested.to_owned()
        }
    };
    let quirks = &settings.quirks;
    let omit = quirks.no_refresh_token_on_refresh || quirks.no_refresh_token;
    let rotate = settings.rotate_refresh_tokens && !omit;
    let mut issued = issue(
        shared,
        settings,
        &mut store,
        record.grant,
        &scope,
        rotate,
        None,
        now,
    )?;
    if !rotate {
        // A kept token was used: its idle time starts again.
        store.touch_refresh(presented, now);
        if !omit {
            issued.refresh_token = Some(presented.to_owned());
        }
    }
    drop(store);
    shared.count(|c| c.successful_refreshes += 1);
    Ok(issued)
}

/// Issues an access token (and a refresh token, and an `id_token` when
/// `openid` was granted) for a grant.
#[expect(clippy::too_many_arguments, reason = "one call site per grant type")]
fn issue(
    shared: &Shared,
    settings: &Settings,
    store: &mut Store,
    grant: GrantId,
    scope: &str,
    with_refresh: bool,
    nonce: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Issued, OAuthError> {
    let expires_in = settings.quirks.expires_in_override.unwrap_or_else(|| {
        i64::try_from(settings.access_token_ttl.as_secs()).unwrap_or(i64::MAX / 2)
    });
    let access_token = store.issue_access(grant, expires_in, now);
    let refresh_token = with_refresh.then(|| store.issue_refresh(grant, now));
    let id_token = if shared.oidc && scope.split_whitespace().any(|s| s == "openid") {
        let client_id = store
            .grants
            .get(&grant)
            .map(|g| g.client_id.clone())
            .unwrap_or_default();
        let id_token = id_token(shared, &client_id, nonce, now)?;
        if let Some(g) = store.grants.get_mut(&grant) {
            g.id_tokens.push(id_token.clone());
        }
        Some(id_token)
    } else {
        None
    };
    Ok(Issued {
        access_token,
        refresh_token,
        expires_in,
        scope: scope.to_owned(),
        id_token,
    })
}

fn id_token(
    shared: &Shared,
    client_id: &str,
    nonce: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, OAuthError> {
    let iat = now.timestamp();
    let mut claims = json!({
        "iss": shared.issuer(),
        "sub": shared.user.subject,
        "aud": client_id,
        "iat": iat,
        "exp": iat + 3600,
        "auth_time": iat,
        "email": shared.user.email,
        "email_verified": true,
        "name": shared.user.name,
    });
    if let (Some(nonce), Some(map)) = (nonce, claims.as_object_mut()) {
        map.insert("nonce".to_owned(), Value::String(nonce.to_owned()));
    }
    shared.key.sign(&claims).map_err(|e| {
        tracing::error!(error = %e, "fake provider cannot sign an id_token");
        OAuthError::server_error("cannot sign the id_token")
    })
}

/// BASE64URL(SHA-256(verifier)) (RFC 7636 §4.2).
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// 43–128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`
/// (RFC 7636 §4.1).
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::s256;

    #[test]
    fn s256_matches_the_rfc_7636_appendix_b_example() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
