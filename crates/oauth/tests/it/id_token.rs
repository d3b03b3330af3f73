//! id_token verification against a served JWKS, with RSA, EC and Ed25519 test keys.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokenwarden_oauth::{IdToken, IdTokenError, IdTokenVerifier, Nonce, ProviderDefinition};

use crate::support::{FakeServer, Reply, loopback_client};

const RSA_PEM: &str = include_str!("keys/rsa.pem");
const EC_PEM: &str = include_str!("keys/ec.pem");
const ED_PEM: &str = include_str!("keys/ed25519.pem");
const ED_X: &str = include_str!("keys/ed25519.x");

const NOW: i64 = 1_750_000_000;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW, 0).unwrap()
}

fn jwk(pem: &str, alg: Algorithm, kid: &str) -> Value {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    };
    let mut value = serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
    value["kid"] = json!(kid);
    value["use"] = json!("sig");
    value
}

fn ed_jwk() -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": ED_X.trim(), "kid": "ed-1", "alg": "EdDSA", "use": "sig"})
}

fn jwks() -> Value {
    json!({"keys": [
        {"kty": "unknown-type", "kid": "ignored"},
        jwk(RSA_PEM, Algorithm::RS256, "rsa-1"),
        jwk(EC_PEM, Algorithm::ES256, "ec-1"),
        ed_jwk(),
    ]})
}

fn sign(alg: Algorithm, kid: &str, claims: &Value) -> IdToken {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(RSA_PEM.as_bytes()).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PEM.as_bytes()).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(ED_PEM.as_bytes()).unwrap(),
        _ => EncodingKey::from_secret(b"client-secret"),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    IdToken::new(jsonwebtoken::encode(&header, claims, &key).unwrap())
}

fn claims(server: &FakeServer) -> Value {
    json!({
        "iss": server.origin(),
        "sub": "user-42",
        "aud": "client-1",
        "exp": NOW + 300,
        "iat": NOW,
        "nonce": "nonce-1",
        "email": "ada@example.com"
    })
}

struct Setup {
    server: FakeServer,
    def: ProviderDefinition,
    verifier: IdTokenVerifier,
}

async fn setup() -> Setup {
    let server = FakeServer::start().await;
    server.reply("/jwks", Reply::json(200, jwks()));
    let def = server.provider(|_| {});
    let verifier = IdTokenVerifier::new(loopback_client(), Duration::from_secs(600));
    Setup {
        server,
        def,
        verifier,
    }
}

impl Setup {
    async fn verify(
        &self,
        token: &IdToken,
    ) -> Result<serde_json::Map<String, Value>, IdTokenError> {
        self.verifier
            .verify(
                &self.def,
                "client-1",
                token,
                Some(&Nonce::new("nonce-1")),
                now(),
            )
            .await
    }
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_verify_and_keys_are_fetched_once() {
    let s = setup().await;
    let c = claims(&s.server);

    for (alg, kid) in [
        (Algorithm::RS256, "rsa-1"),
        (Algorithm::ES256, "ec-1"),
        (Algorithm::EdDSA, "ed-1"),
    ] {
        let verified = s
            .verify(&sign(alg, kid, &c))
            .await
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(Value::Object(verified), c);
    }

    assert_eq!(s.server.requests_to("/jwks").len(), 1);
}

#[tokio::test]
async fn a_rotated_key_is_found_by_refetching_the_jwks() {
    let server = FakeServer::start().await;
    server
        .reply("/jwks", Reply::json(200, json!({"keys": [ed_jwk()]})))
        .reply("/jwks", Reply::json(200, jwks()));
    let def = server.provider(|_| {});
    let verifier = IdTokenVerifier::new(loopback_client(), Duration::from_secs(600));
    let nonce = Nonce::new("nonce-1");
    let c = claims(&server);

    verifier
        .verify(
            &def,
            "client-1",
            &sign(Algorithm::EdDSA, "ed-1", &c),
            Some(&nonce),
            now(),
        )
        .await
        .unwrap();
    verifier
        .verify(
            &def,
            "client-1",
            &sign(Algorithm::RS256, "rsa-1", &c),
            Some(&nonce),
            now(),
        )
        .await
        .unwrap();

    assert_eq!(server.requests_to("/jwks").len(), 2);
}

#[tokio::test]
async fn wrong_nonce_audience_issuer_and_expiry_are_each_refused() {
    let s = setup().await;
    let cases = [
        ("nonce", json!("nonce-2")),
        ("aud", json!("client-2")),
        ("iss", json!("https://other.example")),
        ("exp", json!(NOW - 61)),
    ];
    for (claim, value) in cases {
        let mut c = claims(&s.server);
        c[claim] = value;
        let err = s
            .verify(&sign(Algorithm::RS256, "rsa-1", &c))
            .await
            .unwrap_err();
        let expected = match claim {
            "nonce" => matches!(err, IdTokenError::NonceMismatch),
            "aud" => matches!(err, IdTokenError::WrongAudience),
            "iss" => matches!(err, IdTokenError::WrongIssuer),
            _ => matches!(err, IdTokenError::Expired),
        };
        assert!(expected, "{claim}: {err:?}");
    }
}

#[tokio::test]
async fn a_tampered_payload_fails_the_signature_check() {
    let s = setup().await;
    let token = sign(Algorithm::RS256, "rsa-1", &claims(&s.server));
    let parts: Vec<&str> = token.expose_secret().split('.').collect();
    let mut forged = claims(&s.server);
    forged["sub"] = json!("admin");
    let forged_payload = URL_SAFE_NO_PAD.encode(forged.to_string());
    let forged = IdToken::new(format!("{}.{}.{}", parts[0], forged_payload, parts[2]));

    let err = s.verify(&forged).await.unwrap_err();

    assert!(matches!(err, IdTokenError::BadSignature), "{err:?}");
}

#[tokio::test]
async fn hs256_and_none_are_refused_without_fetching_keys() {
    let s = setup().await;
    let c = claims(&s.server);
    let hs = sign(Algorithm::HS256, "rsa-1", &c);
    let none = IdToken::new(format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(c.to_string())
    ));

    let hs_err = s.verify(&hs).await.unwrap_err();
    let none_err = s.verify(&none).await.unwrap_err();

    assert!(
        matches!(hs_err, IdTokenError::UnsupportedAlgorithm),
        "{hs_err:?}"
    );
    assert!(
        matches!(
            none_err,
            IdTokenError::Malformed | IdTokenError::UnsupportedAlgorithm
        ),
        "{none_err:?}"
    );
    assert!(s.server.requests_to("/jwks").is_empty());
}

#[tokio::test]
async fn a_key_of_the_wrong_family_for_the_kid_is_unknown() {
    let s = setup().await;
    // Signed with the EC key but claiming the RSA key's kid.
    let token = sign(Algorithm::ES256, "rsa-1", &claims(&s.server));

    let err = s.verify(&token).await.unwrap_err();

    assert!(matches!(err, IdTokenError::UnknownKey), "{err:?}");
}

#[tokio::test]
async fn keys_older_than_the_ttl_are_fetched_again() {
    let server = FakeServer::start().await;
    server.reply("/jwks", Reply::json(200, jwks()));
    let def = server.provider(|_| {});
    let verifier = IdTokenVerifier::new(loopback_client(), Duration::from_secs(10));
    let token = sign(Algorithm::EdDSA, "ed-1", &claims(&server));
    let nonce = Nonce::new("nonce-1");

    for offset in [0, 5, 20] {
        let at = now() + chrono::Duration::seconds(offset);
        verifier
            .verify(&def, "client-1", &token, Some(&nonce), at)
            .await
            .unwrap();
    }

    assert_eq!(
        server.requests_to("/jwks").len(),
        2,
        "fetched at 0 s and again at 20 s"
    );
}
