//! Persistence of tokenwarden, as traits and plain records. No SQL here: each backend
//! crate implements [`Store`] and owns its migrations. Records carry ciphertexts and
//! hashes exactly as the crypto layer produced them; the store never sees a plaintext
//! secret.

mod error;
mod records;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenwarden_domain::{AccountId, ApiKeyId, AuditId, Email, VaultId};

pub use error::StoreError;
pub use records::*;

pub type StoreResult<T> = Result<T, StoreError>;

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

    /// Login failures for `subject` since `since`: their count and the oldest one's time.
    async fn login_failures(
        &self,
        subject: &[u8],
        since: DateTime<Utc>,
    ) -> StoreResult<(u32, Option<DateTime<Utc>>)>;
    /// Records a failed login and its audit record together; prunes failures older than
    /// `prune_before`.
    async fn record_login_failure(
        &self,
        subject: &[u8],
        at: DateTime<Utc>,
        prune_before: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<()>;

    /// Creates a vault with its owner's password slot and its first admin key.
    async fn create_vault(&self, vault: NewVault) -> StoreResult<()>;
    async fn vaults_of_account(&self, account: &AccountId) -> StoreResult<Vec<VaultRecord>>;
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

    async fn append_audit(&self, record: NewAuditRecord) -> StoreResult<()>;
    /// Audit records of a vault, newest first, older than the record `before` when
    /// given (an unknown `before` yields nothing).
    async fn list_audit(
        &self,
        vault: &VaultId,
        limit: u32,
        before: Option<&AuditId>,
    ) -> StoreResult<Vec<AuditRecord>>;
}
