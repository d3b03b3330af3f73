//! What a connect session keeps for its callback: the secrets sealed under a key
//! derived from the one-time `state`, the state's lookup hash, and the bindings of the
//! token sets the callback writes (docs/design.md, "Connect").

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokenwarden_crypto::{Binding, DataKey, Purpose};
use tokenwarden_domain::{AppId, ConnectionId};
use tokenwarden_oauth::ProviderSpec;
use tokenwarden_store::{Actor, ConnectSessionRecord, LookupHash};
use zeroize::Zeroize;

use crate::audit::{RequestContext, record};

/// How long a connect session (its state) stays usable: RFC 9700 wants it short.
pub const SESSION_LIFETIME_MINUTES: i64 = 10;

/// What the state-derived key protects. Besides the secrets, everything the callback
/// must trust is here rather than read back from the database, which the operator could
/// edit: the vault's public sealing key (derived from the private key the key holder
/// unlocked), the provider definition and the client id.
#[derive(Serialize, Deserialize)]
pub(crate) struct SessionSecrets {
    pub(crate) client_secret: String,
    pub(crate) code_verifier: String,
    pub(crate) nonce: Option<String>,
    pub(crate) client_id: String,
    pub(crate) provider: ProviderSpec,
    pub(crate) sealing_key_id: u32,
    pub(crate) sealing_public_key: Vec<u8>,
    /// The connection's URL parameters; `provider` already has them filled in.
    #[serde(default)]
    pub(crate) params: BTreeMap<String, String>,
}

impl Drop for SessionSecrets {
    fn drop(&mut self) {
        self.client_secret.zeroize();
        self.code_verifier.zeroize();
    }
}

pub(crate) fn state_hash(state: &str) -> LookupHash {
    let mut h = Sha256::new();
    h.update(b"tokenwarden/state/v1\0");
    h.update(state.as_bytes());
    LookupHash::new(h.finalize().to_vec())
}

/// The audit record of a callback: nobody is authenticated there, so the actor is
/// anonymous and the session names the vault and connection.
pub(crate) fn connect_audit(
    ctx: &RequestContext,
    at: DateTime<Utc>,
    session: &ConnectSessionRecord,
    outcome: &'static str,
) -> tokenwarden_store::NewAuditRecord {
    record(
        ctx,
        at,
        Some(&session.vault_id),
        Actor::Anonymous,
        "connection.connect",
        Some(session.connection_id.to_string()),
        outcome,
    )
}

pub(crate) fn state_key(state: &str) -> DataKey {
    DataKey::derive_from_secret(state.as_bytes(), b"tokenwarden/connect-session/v1")
}

/// Where a token set belongs: its connection, within its app — so moving a connection
/// to another app in the database makes its tokens unreadable rather than sending them
/// to that app's provider.
pub(crate) fn token_binding<'a>(
    purpose: Purpose,
    vault: &'a tokenwarden_domain::VaultId,
    connection: &'a ConnectionId,
    app: &'a AppId,
) -> Binding<'a> {
    Binding::new(purpose, vault, connection.as_str()).within(app.as_str())
}
