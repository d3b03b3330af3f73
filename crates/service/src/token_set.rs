//! The plaintext of a stored token set, and its (de)serialisation. Exists only inside
//! one operation, between decrypting and encrypting.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use tokenwarden_crypto::Plaintext;
use tokenwarden_oauth::AccessToken;
use zeroize::{Zeroize, Zeroizing};

use crate::{ServiceError, ServiceResult};

#[derive(Serialize, Deserialize)]
pub(crate) struct TokenSet {
    /// One secret type from the provider's answer (or the store) to the caller's.
    #[serde(serialize_with = "expose", deserialize_with = "access_token")]
    pub access_token: AccessToken,
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(default)]
    pub extras: Map<String, Value>,
    /// The connection's provider URL parameters (`tenant`, `subdomain`, `shop`), so that
    /// refresh, revocation and the proxy can rebuild its URLs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

impl TokenSet {
    pub(crate) fn to_bytes(&self) -> ServiceResult<Zeroizing<Vec<u8>>> {
        serde_json::to_vec(self)
            .map(Zeroizing::new)
            .map_err(ServiceError::internal)
    }

    pub(crate) fn from_plaintext(plain: &Plaintext) -> ServiceResult<Self> {
        serde_json::from_slice(plain.as_bytes()).map_err(|_| {
            ServiceError::internal(std::io::Error::other("stored token set is not readable"))
        })
    }
}

impl Drop for TokenSet {
    fn drop(&mut self) {
        if let Some(r) = self.refresh_token.as_mut() {
            r.zeroize();
        }
        if let Some(i) = self.id_token.as_mut() {
            i.zeroize();
        }
    }
}

/// Writes the access token into the plaintext that is encrypted at once.
fn expose<S: Serializer>(token: &AccessToken, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(token.expose_secret())
}

fn access_token<'de, D: Deserializer<'de>>(deserializer: D) -> Result<AccessToken, D::Error> {
    String::deserialize(deserializer).map(AccessToken::new)
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .finish_non_exhaustive()
    }
}
