//! The `id_token` signing key.
//!
//! FAKE, TEST-ONLY KEY. The P-256 private key below is published in this
//! source file and protects nothing; it exists so the fake provider can sign
//! `id_token`s that clients verify against `/jwks`. Never use it elsewhere.

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const FAKE_TEST_ONLY_EC_P256_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgUZnj281hkAXCijfk
TQvtXZAC3iBtZGuiMa5Px+pTQvmhRANCAAS/MJ+j0g//2Ur5TkNn5PdMVI4EGhX8
kTVqimnVvCEwtbFIjovuiUthu5QMvQnXh0fK1Wb2b+fHoozgDKPJwGXv
-----END PRIVATE KEY-----
";

/// Key id published in the JWKS and in every `id_token` header.
pub const KEY_ID: &str = "fake-provider-es256-1";

/// The signing key and its public JWK.
pub(crate) struct SigningKey {
    encoding: EncodingKey,
    jwks: JwkSet,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &KEY_ID)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub(crate) fn load() -> Result<Self, jsonwebtoken::errors::Error> {
        let encoding = EncodingKey::from_ec_pem(FAKE_TEST_ONLY_EC_P256_PRIVATE_KEY_PEM.as_bytes())?;
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)?;
        jwk.common.key_id = Some(KEY_ID.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        Ok(Self {
            encoding,
            jwks: JwkSet { keys: vec![jwk] },
        })
    }

    pub(crate) fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    pub(crate) fn sign(
        &self,
        claims: &serde_json::Value,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KEY_ID.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }
}
