//! Connect sessions (one run of the authorization-code flow) and their one-time links.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenwarden_domain::{AppId, ConnectSessionId, ConnectionId, Scopes, VaultId};

use crate::apps::{APP_COLUMNS, AppRecord, app};
use crate::audit::records::NewAuditRecord;
use crate::connections::ConnectionUpsert;
use crate::error::{StoreError, StoreResult};
use crate::rows::{Columns, Cursor};
use crate::secret::{Ciphertext, LookupHash};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectStatus {
    Pending,
    /// The state was consumed; the code exchange is under way.
    Exchanging,
    Completed,
    Failed,
}

impl ConnectStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectStatus::Pending => "pending",
            ConnectStatus::Exchanging => "exchanging",
            ConnectStatus::Completed => "completed",
            ConnectStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(ConnectStatus::Pending),
            "exchanging" => Some(ConnectStatus::Exchanging),
            "completed" => Some(ConnectStatus::Completed),
            "failed" => Some(ConnectStatus::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectSessionRecord {
    pub id: ConnectSessionId,
    pub vault_id: VaultId,
    pub app_id: AppId,
    pub connection_id: ConnectionId,
    /// SHA-256 of the state.
    pub state_hash: LookupHash,
    /// Client secret, PKCE verifier and nonce under a key derived from the state.
    pub secrets: Ciphertext,
    pub scopes: Scopes,
    pub return_to: Option<String>,
    pub status: ConnectStatus,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The session's one-time connect link, when it has one.
    pub link: Option<ConnectLinkRecord>,
}

/// A connect link as stored: never the link itself, only its hash.
#[derive(Debug, Clone)]
pub struct ConnectLinkRecord {
    /// SHA-256 of the link token.
    pub hash: LookupHash,
    /// The authorization URL (which holds the state) under a key derived from the link
    /// token, so the database alone cannot start the flow.
    pub sealed_url: Ciphertext,
    pub expires_at: DateTime<Utc>,
    pub spent_at: Option<DateTime<Utc>>,
    /// SHA-256 of the browser-binding cookie set when the link was spent: the callback
    /// of a link-started flow requires that cookie.
    pub binding_hash: Option<LookupHash>,
}

/// What the connect link page shows, found by the link's hash.
#[derive(Debug, Clone)]
pub struct ConnectLinkView {
    pub session: ConnectSessionRecord,
    pub app: AppRecord,
    pub vault_name: String,
}

/// What the OAuth callback reads, found by the state's hash: the session and its app.
/// (What it must trust — provider, client id, sealing key — travels inside the
/// session's state-encrypted secrets, not in editable columns.)
#[derive(Debug, Clone)]
pub struct PendingConnect {
    pub session: ConnectSessionRecord,
    pub app: AppRecord,
}

#[async_trait]
pub trait ConnectStore: Send + Sync {
    async fn create_connect_session(
        &self,
        session: ConnectSessionRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()>;
    async fn connect_session(
        &self,
        vault: &VaultId,
        id: &ConnectSessionId,
    ) -> StoreResult<Option<ConnectSessionRecord>>;
    /// The session a connect link names (by the link's hash), with its app and vault
    /// name, for the link page.
    async fn connect_link(&self, link_hash: &LookupHash) -> StoreResult<Option<ConnectLinkView>>;
    /// Spends a session's link: only if it is unspent and unexpired at `now` and the
    /// session is still pending. Records the binding cookie's hash, moves the state's
    /// expiry to `state_expires_at` and writes `audit`, atomically. Exactly one caller
    /// ever gets `true` for a link.
    async fn spend_connect_link(
        &self,
        id: &ConnectSessionId,
        binding_hash: &LookupHash,
        now: DateTime<Utc>,
        state_expires_at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool>;
    /// The pending connect a state hash names (in any status: the caller checks).
    async fn pending_connect(&self, state_hash: &LookupHash)
    -> StoreResult<Option<PendingConnect>>;
    /// Consumes a session's state: `pending` and unexpired → `exchanging`, atomically.
    /// Exactly one caller ever gets `true` for a session.
    async fn begin_exchange(&self, id: &ConnectSessionId, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Stores the connection (replacing the tokens of an existing one in place) and
    /// completes the session, in one transaction.
    async fn finish_connect(
        &self,
        id: &ConnectSessionId,
        connection: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()>;
    async fn fail_connect(
        &self,
        id: &ConnectSessionId,
        error: &str,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<()>;
}

/// The columns [`session`] reads, from `connect_sessions s`.
pub const SESSION_COLUMNS: Columns = Columns(&[
    "s.id",
    "s.vault_id",
    "s.app_id",
    "s.connection_id",
    "s.state_hash",
    "s.secrets",
    "s.scopes",
    "s.return_to",
    "s.status",
    "s.error",
    "s.created_by",
    "s.created_at",
    "s.expires_at",
    "s.finished_at",
    "s.link_hash",
    "s.link_secret",
    "s.link_expires_at",
    "s.link_spent_at",
    "s.binding_hash",
]);

/// The columns [`pending_connect`] reads: the session and its app.
pub const PENDING_CONNECT_COLUMNS: &[&Columns] = &[&SESSION_COLUMNS, &APP_COLUMNS];

/// The columns [`link_view`] reads: the session, its app and its vault's name.
pub const LINK_VIEW_COLUMNS: &[&Columns] = &[&SESSION_COLUMNS, &APP_COLUMNS, &Columns(&["v.name"])];

pub fn session(c: &mut impl Cursor) -> StoreResult<ConnectSessionRecord> {
    let id = c.parse("connect_sessions.id", ConnectSessionId::parse)?;
    let vault_id = c.parse("connect_sessions.vault_id", VaultId::parse)?;
    let app_id = c.parse("connect_sessions.app_id", AppId::parse)?;
    let connection_id = c.parse("connect_sessions.connection_id", ConnectionId::parse)?;
    let state_hash = c.bytes("connect_sessions.state_hash")?.into();
    let secrets = c.bytes("connect_sessions.secrets")?.into();
    let scopes = c.scopes("connect_sessions.scopes")?;
    let return_to = c.opt_text("connect_sessions.return_to")?;
    let status = c.word("connect_sessions.status", ConnectStatus::parse)?;
    let error = c.opt_text("connect_sessions.error")?;
    let created_by = c.text("connect_sessions.created_by")?;
    let created_at = c.time("connect_sessions.created_at")?;
    let expires_at = c.time("connect_sessions.expires_at")?;
    let finished_at = c.opt_time("connect_sessions.finished_at")?;
    let link_hash = c.opt_bytes("connect_sessions.link_hash")?;
    let link_secret = c.opt_bytes("connect_sessions.link_secret")?;
    let link_expires_at = c.opt_time("connect_sessions.link_expires_at")?;
    let link_spent_at = c.opt_time("connect_sessions.link_spent_at")?;
    let binding_hash = c.opt_bytes("connect_sessions.binding_hash")?;
    let link = match (link_hash, link_secret, link_expires_at) {
        (Some(hash), Some(sealed_url), Some(expires_at)) => Some(ConnectLinkRecord {
            hash: hash.into(),
            sealed_url: sealed_url.into(),
            expires_at,
            spent_at: link_spent_at,
            binding_hash: binding_hash.map(LookupHash::from),
        }),
        (None, None, None) => None,
        _ => return Err(StoreError::Corrupt("connect_sessions.link_*".into())),
    };
    Ok(ConnectSessionRecord {
        id,
        vault_id,
        app_id,
        connection_id,
        state_hash,
        secrets,
        scopes,
        return_to,
        status,
        error,
        created_by,
        created_at,
        expires_at,
        finished_at,
        link,
    })
}

pub fn pending_connect(c: &mut impl Cursor) -> StoreResult<PendingConnect> {
    Ok(PendingConnect {
        session: session(c)?,
        app: app(c)?,
    })
}

pub fn link_view(c: &mut impl Cursor) -> StoreResult<ConnectLinkView> {
    Ok(ConnectLinkView {
        session: session(c)?,
        app: app(c)?,
        vault_name: c.text("vaults.name")?,
    })
}
