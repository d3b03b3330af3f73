//! [`AccountStore`] on PostgreSQL, with the login attempt limiter.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokenwarden_domain::Email;
use tokenwarden_store::accounts::{ACCOUNT_COLUMNS, account};
use tokenwarden_store::rows::{Columns, Cursor, Dialect};
use tokenwarden_store::{AccountRecord, AccountStore, LoginAttempt, NewAccount, StoreResult};

use crate::PgStore;
use crate::convert::{db, ms, sql_error};
use crate::cursor::{RowCursor, one};

/// The advisory-lock key that serialises login attempts against one subject, so that
/// parallel guesses cannot all count themselves under the limit.
fn login_lock(subject: &[u8]) -> i64 {
    let digest = Sha256::digest(subject);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

#[async_trait]
impl AccountStore for PgStore {
    async fn create_account(&self, a: NewAccount) -> StoreResult<()> {
        let c = self.pool.client().await?;
        let st = c
            .prepare_cached(
                "INSERT INTO accounts (id, email, kdf_params, kdf_salt, verifier, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await
            .map_err(db)?;
        c.execute(
            &st,
            &[
                &a.id.as_str(),
                &a.email.as_str(),
                &a.kdf_params,
                &a.kdf_salt,
                &a.verifier.as_bytes(),
                &ms(a.created_at),
            ],
        )
        .await
        .map_err(sql_error("email"))?;
        Ok(())
    }

    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<AccountRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM accounts u WHERE u.email = $1",
                Columns::select(Dialect::Postgres, &[&ACCOUNT_COLUMNS])
            )
        });
        let row = self.pool.query_opt(&SQL, &[&email.as_str()]).await?;
        one(row, |c| account(c))
    }

    async fn begin_login_attempt(
        &self,
        subject: &[u8],
        at: DateTime<Utc>,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<LoginAttempt> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&login_lock(subject)])
            .await
            .map_err(db)?;
        tx.execute(
            "DELETE FROM login_failures WHERE at < $1",
            &[&ms(window_start)],
        )
        .await
        .map_err(db)?;
        let row = tx
            .query_one(
                "SELECT count(*), min(at) FROM login_failures WHERE subject = $1",
                &[&subject],
            )
            .await
            .map_err(db)?;
        let mut counted = RowCursor::new(&row);
        let count = counted.int("login_failures.count")?;
        let oldest = counted.opt_time("login_failures.at")?;
        let outcome = if count >= i64::from(limit) {
            LoginAttempt::Limited {
                oldest: oldest.unwrap_or(at),
            }
        } else {
            let row = tx
                .query_one(
                    "INSERT INTO login_failures (subject, at) VALUES ($1, $2) RETURNING id",
                    &[&subject, &ms(at)],
                )
                .await
                .map_err(db)?;
            LoginAttempt::Allowed(RowCursor::new(&row).int("login_failures.id")?)
        };
        tx.commit().await.map_err(db)?;
        Ok(outcome)
    }

    async fn clear_login_attempt(&self, attempt: i64) -> StoreResult<()> {
        let c = self.pool.client().await?;
        c.execute("DELETE FROM login_failures WHERE id = $1", &[&attempt])
            .await
            .map_err(db)?;
        Ok(())
    }
}
