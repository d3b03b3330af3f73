//! API keys: their slots, the row a request authenticates against, the listing.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenwarden_domain::{ApiKeyId, ConnectionId, KeyScope, Name, Roles, VaultId};

use crate::audit::records::NewAuditRecord;
use crate::connections::ConnectionForToken;
use crate::error::StoreResult;
use crate::rows::{Columns, Cursor};
use crate::secret::{KeySlot, LookupHash};

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub vault_id: VaultId,
    pub name: Name,
    pub roles: Roles,
    pub scope: KeyScope,
    pub lookup_hash: LookupHash,
    /// The DEK under this key's KEK.
    pub slot: KeySlot,
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
    pub lookup_hash: Option<LookupHash>,
    /// `None` once revoked.
    pub slot: Option<KeySlot>,
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

/// An API key's row with the row of the connection a request names, if its vault has it.
pub type KeyWithConnection = (ApiKeyAuthRecord, Option<ConnectionForToken>);

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Creates an API key with its slot and audit record.
    async fn create_api_key(&self, key: NewApiKey, audit: NewAuditRecord) -> StoreResult<()>;
    /// The row an API key authenticates against: one indexed point read.
    async fn api_key_auth(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKeyAuthRecord>>;
    /// [`KeyStore::api_key_auth`] and, in that key's vault,
    /// `ConnectionStore::connection_for_token` of `connection`, in one query (one read
    /// transaction on SQLite): the token call's hot path, which would otherwise pay two
    /// round trips. `None` when the key is unknown; the connection is `None` when its
    /// vault has no such connection. Nothing here checks the key: its secret must be
    /// verified before either row is used.
    async fn api_key_auth_with_connection(
        &self,
        key: &ApiKeyId,
        connection: &ConnectionId,
    ) -> StoreResult<Option<KeyWithConnection>>;
    async fn list_api_keys(&self, vault: &VaultId) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Revokes a key of `vault`: wipes its slot and lookup hash so it can never open the
    /// vault again, keeps its metadata for the listing. Returns false when no active key
    /// with that id exists in the vault.
    async fn revoke_api_key(
        &self,
        vault: &VaultId,
        id: &ApiKeyId,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool>;
    /// Sets `last_used_at` (callers throttle this; it is bookkeeping, not security).
    async fn touch_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()>;
}

/// The columns [`key_auth`] reads, from `api_keys k` (the id is the one asked for).
pub const KEY_AUTH_COLUMNS: Columns = Columns(&[
    "k.vault_id",
    "k.roles",
    "k.scope",
    "k.lookup_hash",
    "k.slot",
    "k.expires_at",
    "k.revoked_at",
    "k.last_used_at",
]);

pub fn key_auth(id: &ApiKeyId, c: &mut impl Cursor) -> StoreResult<ApiKeyAuthRecord> {
    Ok(ApiKeyAuthRecord {
        id: id.clone(),
        vault_id: c.parse("api_keys.vault_id", VaultId::parse)?,
        roles: c.roles("api_keys.roles")?,
        scope: c.key_scope("api_keys.scope")?,
        lookup_hash: c.opt_bytes("api_keys.lookup_hash")?.map(LookupHash::from),
        slot: c.opt_bytes("api_keys.slot")?.map(KeySlot::from),
        expires_at: c.opt_time("api_keys.expires_at")?,
        revoked_at: c.opt_time("api_keys.revoked_at")?,
        last_used_at: c.opt_time("api_keys.last_used_at")?,
    })
}

/// The columns [`api_key`] reads, from `api_keys k`.
pub const API_KEY_COLUMNS: Columns = Columns(&[
    "k.id",
    "k.vault_id",
    "k.name",
    "k.roles",
    "k.scope",
    "k.created_at",
    "k.expires_at",
    "k.revoked_at",
    "k.last_used_at",
]);

pub fn api_key(c: &mut impl Cursor) -> StoreResult<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: c.parse("api_keys.id", ApiKeyId::parse)?,
        vault_id: c.parse("api_keys.vault_id", VaultId::parse)?,
        name: c.parse("api_keys.name", Name::parse)?,
        roles: c.roles("api_keys.roles")?,
        scope: c.key_scope("api_keys.scope")?,
        created_at: c.time("api_keys.created_at")?,
        expires_at: c.opt_time("api_keys.expires_at")?,
        revoked_at: c.opt_time("api_keys.revoked_at")?,
        last_used_at: c.opt_time("api_keys.last_used_at")?,
    })
}
