//! Connections (a stored token set for one account at a provider) and the refresh
//! coordination on their rows: lease, fenced commit, re-wrap.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenwarden_domain::{AppId, AppKey, ConnectionId, Scopes, VaultId};

use crate::apps::{APP_COLUMNS, AppRecord, app};
use crate::audit::records::NewAuditRecord;
use crate::error::{StoreError, StoreResult};
use crate::rows::{Columns, Cursor};
use crate::secret::{Ciphertext, KeySlot};
use crate::webhooks::{NewEvent, QueueDepth};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    Active,
    /// Refreshes fail transiently; the tokens are kept and retried with backoff.
    Failing,
    /// The provider refused the refresh token: a person must connect again.
    NeedsReauth,
    /// Past expiry with nothing to refresh it.
    Expired,
    /// The provider revoked the grant.
    Revoked,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::Failing => "failing",
            ConnectionStatus::NeedsReauth => "needs_reauth",
            ConnectionStatus::Expired => "expired",
            ConnectionStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(ConnectionStatus::Active),
            "failing" => Some(ConnectionStatus::Failing),
            "needs_reauth" => Some(ConnectionStatus::NeedsReauth),
            "expired" => Some(ConnectionStatus::Expired),
            "revoked" => Some(ConnectionStatus::Revoked),
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
    /// Why the status is what it is, in words (never a secret).
    pub status_reason: Option<String>,
    /// When a refresh is due: ahead of expiry, before the refresh token dies of
    /// idleness, or the next retry after a failure.
    pub next_refresh_at: Option<DateTime<Utc>>,
    /// When the server's lifecycle worker looks at it next (`None`: never).
    pub due_at: Option<DateTime<Utc>>,
    /// Transient refresh failures in a row (the backoff's exponent).
    pub failures: u32,
    /// When `connection.expiring` was sent for the current tokens.
    pub expiring_notified_at: Option<DateTime<Utc>>,
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
    /// Whether the server's master key opens the vault (`master_slot`), so the server
    /// refreshes its connections in the background.
    pub vault_managed: bool,
    pub master_slot: Option<KeySlot>,
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
    /// When the new tokens are due for refresh and for the worker. A token write also
    /// makes the connection `active` with no reason and no failures.
    pub schedule: Schedule,
}

/// When a connection is due: for a refresh (shown to callers) and for the server's
/// lifecycle worker (the queue).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schedule {
    pub next_refresh_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
}

/// A connection created or replaced in place (import, callback).
#[derive(Debug, Clone)]
pub struct ConnectionUpsert {
    pub vault_id: VaultId,
    pub id: ConnectionId,
    pub app_id: AppId,
    pub tokens: TokenWrite,
    /// Written with the connection: `created` when the id was new, `reconnected` when
    /// it replaced a connection's tokens.
    pub events: Option<UpsertEvents>,
}

#[derive(Debug, Clone)]
pub struct UpsertEvents {
    pub created: NewEvent,
    pub reconnected: NewEvent,
}

/// A change of a connection's health without new tokens (a failed refresh, expiry).
#[derive(Debug, Clone)]
pub struct HealthChange {
    pub status: ConnectionStatus,
    pub status_reason: Option<String>,
    pub schedule: Schedule,
    pub failures: u32,
    /// Set when this change sends `connection.expiring`; `None` keeps the stored value.
    pub expiring_notified_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// Which connections a list answers.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    pub status: Option<ConnectionStatus>,
    pub app: Option<AppKey>,
    /// Only those whose `next_refresh_at` is at or before this time.
    pub refresh_due_by: Option<DateTime<Utc>>,
}

/// A connection the worker claimed from the due queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueConnection {
    pub vault_id: VaultId,
    pub id: ConnectionId,
}

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Inserts a new connection; `StoreError::Conflict` when the id is taken.
    async fn insert_connection(
        &self,
        connection: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()>;
    /// A vault's connections matching `filter`, oldest first.
    async fn list_connections(
        &self,
        vault: &VaultId,
        filter: &ConnectionFilter,
    ) -> StoreResult<Vec<ConnectionRecord>>;
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
        events: Vec<NewEvent>,
    ) -> StoreResult<bool>;
    /// Frees the lease if `owner` holds it (the refresh failed; tokens unchanged).
    async fn release_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        owner: &str,
    ) -> StoreResult<()>;
    /// Changes a connection's health, fenced: only at `version` (the tokens it was
    /// judged on) and, with an `owner`, only while it holds the refresh lease, which it
    /// frees. Writes `audit` and `events` in the same transaction when it applies.
    #[expect(
        clippy::too_many_arguments,
        reason = "the row's key and fence, the change, and what it reports: one atomic write"
    )]
    async fn set_health(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        owner: Option<&str>,
        change: HealthChange,
        audit: Option<NewAuditRecord>,
        events: Vec<NewEvent>,
    ) -> StoreResult<bool>;
    /// Claims up to `limit` connections due at `now`, oldest first, by moving each
    /// one's `due_at` to `claim_until` with a compare-and-set: one claimer per
    /// connection across processes, and a claimer that dies leaves it due again.
    async fn claim_due_connections(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<DueConnection>>;
    /// How many connections are due at `now` (counting at most `cap`), and the oldest
    /// due time: a range over the due index.
    async fn connection_queue(&self, now: DateTime<Utc>, cap: u32) -> StoreResult<QueueDepth>;
    async fn delete_connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        audit: NewAuditRecord,
        events: Vec<NewEvent>,
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
    "c.status_reason",
    "c.next_refresh_at",
    "c.due_at",
    "c.failures",
    "c.expiring_notified_at",
]);

/// What a token read selects beside the connection: from `vaults v` and the LEFT
/// JOINed `providers p`.
const TOKEN_EXTRA_COLUMNS: Columns = Columns(&[
    "v.sealing_private_key",
    "v.dek_key_id",
    "p.spec",
    "v.managed",
    "v.master_slot",
]);

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
        status_reason: c.opt_text("connections.status_reason")?,
        next_refresh_at: c.opt_time("connections.next_refresh_at")?,
        due_at: c.opt_time("connections.due_at")?,
        failures: c.small("connections.failures")?,
        expiring_notified_at: c.opt_time("connections.expiring_notified_at")?,
    })
}

pub fn connection_for_token(c: &mut impl Cursor) -> StoreResult<ConnectionForToken> {
    Ok(ConnectionForToken {
        connection: connection(c)?,
        app: app(c)?,
        sealing_private_key: c.bytes("vaults.sealing_private_key")?.into(),
        sealing_key_id: c.small("vaults.dek_key_id")?,
        custom_provider_spec: c.opt_text("providers.spec")?,
        vault_managed: c.flag("vaults.managed")?,
        master_slot: c.opt_bytes("vaults.master_slot")?.map(KeySlot::from),
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
