//! Connections (a stored token set for one account at a provider) and the refresh
//! coordination on their rows: lease, fenced commit, re-wrap.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenwarden_domain::{AppId, AppKey, ConnectionId, Scopes, VaultId};

use crate::apps::{APP_COLUMNS, AppRecord, app};
use crate::audit::records::NewAuditRecord;
use crate::error::{StoreError, StoreResult};
use crate::rows::{Columns, Cursor};
use crate::secret::Ciphertext;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    Active,
    NeedsReauth,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::NeedsReauth => "needs_reauth",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(ConnectionStatus::Active),
            "needs_reauth" => Some(ConnectionStatus::NeedsReauth),
            _ => None,
        }
    }
}

/// How a stored token set is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// Under the vault DEK.
    DataKey = 1,
    /// Sealed to the vault's public key (by the callback); re-encrypted under the DEK
    /// by the first read.
    Sealed = 2,
}

impl TokenFormat {
    pub fn from_i64(v: i64) -> Option<Self> {
        match v {
            1 => Some(TokenFormat::DataKey),
            2 => Some(TokenFormat::Sealed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectionRecord {
    pub vault_id: VaultId,
    pub id: ConnectionId,
    pub app_id: AppId,
    pub app_key: AppKey,
    pub provider_key: String,
    pub status: ConnectionStatus,
    pub scopes: Scopes,
    pub token_set: Ciphertext,
    pub token_format: TokenFormat,
    pub expires_at: Option<DateTime<Utc>>,
    pub has_refresh: bool,
    pub version: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub refreshed_at: Option<DateTime<Utc>>,
}

/// Everything a token read needs, in one query.
#[derive(Debug, Clone)]
pub struct ConnectionForToken {
    pub connection: ConnectionRecord,
    pub app: AppRecord,
    /// The vault's X25519 private key under the DEK (to open sealed token sets).
    pub sealing_private_key: Ciphertext,
    pub sealing_key_id: u32,
    pub custom_provider_spec: Option<String>,
}

/// New tokens for a connection.
#[derive(Debug, Clone)]
pub struct TokenWrite {
    pub token_set: Ciphertext,
    pub token_format: TokenFormat,
    pub expires_at: Option<DateTime<Utc>>,
    pub has_refresh: bool,
    pub scopes: Scopes,
    pub at: DateTime<Utc>,
}

/// A connection created or replaced in place (import, callback).
#[derive(Debug, Clone)]
pub struct ConnectionUpsert {
    pub vault_id: VaultId,
    pub id: ConnectionId,
    pub app_id: AppId,
    pub tokens: TokenWrite,
}

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Inserts a new connection; `StoreError::Conflict` when the id is taken.
    async fn insert_connection(
        &self,
        connection: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()>;
    async fn list_connections(&self, vault: &VaultId) -> StoreResult<Vec<ConnectionRecord>>;
    async fn connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionRecord>>;
    /// The connection with its app, sealing key and provider spec: one query.
    async fn connection_for_token(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionForToken>>;
    /// Re-encrypts a sealed token set under the DEK without changing its version; does
    /// nothing if the version moved on.
    async fn rewrap_tokens(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        token_set: Ciphertext,
    ) -> StoreResult<bool>;
    /// Takes the refresh lease if the connection is still at `version` and no live lease
    /// is held by another owner.
    async fn acquire_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Writes refreshed tokens, fenced: only if the connection is still at `version`
    /// (every token write bumps it, so nothing newer is overwritten). Frees the lease.
    /// Writes `audit` in the same transaction.
    async fn commit_refresh(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        tokens: TokenWrite,
        audit: NewAuditRecord,
    ) -> StoreResult<bool>;
    /// Frees the lease if `owner` holds it (the refresh failed; tokens unchanged).
    async fn release_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        owner: &str,
    ) -> StoreResult<()>;
    /// Marks a connection `needs_reauth` (fenced like [`ConnectionStore::commit_refresh`]).
    async fn mark_needs_reauth(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        owner: &str,
        audit: NewAuditRecord,
    ) -> StoreResult<bool>;
    async fn delete_connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        audit: NewAuditRecord,
    ) -> StoreResult<bool>;
}

/// The columns [`connection`] reads, from `connections c` joined with `apps a`.
pub const CONNECTION_COLUMNS: Columns = Columns(&[
    "c.vault_id",
    "c.id",
    "c.app_id",
    "a.key",
    "a.provider_key",
    "c.status",
    "c.scopes",
    "c.token_set",
    "c.token_format",
    "c.expires_at",
    "c.has_refresh",
    "c.version",
    "c.lease_owner",
    "c.lease_until",
    "c.created_at",
    "c.refreshed_at",
]);

/// What a token read selects beside the connection: from `vaults v` and the LEFT
/// JOINed `providers p`.
const TOKEN_EXTRA_COLUMNS: Columns = Columns(&["v.sealing_private_key", "v.dek_key_id", "p.spec"]);

/// The columns [`connection_for_token`] reads.
pub const CONNECTION_FOR_TOKEN_COLUMNS: &[&Columns] =
    &[&CONNECTION_COLUMNS, &APP_COLUMNS, &TOKEN_EXTRA_COLUMNS];

const CONNECTION_FOR_TOKEN_WIDTH: usize =
    CONNECTION_COLUMNS.len() + APP_COLUMNS.len() + TOKEN_EXTRA_COLUMNS.len();

pub fn connection(c: &mut impl Cursor) -> StoreResult<ConnectionRecord> {
    Ok(ConnectionRecord {
        vault_id: c.parse("connections.vault_id", VaultId::parse)?,
        id: c.parse("connections.id", ConnectionId::parse)?,
        app_id: c.parse("connections.app_id", AppId::parse)?,
        app_key: c.parse("apps.key", AppKey::parse)?,
        provider_key: c.text("apps.provider_key")?,
        status: c.word("connections.status", ConnectionStatus::parse)?,
        scopes: c.scopes("connections.scopes")?,
        token_set: c.bytes("connections.token_set")?.into(),
        token_format: {
            let format = c.int("connections.token_format")?;
            TokenFormat::from_i64(format)
                .ok_or_else(|| StoreError::Corrupt("connections.token_format".into()))?
        },
        expires_at: c.opt_time("connections.expires_at")?,
        has_refresh: c.flag("connections.has_refresh")?,
        version: c.int("connections.version")?,
        lease_owner: c.opt_text("connections.lease_owner")?,
        lease_until: c.opt_time("connections.lease_until")?,
        created_at: c.time("connections.created_at")?,
        refreshed_at: c.opt_time("connections.refreshed_at")?,
    })
}

pub fn connection_for_token(c: &mut impl Cursor) -> StoreResult<ConnectionForToken> {
    Ok(ConnectionForToken {
        connection: connection(c)?,
        app: app(c)?,
        sealing_private_key: c.bytes("vaults.sealing_private_key")?.into(),
        sealing_key_id: c.small("vaults.dek_key_id")?,
        custom_provider_spec: c.opt_text("providers.spec")?,
    })
}

/// [`connection_for_token`] from the LEFT JOINed side of a query: `None` (and the
/// columns passed over) when the join found no connection.
pub fn opt_connection_for_token(c: &mut impl Cursor) -> StoreResult<Option<ConnectionForToken>> {
    if c.next_is_null()? {
        c.skip(CONNECTION_FOR_TOKEN_WIDTH);
        return Ok(None);
    }
    connection_for_token(c).map(Some)
}
