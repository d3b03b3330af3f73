//! Metadata: `/.well-known/openid-configuration` (OIDC Discovery §3, also
//! served as RFC 8414 `/.well-known/oauth-authorization-server`) and `/jwks`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::ClientAuthPolicy;
use crate::state::Shared;

pub(crate) async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    shared.count(|c| c.discovery_calls += 1);
    let settings = shared.settings();
    let mut auth_methods: Vec<&str> = match settings.client_auth {
        ClientAuthPolicy::Basic => vec!["client_secret_basic"],
        ClientAuthPolicy::Post => vec!["client_secret_post"],
        ClientAuthPolicy::Either => vec!["client_secret_basic", "client_secret_post"],
    };
    if shared.clients.iter().any(|c| c.client_secret.is_none()) {
        auth_methods.push("none");
    }
    let mut doc = json!({
        "issuer": shared.issuer(),
        "authorization_endpoint": shared.endpoint("/authorize"),
        "token_endpoint": shared.endpoint("/token"),
        "revocation_endpoint": shared.endpoint("/revoke"),
        "jwks_uri": shared.endpoint("/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "authorization_response_iss_parameter_supported": !settings.quirks.hide_iss_support,
        "scopes_supported": ["openid", "email", "profile", "offline_access"],
    });
    if shared.oidc
        && let Some(map) = doc.as_object_mut()
    {
        map.insert(
            "userinfo_endpoint".to_owned(),
            json!(shared.endpoint("/userinfo")),
        );
        map.insert("subject_types_supported".to_owned(), json!(["public"]));
        map.insert(
            "id_token_signing_alg_values_supported".to_owned(),
            json!(["ES256"]),
        );
        map.insert(
            "claims_supported".to_owned(),
            json!([
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "email",
                "email_verified",
                "name"
            ]),
        );
    }
    Json(doc).into_response()
}

pub(crate) async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.count(|c| c.jwks_calls += 1);
    Json(shared.key.jwks()).into_response()
}
