//! Persistence of tokenwarden, as traits and plain records. No SQL here: each backend
//! crate implements [`Store`] and owns its migrations. Records carry ciphertexts and
//! hashes exactly as the crypto layer produced them; the store never sees a plaintext
//! secret.

pub mod audit;
pub mod convert;
pub mod copy;
mod error;
mod records;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenwarden_domain::{
    AccountId, ApiKeyId, AppKey, AuditId, ConnectSessionId, ConnectionId, Email, VaultId,
};

pub use audit::{AuditHead, ChainedAuditRecord};
pub use error::StoreError;
pub use records::*;

pub type StoreResult<T> = Result<T, StoreError>;

/// An API key's row with the row of the connection a request names, if its vault has it.
pub type KeyWithConnection = (ApiKeyAuthRecord, Option<ConnectionForToken>);

/// Everything tokenwarden persists. Implementations must make each method atomic: a
/// method either applies all its writes or none.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// A server-wide setting (such as the master key fingerprint).
    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Sets a server-wide setting only if it is not set yet; returns the value now stored.
    async fn init_setting(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>>;

    /// Creates an account; [`StoreError::Conflict`] when the email is taken.
    async fn create_account(&self, account: NewAccount) -> StoreResult<()>;
    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<AccountRecord>>;

    /// Counts a login attempt against `subject` *before* the password is checked, so
    /// parallel guesses cannot all pass the limit: in one transaction, prunes attempts
    /// older than `window_start`, and if fewer than `limit` remain, records this one and
    /// returns its id; otherwise records nothing and returns the oldest one's time.
    async fn begin_login_attempt(
        &self,
        subject: &[u8],
        at: DateTime<Utc>,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<LoginAttempt>;
    /// Forgets an attempt that turned out to be a success.
    async fn clear_login_attempt(&self, attempt: i64) -> StoreResult<()>;

    /// Creates a vault with its owner's password slot and its first admin key.
    async fn create_vault(&self, vault: NewVault) -> StoreResult<()>;
    async fn vaults_of_account(&self, account: &AccountId) -> StoreResult<Vec<VaultRecord>>;
    async fn vault(&self, id: &VaultId) -> StoreResult<Option<VaultRecord>>;
    /// The vault and `account`'s password slot for it, if the account is a member.
    async fn vault_membership(
        &self,
        vault: &VaultId,
        account: &AccountId,
    ) -> StoreResult<Option<(VaultRecord, Vec<u8>)>>;

    /// Creates an API key with its slot and audit record.
    async fn create_api_key(&self, key: NewApiKey, audit: NewAuditRecord) -> StoreResult<()>;
    /// The row an API key authenticates against: one indexed point read.
    async fn api_key_auth(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKeyAuthRecord>>;
    /// [`Store::api_key_auth`] and, in that key's vault, [`Store::connection_for_token`]
    /// of `connection`, in one query (one read transaction on SQLite): the token call's
    /// hot path, which would otherwise pay two round trips. `None` when the key is
    /// unknown; the connection is `None` when its vault has no such connection. Nothing
    /// here checks the key: its secret must be verified before either row is used.
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

    /// Appends a record to its chain (see [`audit`]): every method that takes a
    /// `NewAuditRecord` appends it the same way, in its own transaction. A batch of one.
    async fn append_audit(&self, record: NewAuditRecord) -> StoreResult<()> {
        self.append_audits(vec![record]).await
    }
    /// Appends many records in one transaction: all of them or none. Records of one
    /// chain keep the order given; chains are locked in [`audit::lock_order`], so two
    /// processes appending batches that share chains cannot deadlock. This is the
    /// group commit of the read path: concurrent reads share one commit.
    async fn append_audits(&self, records: Vec<NewAuditRecord>) -> StoreResult<()>;
    /// Every audit chain's head.
    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>>;
    /// Every chain that has records (vault ids, and `""` for records without a vault),
    /// whether or not its head is still there.
    async fn audit_chains(&self) -> StoreResult<Vec<String>>;
    /// One chain's records in order, with `seq` greater than `after_seq`, at most `limit`.
    async fn audit_chain(
        &self,
        chain: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedAuditRecord>>;
    /// Audit records of a vault, newest first, older than the record `before` when
    /// given (an unknown `before` yields nothing).
    async fn list_audit(
        &self,
        vault: &VaultId,
        limit: u32,
        before: Option<&AuditId>,
    ) -> StoreResult<Vec<AuditRecord>>;

    // --- providers and apps ---

    /// Adds a vault's custom provider; [`StoreError::Conflict`] when the key is taken.
    async fn create_provider(
        &self,
        provider: ProviderRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()>;
    async fn list_providers(&self, vault: &VaultId) -> StoreResult<Vec<ProviderRecord>>;
    async fn provider(&self, vault: &VaultId, key: &str) -> StoreResult<Option<ProviderRecord>>;

    /// Adds an app; [`StoreError::Conflict`] when the key is taken in the vault.
    async fn create_app(&self, app: AppRecord, audit: NewAuditRecord) -> StoreResult<()>;
    async fn list_apps(&self, vault: &VaultId) -> StoreResult<Vec<AppRecord>>;
    async fn app_by_key(&self, vault: &VaultId, key: &AppKey) -> StoreResult<Option<AppRecord>>;
    /// Applies `update`; returns the app as it now is, `None` when there is no such app.
    async fn update_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        update: AppUpdate,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<Option<AppRecord>>;
    /// Deletes an app with no connections ([`StoreError::Conflict`] otherwise); false
    /// when there is no such app.
    async fn delete_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        audit: NewAuditRecord,
    ) -> StoreResult<bool>;

    // --- connect sessions ---

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
    async fn connect_link(&self, link_hash: &[u8]) -> StoreResult<Option<ConnectLinkView>>;
    /// Spends a session's link: only if it is unspent and unexpired at `now` and the
    /// session is still pending. Records the binding cookie's hash, moves the state's
    /// expiry to `state_expires_at` and writes `audit`, atomically. Exactly one caller
    /// ever gets `true` for a link.
    async fn spend_connect_link(
        &self,
        id: &ConnectSessionId,
        binding_hash: &[u8],
        now: DateTime<Utc>,
        state_expires_at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool>;
    /// The pending connect a state hash names (in any status: the caller checks).
    async fn pending_connect(&self, state_hash: &[u8]) -> StoreResult<Option<PendingConnect>>;
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

    // --- connections ---

    /// Inserts a new connection; [`StoreError::Conflict`] when the id is taken.
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
        token_set: Vec<u8>,
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
    /// Marks a connection `needs_reauth` (fenced like [`Store::commit_refresh`]).
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

    // --- copying between backends (`tokenwarden copy`; see [`copy`]) ---

    /// Whether the database holds no account, vault or audit record yet.
    async fn is_empty(&self) -> StoreResult<bool>;
    /// Up to `limit` rows of `table` in key order, after the row whose key is `after`.
    async fn copy_page(
        &self,
        table: &'static copy::CopyTable,
        after: Option<copy::RawRow>,
        limit: u32,
    ) -> StoreResult<Vec<copy::RawRow>>;
    /// Inserts rows as they are (in one transaction).
    async fn copy_insert(
        &self,
        table: &'static copy::CopyTable,
        rows: Vec<copy::RawRow>,
    ) -> StoreResult<()>;
    /// After the last insert: whatever the backend needs to go on from the copied rows
    /// (PostgreSQL moves its sequences past them).
    async fn copy_finish(&self) -> StoreResult<()>;
}
