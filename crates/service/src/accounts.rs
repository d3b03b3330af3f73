//! Accounts: sign-up and password login, with failed-login limiting.

use std::fmt;

use chrono::Duration;
use sha2::{Digest, Sha256};
use tokenwarden_crypto::{Kek, PasswordKdf, PasswordMaterial};
use tokenwarden_domain::{AccountId, Email, Password};
use tokenwarden_store::{Actor, LoginAttempt, NewAccount};
use tracing::{info, warn};

use crate::audit::{RequestContext, record};
use crate::{ServiceError, ServiceResult, Services};

/// How many failed logins of one account (or one unknown email) are allowed within
/// [`FAILURE_WINDOW`] before every attempt, right or wrong, is refused.
pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW_MINUTES: i64 = 15;

/// A signed-in account, for one request: its id and the KEK that opens its vault slots.
pub struct AccountSession {
    pub(crate) account_id: AccountId,
    pub(crate) kek: Kek,
}

impl AccountSession {
    pub fn account_id(&self) -> &AccountId {
        &self.account_id
    }
}

impl fmt::Debug for AccountSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountSession")
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

/// The rate-limit subject of a login name: a hash, so the failure table holds no
/// addresses of people who never had an account.
fn subject(login: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"tokenwarden/login-subject/v1\0");
    h.update(login.trim().to_lowercase().as_bytes());
    h.finalize().to_vec()
}

impl Services {
    async fn derive_password(
        &self,
        kdf: PasswordKdf,
        password: Password,
    ) -> ServiceResult<PasswordMaterial> {
        let _permit = self
            .kdf_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(ServiceError::internal)?;
        tokio::task::spawn_blocking(move || kdf.derive(&password))
            .await
            .map_err(ServiceError::internal)?
            .map_err(ServiceError::from)
    }

    /// Creates an account (`POST /v1/accounts`).
    pub async fn sign_up(
        &self,
        email: Email,
        password: Password,
        ctx: &RequestContext,
    ) -> ServiceResult<(AccountId, Email)> {
        if !self.config.signup_open {
            return Err(ServiceError::SignupClosed);
        }
        let kdf = PasswordKdf::new_random();
        let material = self.derive_password(kdf.clone(), password).await?;
        let now = self.clock.now();
        let id = AccountId::generate(&mut rand::thread_rng());
        self.accounts_store()
            .create_account(NewAccount {
                id: id.clone(),
                email: email.clone(),
                kdf_params: kdf.params_string(),
                kdf_salt: kdf.salt().to_vec(),
                verifier: material.verifier.0.to_vec().into(),
                created_at: now,
            })
            .await
            .map_err(|e| match ServiceError::from(e) {
                ServiceError::Conflict(_) => {
                    ServiceError::Conflict("an account with this email already exists".into())
                }
                other => other,
            })?;
        info!(account.id = %id, ip = ?ctx.ip, "account created");
        Ok((id, email))
    }

    /// Checks an email and password (HTTP Basic). Known and unknown accounts cost the
    /// same: both run Argon2id and record a failure. After [`MAX_FAILURES`] failures in
    /// the window every attempt is refused until the oldest one ages out. Each attempt
    /// is counted before the password is checked (and forgotten on success), so
    /// parallel guesses cannot slip past the limit.
    pub async fn login(
        &self,
        login: &str,
        password: Password,
        ctx: &RequestContext,
    ) -> ServiceResult<AccountSession> {
        let now = self.clock.now();
        let window = Duration::minutes(FAILURE_WINDOW_MINUTES);
        let subject = subject(login);
        let attempt = match self
            .store
            .begin_login_attempt(&subject, now, now - window, MAX_FAILURES)
            .await?
        {
            LoginAttempt::Allowed(id) => id,
            LoginAttempt::Limited { oldest } => {
                let retry_after_secs = (oldest + window - now).num_seconds().max(1) as u64;
                warn!(ip = ?ctx.ip, "login refused: too many failures");
                return Err(ServiceError::RateLimited { retry_after_secs });
            }
        };

        let account = match Email::parse(login) {
            Ok(email) => self.accounts_store().account_by_email(&email).await?,
            Err(_) => None,
        };
        let kdf = match &account {
            Some(a) => PasswordKdf::from_stored(&a.kdf_params, &a.kdf_salt)?,
            None => self.dummy_kdf.clone(),
        };
        let material = self.derive_password(kdf, password).await?;
        if let Some(a) = account {
            if material.verifier.matches(a.verifier.as_bytes()) {
                self.accounts_store().clear_login_attempt(attempt).await?;
                return Ok(AccountSession {
                    account_id: a.id,
                    kek: material.kek,
                });
            }
            self.fail_login(Some(a.id), ctx).await?;
        } else {
            self.fail_login(None, ctx).await?;
        }
        Err(ServiceError::Unauthorized)
    }

    /// The attempt stays counted; this writes its audit record.
    async fn fail_login(
        &self,
        account: Option<AccountId>,
        ctx: &RequestContext,
    ) -> ServiceResult<()> {
        let now = self.clock.now();
        let target = account.as_ref().map(ToString::to_string);
        let actor = account.map_or(Actor::Anonymous, Actor::Account);
        let audit = record(ctx, now, None, actor, "login.failure", target, "denied");
        self.audit_store().append_audit(audit).await?;
        warn!(ip = ?ctx.ip, "login failed");
        Ok(())
    }
}
