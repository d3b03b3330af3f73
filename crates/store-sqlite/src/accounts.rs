//! [`AccountStore`] on SQLite.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;
use tokenwarden_domain::Email;
use tokenwarden_store::accounts::{ACCOUNT_COLUMNS, account};
use tokenwarden_store::convert::opt_time;
use tokenwarden_store::rows::{Columns, Dialect};
use tokenwarden_store::{AccountRecord, AccountStore, LoginAttempt, NewAccount, StoreResult};

use crate::SqliteStore;
use crate::convert::{db, ms, savepoint, sql_error};
use crate::cursor::one;

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, a: NewAccount) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO accounts (id, email, kdf_params, kdf_salt, verifier, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        a.id.as_str(),
                        a.email.as_str(),
                        a.kdf_params,
                        a.kdf_salt,
                        a.verifier.as_bytes(),
                        ms(a.created_at)
                    ],
                )
                .map_err(sql_error("email"))?;
                Ok(())
            })
            .await
    }

    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<AccountRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM accounts u WHERE u.email = ?1",
                Columns::select(Dialect::Sqlite, &[&ACCOUNT_COLUMNS])
            )
        });
        let email = email.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                one(&mut st, [email], |c| account(c))
            })
            .await
    }

    async fn begin_login_attempt(
        &self,
        subject: &[u8],
        at: DateTime<Utc>,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<LoginAttempt> {
        let subject = subject.to_vec();
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                tx.execute(
                    "DELETE FROM login_failures WHERE at < ?1",
                    [ms(window_start)],
                )
                .map_err(db)?;
                let (count, oldest): (u32, Option<i64>) = tx
                    .query_row(
                        "SELECT count(*), min(at) FROM login_failures WHERE subject = ?1",
                        [&subject],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map_err(db)?;
                let outcome = if count >= limit {
                    LoginAttempt::Limited {
                        oldest: opt_time(oldest)?.unwrap_or(at),
                    }
                } else {
                    tx.execute(
                        "INSERT INTO login_failures (subject, at) VALUES (?1, ?2)",
                        params![subject, ms(at)],
                    )
                    .map_err(db)?;
                    LoginAttempt::Allowed(tx.last_insert_rowid())
                };
                tx.commit().map_err(db)?;
                Ok(outcome)
            })
            .await
    }

    async fn clear_login_attempt(&self, attempt: i64) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                conn.execute("DELETE FROM login_failures WHERE rowid = ?1", [attempt])
                    .map_err(db)?;
                Ok(())
            })
            .await
    }
}
