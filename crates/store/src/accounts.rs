//! Accounts (people who log in with a password) and the login attempt limiter.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokenwarden_domain::{AccountId, Email};

use crate::error::StoreResult;
use crate::rows::{Columns, Cursor};
use crate::secret::PasswordVerifier;

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: AccountId,
    pub email: Email,
    /// Argon2id parameters (`m=..,t=..,p=..`) and salt.
    pub kdf_params: String,
    pub kdf_salt: Vec<u8>,
    pub verifier: PasswordVerifier,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub id: AccountId,
    pub email: Email,
    pub kdf_params: String,
    pub kdf_salt: Vec<u8>,
    pub verifier: PasswordVerifier,
    pub created_at: DateTime<Utc>,
}

/// The outcome of [`AccountStore::begin_login_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginAttempt {
    /// Counted; check the password. The id clears it on success.
    Allowed(i64),
    /// Over the limit: refused without looking at the password.
    Limited { oldest: DateTime<Utc> },
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account; `StoreError::Conflict` when the email is taken.
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
}

/// The columns [`account`] reads, from `accounts u`.
pub const ACCOUNT_COLUMNS: Columns = Columns(&[
    "u.id",
    "u.email",
    "u.kdf_params",
    "u.kdf_salt",
    "u.verifier",
    "u.created_at",
]);

pub fn account(c: &mut impl Cursor) -> StoreResult<AccountRecord> {
    Ok(AccountRecord {
        id: c.parse("accounts.id", AccountId::parse)?,
        email: c.parse("accounts.email", Email::parse)?,
        kdf_params: c.text("accounts.kdf_params")?,
        kdf_salt: c.bytes("accounts.kdf_salt")?,
        verifier: c.bytes("accounts.verifier")?.into(),
        created_at: c.time("accounts.created_at")?,
    })
}
