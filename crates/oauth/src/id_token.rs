//! id_token verification (OIDC Core §3.1.3.7) against the issuer's published keys.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tracing::instrument;
use url::Url;

use crate::http::{FetchError, OutboundClient};
use crate::provider::ProviderDefinition;
use crate::secret::{IdToken, Nonce};

/// Clock skew tolerated on `exp`.
const LEEWAY_SECONDS: i64 = 60;

/// Why an id_token was refused. Never includes the token.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    /// The provider definition has no issuer or no `jwks_uri`.
    #[error("the provider is not configured for OpenID Connect (issuer and jwks_uri)")]
    NotOidc,
    /// Not a JWS in compact form, or claims that are not a JSON object.
    #[error("the id_token is not a well-formed signed JWT")]
    Malformed,
    /// `alg` outside RS*, PS*, ES256, ES384, EdDSA; `none` and HS* are refused.
    #[error("the id_token's signing algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// No published key matches `kid` and `alg`.
    #[error("no key of the issuer matches the id_token")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the id_token's signature is invalid")]
    BadSignature,
    /// `iss` is not the provider's issuer.
    #[error("the id_token comes from another issuer")]
    WrongIssuer,
    /// `aud` does not contain the client id, or `azp` names another client.
    #[error("the id_token is for another client")]
    WrongAudience,
    /// `exp` is missing or past.
    #[error("the id_token has expired")]
    Expired,
    /// `nonce` differs from the one sent.
    #[error("the id_token's nonce does not match the request")]
    NonceMismatch,
    /// The JWKS could not be fetched or read.
    #[error("fetching the issuer's keys failed: {0}")]
    Jwks(#[from] FetchError),
}

struct CachedKeys {
    fetched_at: DateTime<Utc>,
    keys: Vec<Jwk>,
}

/// Verifies id_tokens, caching each JWKS by URL for `ttl`. Share one per process.
pub struct IdTokenVerifier {
    http: OutboundClient,
    ttl: Duration,
    cache: Mutex<HashMap<Url, CachedKeys>>,
}

impl std::fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl IdTokenVerifier {
    /// A verifier fetching keys through `http`, keeping them for `ttl`.
    pub fn new(http: OutboundClient, ttl: Duration) -> Self {
        Self {
            http,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies `id_token` for `client_id` and returns its claims.
    ///
    /// Checks (OIDC Core §3.1.3.7): the signature with a key from the provider's
    /// `jwks_uri` (RS*, PS*, ES256/384, EdDSA; never `none` or HS*, since a client
    /// secret is no key we want tokens minted with); `iss` equal to the provider's
    /// issuer; `aud` containing `client_id`, and `azp` equal to it when present or when
    /// there are several audiences; `exp` after `now` less a minute of leeway; `nonce`
    /// equal to `expected_nonce` when one was sent. An unknown `kid` refetches the keys
    /// once, for key rotation.
    #[instrument(skip_all, fields(provider.key = %def.key()))]
    pub async fn verify(
        &self,
        def: &ProviderDefinition,
        client_id: &str,
        id_token: &IdToken,
        expected_nonce: Option<&Nonce>,
        now: DateTime<Utc>,
    ) -> Result<Map<String, Value>, IdTokenError> {
        let (Some(issuer), Some(jwks_uri)) = (def.issuer(), def.jwks_uri()) else {
            return Err(IdTokenError::NotOidc);
        };
        let token = id_token.expose_secret();
        let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(IdTokenError::UnsupportedAlgorithm);
        }
        let kid = header.kid.as_deref();
        // A miss in a fresh cache also refetches: the issuer may have rotated its keys.
        let key = match self.cached_key(jwks_uri, kid, header.alg, now) {
            Some(key) => key,
            None => self
                .fetched_key(jwks_uri, kid, header.alg, now)
                .await?
                .ok_or(IdTokenError::UnknownKey)?,
        };
        let claims = verify_signature(token, &key, header.alg)?;
        check_claims(&claims, issuer, client_id, expected_nonce, now)?;
        Ok(claims)
    }

    /// The key from the cached JWKS while it is younger than the TTL.
    fn cached_key(
        &self,
        jwks_uri: &Url,
        kid: Option<&str>,
        alg: Algorithm,
        now: DateTime<Utc>,
    ) -> Option<DecodingKey> {
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(jwks_uri)?;
        let fresh = (now - entry.fetched_at)
            .to_std()
            .is_ok_and(|age| age < self.ttl);
        fresh.then(|| select_key(&entry.keys, kid, alg)).flatten()
    }

    /// Fetches the JWKS, caches it, and picks the key from it.
    async fn fetched_key(
        &self,
        jwks_uri: &Url,
        kid: Option<&str>,
        alg: Algorithm,
        now: DateTime<Utc>,
    ) -> Result<Option<DecodingKey>, IdTokenError> {
        let document = self.http.get_json(jwks_uri, None).await?;
        let keys = parse_jwks(&document);
        let found = select_key(&keys, kid, alg);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                jwks_uri.clone(),
                CachedKeys {
                    fetched_at: now,
                    keys,
                },
            );
        }
        Ok(found)
    }
}

/// Reads each key on its own, so that one key of a type jsonwebtoken does not know
/// (or a malformed one) does not hide the others.
fn parse_jwks(document: &Map<String, Value>) -> Vec<Jwk> {
    document
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|key| serde_json::from_value::<Jwk>(key.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The key for `kid` (or, without `kid`, the only key fit for `alg`), when its declared
/// use and algorithm allow `alg` (RFC 7517 §4.2, §4.4).
fn select_key(keys: &[Jwk], kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let fits = |jwk: &&Jwk| {
        let use_ok =
            !matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature);
        let alg_ok = jwk
            .common
            .key_algorithm
            .is_none_or(|declared| key_algorithm(declared) == Some(alg));
        let kid_ok = kid.is_none_or(|kid| jwk.common.key_id.as_deref() == Some(kid));
        use_ok && alg_ok && kid_ok
    };
    let candidates: Vec<DecodingKey> = keys
        .iter()
        .filter(fits)
        .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .filter(|key| key.family() == alg.family())
        .collect();
    match (kid, candidates.len()) {
        (Some(_), _) | (None, 1) => candidates.into_iter().next(),
        // Without a kid, several fitting keys would make the choice a guess.
        (None, _) => None,
    }
}

fn key_algorithm(declared: KeyAlgorithm) -> Option<Algorithm> {
    declared.to_string().parse().ok()
}

fn verify_signature(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
) -> Result<Map<String, Value>, IdTokenError> {
    let mut validation = Validation::new(alg);
    // The claims are checked below against `now`, which jsonwebtoken cannot be given.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenError::BadSignature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => IdTokenError::UnsupportedAlgorithm,
            _ => IdTokenError::Malformed,
        }),
    }
}

fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    expected_nonce: Option<&Nonce>,
    now: DateTime<Utc>,
) -> Result<(), IdTokenError> {
    let text = |name| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(issuer) {
        return Err(IdTokenError::WrongIssuer);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    match text("azp") {
        Some(azp) if azp != client_id => return Err(IdTokenError::WrongAudience),
        None if audiences.len() > 1 => return Err(IdTokenError::WrongAudience),
        _ => {}
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(IdTokenError::Expired)?;
    if now.timestamp() > exp.saturating_add(LEEWAY_SECONDS) {
        return Err(IdTokenError::Expired);
    }
    if let Some(expected) = expected_nonce
        && text("nonce") != Some(expected.expose_secret())
    {
        return Err(IdTokenError::NonceMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn at(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(ts, 0).unwrap_or_default()
    }

    fn base() -> Value {
        json!({"iss": "https://issuer.example", "aud": "cid", "exp": 1000, "nonce": "n1", "sub": "u"})
    }

    fn check(c: Value, now: i64) -> Result<(), IdTokenError> {
        check_claims(
            &claims(c),
            "https://issuer.example",
            "cid",
            Some(&Nonce::new("n1")),
            at(now),
        )
    }

    #[test]
    fn good_claims_pass_within_the_leeway() {
        assert!(check(base(), 1000).is_ok());
        assert!(check(base(), 1060).is_ok());
        assert!(matches!(check(base(), 1061), Err(IdTokenError::Expired)));
    }

    #[test]
    fn issuer_audience_azp_and_nonce_are_enforced() {
        let with = |k: &str, v: Value| {
            let mut c = base();
            c[k] = v;
            c
        };
        assert!(matches!(
            check(with("iss", json!("https://issuer.example/")), 0),
            Err(IdTokenError::WrongIssuer)
        ));
        assert!(matches!(
            check(with("aud", json!("other")), 0),
            Err(IdTokenError::WrongAudience)
        ));
        assert!(matches!(
            check(with("aud", json!(["cid", "other"])), 0),
            Err(IdTokenError::WrongAudience)
        ));
        let mut multi = with("aud", json!(["cid", "other"]));
        multi["azp"] = json!("cid");
        assert!(check(multi, 0).is_ok());
        assert!(matches!(
            check(with("azp", json!("other")), 0),
            Err(IdTokenError::WrongAudience)
        ));
        assert!(matches!(
            check(with("nonce", json!("n2")), 0),
            Err(IdTokenError::NonceMismatch)
        ));
        assert!(matches!(
            check(with("exp", json!("1000")), 0),
            Err(IdTokenError::Expired)
        ));
    }
}
