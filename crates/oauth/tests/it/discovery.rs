//! OIDC discovery against a served `/.well-known/openid-configuration`.

use serde_json::json;
use tokenwarden_oauth::{ClientAuth, DiscoveryError, FetchError, ProviderDefinition, discover};

use crate::support::{FakeServer, Reply, loopback_client, loopback_policy};

fn document(issuer: &str) -> serde_json::Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "authorization_response_iss_parameter_supported": true
    })
}

#[tokio::test]
async fn discovery_reads_endpoints_and_capabilities_into_a_usable_definition() {
    let server = FakeServer::start().await;
    let issuer = format!("{}/realms/main", server.origin());
    server.reply(
        "/realms/main/.well-known/openid-configuration",
        Reply::json(200, document(&issuer)),
    );

    let meta = discover(&loopback_client(), &issuer).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].header("accept"), Some("application/json"));
    assert_eq!(meta.issuer, issuer);
    assert_eq!(meta.token_endpoint.as_str(), format!("{issuer}/token"));
    assert_eq!(
        meta.revocation_endpoint.as_ref().unwrap().as_str(),
        format!("{issuer}/revoke")
    );
    assert_eq!(
        meta.userinfo_endpoint.as_ref().unwrap().as_str(),
        format!("{issuer}/userinfo")
    );
    assert_eq!(
        meta.jwks_uri.as_ref().unwrap().as_str(),
        format!("{issuer}/jwks")
    );
    assert!(meta.pkce_s256);
    assert!(meta.iss_parameter_supported);
    assert_eq!(meta.client_auth, ClientAuth::Post);

    let def =
        ProviderDefinition::from_spec(meta.into_spec("keycloak", "Keycloak"), &loopback_policy())
            .unwrap();
    assert_eq!(def.issuer(), Some(issuer.as_str()));
    assert!(def.iss_parameter_supported());
    assert_eq!(def.default_scopes(), ["openid"]);
}

#[tokio::test]
async fn a_document_naming_another_issuer_is_refused() {
    let server = FakeServer::start().await;
    server.reply(
        "/.well-known/openid-configuration",
        Reply::json(200, document("https://evil.example")),
    );

    let err = discover(&loopback_client(), &server.origin())
        .await
        .unwrap_err();

    let DiscoveryError::IssuerMismatch { expected, found } = err else {
        panic!("{err:?}")
    };
    assert_eq!(expected, server.origin());
    assert_eq!(found, "https://evil.example");
}

#[tokio::test]
async fn a_missing_document_is_reported_with_its_status() {
    let server = FakeServer::start().await;

    let err = discover(&loopback_client(), &server.origin())
        .await
        .unwrap_err();

    assert!(
        matches!(err, DiscoveryError::Fetch(FetchError::Status(s)) if s == 404),
        "{err:?}"
    );
}
