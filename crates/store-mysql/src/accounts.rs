//! [`AccountStore`] on MySQL, with the login attempt limiter.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::{IsolationLevel, TxOpts};
use tokenwarden_domain::Email;
use tokenwarden_store::accounts::{ACCOUNT_COLUMNS, account};
use tokenwarden_store::convert::opt_time;
use tokenwarden_store::rows::{Columns, Dialect};
use tokenwarden_store::{
    AccountRecord, AccountStore, LoginAttempt, NewAccount, StoreError, StoreResult,
};

use crate::MysqlStore;
use crate::convert::{db, ms, params, sql_error};
use crate::cursor::one;
use crate::pool::write_tx;

#[async_trait]
impl AccountStore for MysqlStore {
    async fn create_account(&self, a: NewAccount) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO accounts (id, email, kdf_params, kdf_salt, verifier, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            params![
                a.id.as_str(),
                a.email.as_str(),
                a.kdf_params,
                a.kdf_salt,
                a.verifier.into_bytes(),
                ms(a.created_at)
            ],
        )
        .await
        .map_err(sql_error("email"))
    }

    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<AccountRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM accounts u WHERE u.email = ?",
                Columns::select(Dialect::Mysql, &[&ACCOUNT_COLUMNS])
            )
        });
        one(
            &mut self.conn().await?,
            &SQL,
            params![email.as_str()],
            account,
        )
        .await
    }

    async fn begin_login_attempt(
        &self,
        subject: &[u8],
        at: DateTime<Utc>,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<LoginAttempt> {
        // Attempts older than the window are never counted again (each call below first
        // drops its own subject's), so pruning everyone's is housekeeping and runs on its
        // own, outside the subject's locks.
        self.exec(
            "DELETE FROM login_failures WHERE at < ?",
            params![ms(window_start)],
        )
        .await?;
        // REPEATABLE READ, so the locking read below also locks the gap where this
        // subject's next attempt would go: parallel attempts for one subject serialise
        // (or deadlock, and are run again) instead of all passing a count of limit - 1.
        let mut opts = TxOpts::default();
        opts.with_isolation_level(IsolationLevel::RepeatableRead);
        write_tx!(self, opts.clone(), tx => {
            tx.exec_drop(
                "DELETE FROM login_failures WHERE subject = ? AND at < ?",
                params![subject, ms(window_start)],
            )
            .await
            .map_err(db)?;
            let ats: Vec<i64> = tx
                .exec(
                    "SELECT at FROM login_failures WHERE subject = ? ORDER BY at FOR UPDATE",
                    params![subject],
                )
                .await
                .map_err(db)?;
            if ats.len() >= limit as usize {
                LoginAttempt::Limited {
                    oldest: opt_time(ats.first().copied())?.unwrap_or(at),
                }
            } else {
                tx.exec_drop(
                    "INSERT INTO login_failures (subject, at) VALUES (?, ?)",
                    params![subject, ms(at)],
                )
                .await
                .map_err(db)?;
                let id = tx
                    .last_insert_id()
                    .and_then(|id| i64::try_from(id).ok())
                    .ok_or_else(|| StoreError::Corrupt("login_failures.id not assigned".into()))?;
                LoginAttempt::Allowed(id)
            }
        })
    }

    async fn clear_login_attempt(&self, attempt: i64) -> StoreResult<()> {
        self.exec("DELETE FROM login_failures WHERE id = ?", params![attempt])
            .await
            .map(drop)
    }
}
