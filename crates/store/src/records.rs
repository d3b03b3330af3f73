//! Plain records passed between the service layer and the backends.

use chrono::{DateTime, Utc};
use tokenwarden_domain::{
    AccountId, ApiKeyId, AppId, AppKey, AuditId, ConnectSessionId, ConnectionId, Email, KeyScope,
    Name, Roles, Scopes, VaultId,
};

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

/// A vault's own provider definition (`POST /v1/providers`), as its JSON spec.
#[derive(Debug, Clone)]
pub struct ProviderRecord {
    pub vault_id: VaultId,
    pub key: String,
    pub spec: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppStatus {
    Active,
    Blocked,
}

impl AppStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AppStatus::Active => "active",
            AppStatus::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(AppStatus::Active),
            "blocked" => Some(AppStatus::Blocked),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppRecord {
    pub id: AppId,
    pub vault_id: VaultId,
    pub key: AppKey,
    pub provider_key: String,
    pub client_id: String,
    /// The client secret under the vault DEK.
    pub client_secret: Vec<u8>,
    pub scopes: Scopes,
    pub status: AppStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes to an app; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AppUpdate {
    pub status: Option<AppStatus>,
    pub scopes: Option<Scopes>,
    pub client_id: Option<String>,
    pub client_secret: Option<Vec<u8>>,
}

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
    pub state_hash: Vec<u8>,
    /// Client secret, PKCE verifier and nonce under a key derived from the state.
    pub secrets: Vec<u8>,
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
    pub hash: Vec<u8>,
    /// The authorization URL (which holds the state) under a key derived from the link
    /// token, so the database alone cannot start the flow.
    pub sealed_url: Vec<u8>,
    pub expires_at: DateTime<Utc>,
    pub spent_at: Option<DateTime<Utc>>,
    /// SHA-256 of the browser-binding cookie set when the link was spent: the callback
    /// of a link-started flow requires that cookie.
    pub binding_hash: Option<Vec<u8>>,
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
    pub token_set: Vec<u8>,
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
    pub sealing_private_key: Vec<u8>,
    pub sealing_key_id: u32,
    pub custom_provider_spec: Option<String>,
}

/// New tokens for a connection.
#[derive(Debug, Clone)]
pub struct TokenWrite {
    pub token_set: Vec<u8>,
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

/// The outcome of [`crate::Store::begin_login_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// Counted; check the password. The id clears it on success.
    Allowed(i64),
    /// Over the limit: refused without looking at the password.
    Limited { oldest: DateTime<Utc> },
}
