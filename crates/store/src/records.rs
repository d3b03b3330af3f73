//! Plain records passed between the service layer and the backends.

use chrono::{DateTime, Utc};
use tokenwarden_domain::{AccountId, ApiKeyId, AuditId, Email, KeyScope, Name, Roles, VaultId};

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: AccountId,
    pub email: Email,
    /// Argon2id parameters (`m=..,t=..,p=..`) and salt.
    pub kdf_params: String,
    pub kdf_salt: Vec<u8>,
    /// The password verifier (never the Argon2 output itself).
    pub verifier: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub id: AccountId,
    pub email: Email,
    pub kdf_params: String,
    pub kdf_salt: Vec<u8>,
    pub verifier: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct VaultRecord {
    pub id: VaultId,
    pub name: Name,
    pub managed: bool,
    /// Generation of the vault's current DEK.
    pub dek_key_id: u32,
    pub sealing_public_key: Vec<u8>,
    /// The X25519 private key, encrypted under the DEK.
    pub sealing_private_key: Vec<u8>,
    /// The DEK under the master key (managed vaults only).
    pub master_slot: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewVault {
    pub vault: VaultRecord,
    pub owner: AccountId,
    /// The DEK under the owner's password KEK.
    pub owner_slot: Vec<u8>,
    pub first_key: NewApiKey,
    pub audit: Vec<NewAuditRecord>,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub vault_id: VaultId,
    pub name: Name,
    pub roles: Roles,
    pub scope: KeyScope,
    pub lookup_hash: Vec<u8>,
    /// The DEK under this key's KEK.
    pub slot: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Who made it: an API key id or an account id.
    pub created_by: String,
}

/// What authenticating a key needs, and nothing more.
#[derive(Debug, Clone)]
pub struct ApiKeyAuthRecord {
    pub id: ApiKeyId,
    pub vault_id: VaultId,
    pub roles: Roles,
    pub scope: KeyScope,
    /// `None` once revoked.
    pub lookup_hash: Option<Vec<u8>>,
    /// `None` once revoked.
    pub slot: Option<Vec<u8>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub vault_id: VaultId,
    pub name: Name,
    pub roles: Roles,
    pub scope: KeyScope,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Who did something recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    ApiKey(ApiKeyId),
    Account(AccountId),
    Anonymous,
}

#[derive(Debug, Clone)]
pub struct NewAuditRecord {
    pub id: AuditId,
    pub vault_id: Option<VaultId>,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// A stable dotted word: `api_key.create`, `login.failure`, ...
    pub action: &'static str,
    /// What was acted on (an id, never a secret).
    pub target: Option<String>,
    /// `success`, `denied`, `rate_limited`, `error`...
    pub outcome: &'static str,
    pub ip: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// Monotonic position in the log (the paging cursor).
    pub seq: i64,
    pub id: AuditId,
    pub vault_id: Option<VaultId>,
    pub at: DateTime<Utc>,
    pub key_id: Option<String>,
    pub account_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub ip: Option<String>,
}
