//! [`Store`] on MySQL/MariaDB.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, IsolationLevel, Params, Pool, Row, Transaction, TxOpts};
use rand::Rng;
use tokenwarden_domain::{
    AccountId, ApiKeyId, AppKey, AuditId, ConnectSessionId, ConnectionId, Email, KeyScope, Name,
    Roles, VaultId,
};
use tokenwarden_store::copy::{CopyTable, RawRow};
use tokenwarden_store::*;

use crate::audit::{self, write_audit};
use crate::convert::{
    Cols, db, is_transient, ms, opt_ms, opt_time, params, parsed, sql_error, time,
};
use crate::rows::{self, APP_COLUMNS, CONNECTION_COLUMNS, VAULT_COLUMNS};
use crate::url::MysqlUrl;
use crate::{copy, migrations, oauth};

/// The MySQL store: a connection pool. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MysqlStore {
    pool: Pool,
}

/// How often a transaction is run when InnoDB keeps choosing it as a deadlock victim
/// (or it keeps timing out on a lock) before the error goes to the caller.
const ATTEMPTS: u32 = 8;

/// Runs `$body` in a write transaction on `$store`'s pool, commits it, and runs it all
/// again (with a short random pause) when InnoDB rolled it back over a deadlock or a
/// lock wait timeout. The body is a block that evaluates to the result and may use `?`.
macro_rules! write_tx {
    ($store:expr, $tx:ident => $body:block) => {
        write_tx!($store, TxOpts::default(), $tx => $body)
    };
    ($store:expr, $opts:expr, $tx:ident => $body:block) => {{
        let mut attempt = 1;
        loop {
            let outcome: Result<_, StoreError> = async {
                let mut $tx = $store.pool.start_transaction($opts).await.map_err(db)?;
                let value = $body;
                $tx.commit().await.map_err(db)?;
                Ok(value)
            }
            .await;
            match outcome {
                Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                    backoff(attempt).await;
                    attempt += 1;
                }
                other => break other,
            }
        }
    }};
}

pub(crate) async fn backoff(attempt: u32) {
    let max = 2u64 << attempt.min(8);
    let ms = rand::thread_rng().gen_range(1..=max);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

impl MysqlStore {
    /// Connects to the database at `url` and applies the migrations it lacks.
    pub async fn open(url: &MysqlUrl) -> Result<Self, StoreError> {
        let pool = Pool::new(url.opts().clone());
        if let Err(e) = migrations::run(&pool).await {
            let _ = pool.disconnect().await;
            return Err(e);
        }
        tracing::info!(database = url.redacted(), "mysql store open");
        Ok(Self { pool })
    }

    /// Applies the migrations the database at `url` lacks, and nothing else; returns the
    /// names of those it applied (empty when it was up to date).
    pub async fn migrate(url: &MysqlUrl) -> Result<Vec<String>, StoreError> {
        let pool = Pool::new(url.opts().clone());
        let applied = migrations::run(&pool).await;
        let _ = pool.disconnect().await;
        applied
    }

    /// Closes every connection (the pool closes them on drop too, less politely).
    pub async fn close(self) -> Result<(), StoreError> {
        self.pool.disconnect().await.map_err(db)
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        self.pool.get_conn().await.map_err(db)
    }

    async fn first(&self, sql: &str, p: Params) -> Result<Option<Row>, StoreError> {
        self.conn().await?.exec_first(sql, p).await.map_err(db)
    }

    async fn all(&self, sql: &str, p: Params) -> Result<Vec<Row>, StoreError> {
        self.conn().await?.exec(sql, p).await.map_err(db)
    }

    /// One statement in its own (implicit) transaction; returns the rows it matched.
    async fn exec(&self, sql: &str, p: Params) -> Result<u64, StoreError> {
        let mut attempt = 1;
        loop {
            let outcome = async {
                let mut conn = self.conn().await?;
                conn.exec_drop(sql, p.clone()).await.map_err(db)?;
                Ok(conn.affected_rows())
            }
            .await;
            match outcome {
                Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                    backoff(attempt).await;
                    attempt += 1;
                }
                other => break other,
            }
        }
    }
}

async fn insert_api_key(tx: &mut Transaction<'static>, k: &NewApiKey) -> Result<(), StoreError> {
    let scope = serde_json::to_string(&k.scope).map_err(StoreError::backend)?;
    tx.exec_drop(
        "INSERT INTO api_keys (id, vault_id, name, roles, scope, lookup_hash, slot, created_at, expires_at, created_by)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            k.id.as_str(),
            k.vault_id.as_str(),
            k.name.as_str(),
            k.roles.to_list(),
            scope,
            k.lookup_hash.as_slice(),
            k.slot.as_slice(),
            ms(k.created_at),
            opt_ms(k.expires_at),
            k.created_by.as_str(),
        ],
    )
    .await
    .map_err(sql_error("api key"))
}

fn scope_of(json: &str) -> Result<KeyScope, StoreError> {
    parsed("api_keys.scope", serde_json::from_str(json))
}

#[async_trait]
impl Store for MysqlStore {
    async fn ping(&self) -> StoreResult<()> {
        self.conn().await?.ping().await.map_err(db)
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        self.first(
            "SELECT value FROM server_settings WHERE name = ?",
            params![name],
        )
        .await?
        .map(|r| Cols::new(r).get("server_settings.value"))
        .transpose()
    }

    async fn init_setting(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        write_tx!(self, tx => {
            // A no-op on a duplicate, unlike INSERT IGNORE, which would hide other errors.
            tx.exec_drop(
                "INSERT INTO server_settings (name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE name = name",
                params![name, value],
            )
            .await
            .map_err(db)?;
            let stored: Option<Vec<u8>> = tx
                .exec_first("SELECT value FROM server_settings WHERE name = ?", params![name])
                .await
                .map_err(db)?;
            stored.ok_or_else(|| StoreError::Corrupt("server_settings row vanished".into()))?
        })
    }

    async fn create_account(&self, a: NewAccount) -> StoreResult<()> {
        let mut conn = self.conn().await?;
        conn.exec_drop(
            "INSERT INTO accounts (id, email, kdf_params, kdf_salt, verifier, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            params![
                a.id.as_str(),
                a.email.as_str(),
                a.kdf_params,
                a.kdf_salt,
                a.verifier,
                ms(a.created_at)
            ],
        )
        .await
        .map_err(sql_error("email"))
    }

    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<AccountRecord>> {
        let Some(row) = self
            .first(
                "SELECT id, email, kdf_params, kdf_salt, verifier, created_at FROM accounts WHERE email = ?",
                params![email.as_str()],
            )
            .await?
        else {
            return Ok(None);
        };
        let mut c = Cols::new(row);
        let id: String = c.get("accounts.id")?;
        let email: String = c.get("accounts.email")?;
        Ok(Some(AccountRecord {
            id: parsed("accounts.id", AccountId::parse(&id))?,
            email: parsed("accounts.email", Email::parse(&email))?,
            kdf_params: c.get("accounts.kdf_params")?,
            kdf_salt: c.get("accounts.kdf_salt")?,
            verifier: c.get("accounts.verifier")?,
            created_at: time(c.get("accounts.created_at")?)?,
        }))
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

    async fn create_vault(&self, v: NewVault) -> StoreResult<()> {
        write_tx!(self, tx => {
            let r = &v.vault;
            tx.exec_drop(
                "INSERT INTO vaults (id, name, managed, dek_key_id, sealing_public_key, sealing_private_key, master_slot, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                params![
                    r.id.as_str(),
                    r.name.as_str(),
                    r.managed,
                    r.dek_key_id,
                    r.sealing_public_key.as_slice(),
                    r.sealing_private_key.as_slice(),
                    r.master_slot.as_deref(),
                    ms(r.created_at)
                ],
            )
            .await
            .map_err(sql_error("vault"))?;
            tx.exec_drop(
                "INSERT INTO vault_members (vault_id, account_id, slot, created_at) VALUES (?, ?, ?, ?)",
                params![r.id.as_str(), v.owner.as_str(), v.owner_slot.as_slice(), ms(r.created_at)],
            )
            .await
            .map_err(sql_error("vault member"))?;
            insert_api_key(&mut tx, &v.first_key).await?;
            for a in &v.audit {
                write_audit(&mut tx, a).await?;
            }
        })
    }

    async fn vaults_of_account(&self, account: &AccountId) -> StoreResult<Vec<VaultRecord>> {
        self.all(
            &format!(
                "SELECT {VAULT_COLUMNS} FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                 WHERE m.account_id = ? ORDER BY v.created_at, v.id"
            ),
            params![account.as_str()],
        )
        .await?
        .into_iter()
        .map(|r| rows::vault(&mut Cols::new(r)))
        .collect()
    }

    async fn vault(&self, id: &VaultId) -> StoreResult<Option<VaultRecord>> {
        self.first(
            &format!("SELECT {VAULT_COLUMNS} FROM vaults v WHERE v.id = ?"),
            params![id.as_str()],
        )
        .await?
        .map(|r| rows::vault(&mut Cols::new(r)))
        .transpose()
    }

    async fn vault_membership(
        &self,
        vault: &VaultId,
        account: &AccountId,
    ) -> StoreResult<Option<(VaultRecord, Vec<u8>)>> {
        self.first(
            &format!(
                "SELECT {VAULT_COLUMNS}, m.slot FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                 WHERE v.id = ? AND m.account_id = ?"
            ),
            params![vault.as_str(), account.as_str()],
        )
        .await?
        .map(|r| {
            let mut c = Cols::new(r);
            let v = rows::vault(&mut c)?;
            Ok((v, c.get("vault_members.slot")?))
        })
        .transpose()
    }

    async fn create_api_key(&self, key: NewApiKey, audit: NewAuditRecord) -> StoreResult<()> {
        write_tx!(self, tx => {
            insert_api_key(&mut tx, &key).await?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn api_key_auth(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKeyAuthRecord>> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {KEY_AUTH_COLUMNS} FROM api_keys k WHERE k.id = ?"));
        self.first(&SQL, params![id.as_str()])
            .await?
            .map(|row| key_auth_record(id, &mut Cols::new(row)))
            .transpose()
    }

    async fn api_key_auth_with_connection(
        &self,
        key: &ApiKeyId,
        connection: &ConnectionId,
    ) -> StoreResult<Option<KeyWithConnection>> {
        // Outer joins, so an unknown connection still answers the key (with NULL
        // connection columns).
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {KEY_AUTH_COLUMNS}, c.id IS NOT NULL,
                        {CONNECTION_COLUMNS}, {APP_COLUMNS}, v.sealing_private_key, v.dek_key_id, p.spec
                 FROM api_keys k
                 LEFT JOIN connections c ON c.vault_id = k.vault_id AND c.id = ?
                 LEFT JOIN apps a ON a.id = c.app_id
                 LEFT JOIN vaults v ON v.id = c.vault_id
                 LEFT JOIN providers p ON p.vault_id = a.vault_id AND p.`key` = a.provider_key
                 WHERE k.id = ?"
            )
        });
        let Some(row) = self
            .first(&SQL, params![connection.as_str(), key.as_str()])
            .await?
        else {
            return Ok(None);
        };
        let mut c = Cols::new(row);
        let key_row = key_auth_record(key, &mut c)?;
        let found: i64 = c.get("connections.id")?;
        let connection = if found != 0 {
            Some(connection_for_token(&mut c)?)
        } else {
            None
        };
        Ok(Some((key_row, connection)))
    }

    async fn list_api_keys(&self, vault: &VaultId) -> StoreResult<Vec<ApiKeyRecord>> {
        self.all(
            "SELECT id, vault_id, name, roles, scope, created_at, expires_at, revoked_at, last_used_at
             FROM api_keys WHERE vault_id = ? ORDER BY created_at, id",
            params![vault.as_str()],
        )
        .await?
        .into_iter()
        .map(|row| {
            let mut c = Cols::new(row);
            let id: String = c.get("api_keys.id")?;
            let vault_id: String = c.get("api_keys.vault_id")?;
            let name: String = c.get("api_keys.name")?;
            let roles: String = c.get("api_keys.roles")?;
            let scope: String = c.get("api_keys.scope")?;
            Ok(ApiKeyRecord {
                id: parsed("api_keys.id", ApiKeyId::parse(&id))?,
                vault_id: parsed("api_keys.vault_id", VaultId::parse(&vault_id))?,
                name: parsed("api_keys.name", Name::parse(&name))?,
                roles: parsed("api_keys.roles", Roles::parse_list(&roles))?,
                scope: scope_of(&scope)?,
                created_at: time(c.get("api_keys.created_at")?)?,
                expires_at: opt_time(c.get("api_keys.expires_at")?)?,
                revoked_at: opt_time(c.get("api_keys.revoked_at")?)?,
                last_used_at: opt_time(c.get("api_keys.last_used_at")?)?,
            })
        })
        .collect()
    }

    async fn revoke_api_key(
        &self,
        vault: &VaultId,
        id: &ApiKeyId,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        write_tx!(self, tx => {
            tx.exec_drop(
                "UPDATE api_keys SET revoked_at = ?, slot = NULL, lookup_hash = NULL
                 WHERE id = ? AND vault_id = ? AND revoked_at IS NULL",
                params![ms(at), id.as_str(), vault.as_str()],
            )
            .await
            .map_err(db)?;
            let changed = tx.affected_rows() == 1;
            if changed {
                write_audit(&mut tx, &audit).await?;
            }
            changed
        })
    }

    async fn touch_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        self.exec(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
            params![ms(at), id.as_str()],
        )
        .await
        .map(drop)
    }

    async fn append_audits(&self, mut records: Vec<NewAuditRecord>) -> StoreResult<()> {
        tokenwarden_store::audit::lock_order(&mut records);
        write_tx!(self, tx => {
            for record in &records {
                write_audit(&mut tx, record).await?;
            }
        })
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        audit::audit_heads(&mut self.conn().await?).await
    }

    async fn audit_chains(&self) -> StoreResult<Vec<String>> {
        audit::audit_chains(&mut self.conn().await?).await
    }

    async fn audit_chain(
        &self,
        chain: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedAuditRecord>> {
        audit::audit_chain(&mut self.conn().await?, chain, after_seq, limit).await
    }

    async fn list_audit(
        &self,
        vault: &VaultId,
        limit: u32,
        before: Option<&AuditId>,
    ) -> StoreResult<Vec<AuditRecord>> {
        audit::list_audit(
            &mut self.conn().await?,
            vault.as_str(),
            limit,
            before.map(AuditId::as_str),
        )
        .await
    }

    async fn create_provider(
        &self,
        provider: ProviderRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        write_tx!(self, tx => {
            tx.exec_drop(
                "INSERT INTO providers (vault_id, `key`, spec, created_at) VALUES (?, ?, ?, ?)",
                params![
                    provider.vault_id.as_str(),
                    provider.key.as_str(),
                    provider.spec.as_str(),
                    ms(provider.created_at)
                ],
            )
            .await
            .map_err(sql_error("provider"))?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn list_providers(&self, vault: &VaultId) -> StoreResult<Vec<ProviderRecord>> {
        self.all(
            "SELECT vault_id, `key`, spec, created_at FROM providers WHERE vault_id = ? ORDER BY `key`",
            params![vault.as_str()],
        )
        .await?
        .into_iter()
        .map(oauth::provider_record)
        .collect()
    }

    async fn provider(&self, vault: &VaultId, key: &str) -> StoreResult<Option<ProviderRecord>> {
        self.first(
            "SELECT vault_id, `key`, spec, created_at FROM providers WHERE vault_id = ? AND `key` = ?",
            params![vault.as_str(), key],
        )
        .await?
        .map(oauth::provider_record)
        .transpose()
    }

    async fn create_app(&self, app: AppRecord, audit: NewAuditRecord) -> StoreResult<()> {
        write_tx!(self, tx => {
            oauth::insert_app(&mut tx, &app).await?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn list_apps(&self, vault: &VaultId) -> StoreResult<Vec<AppRecord>> {
        self.all(
            &format!(
                "SELECT {} FROM apps a WHERE a.vault_id = ? ORDER BY a.`key`",
                rows::APP_COLUMNS
            ),
            params![vault.as_str()],
        )
        .await?
        .into_iter()
        .map(|r| rows::app(&mut Cols::new(r)))
        .collect()
    }

    async fn app_by_key(&self, vault: &VaultId, key: &AppKey) -> StoreResult<Option<AppRecord>> {
        oauth::app_by_key(&mut self.conn().await?, vault.as_str(), key.as_str()).await
    }

    async fn update_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        update: AppUpdate,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<Option<AppRecord>> {
        write_tx!(self, tx => {
            oauth::update_app(&mut tx, vault, key, &update, at, &audit).await?
        })
    }

    async fn delete_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        write_tx!(self, tx => {
            oauth::delete_app(&mut tx, vault, key, &audit).await?
        })
    }

    async fn create_connect_session(
        &self,
        session: ConnectSessionRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        write_tx!(self, tx => {
            oauth::insert_connect_session(&mut tx, &session).await?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn connect_session(
        &self,
        vault: &VaultId,
        id: &ConnectSessionId,
    ) -> StoreResult<Option<ConnectSessionRecord>> {
        self.first(
            &format!(
                "SELECT {} FROM connect_sessions s WHERE s.vault_id = ? AND s.id = ?",
                rows::SESSION_COLUMNS
            ),
            params![vault.as_str(), id.as_str()],
        )
        .await?
        .map(|r| rows::session(&mut Cols::new(r)))
        .transpose()
    }

    async fn connect_link(&self, link_hash: &[u8]) -> StoreResult<Option<ConnectLinkView>> {
        self.first(
            &format!(
                "SELECT {}, {}, v.name
                 FROM connect_sessions s
                 JOIN apps a ON a.id = s.app_id
                 JOIN vaults v ON v.id = s.vault_id
                 WHERE s.link_hash = ?",
                rows::SESSION_COLUMNS,
                rows::APP_COLUMNS
            ),
            params![link_hash],
        )
        .await?
        .map(|r| {
            let mut c = Cols::new(r);
            Ok(ConnectLinkView {
                session: rows::session(&mut c)?,
                app: rows::app(&mut c)?,
                vault_name: c.get("vaults.name")?,
            })
        })
        .transpose()
    }

    async fn spend_connect_link(
        &self,
        id: &ConnectSessionId,
        binding_hash: &[u8],
        now: DateTime<Utc>,
        state_expires_at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        write_tx!(self, tx => {
            tx.exec_drop(
                "UPDATE connect_sessions
                 SET link_spent_at = ?, binding_hash = ?, expires_at = ?
                 WHERE id = ? AND status = 'pending' AND link_hash IS NOT NULL
                   AND link_spent_at IS NULL AND link_expires_at > ?",
                params![ms(now), binding_hash, ms(state_expires_at), id.as_str(), ms(now)],
            )
            .await
            .map_err(db)?;
            let changed = tx.affected_rows() == 1;
            if changed {
                write_audit(&mut tx, &audit).await?;
            }
            changed
        })
    }

    async fn pending_connect(&self, state_hash: &[u8]) -> StoreResult<Option<PendingConnect>> {
        self.first(
            &format!(
                "SELECT {}, {}
                 FROM connect_sessions s
                 JOIN apps a ON a.id = s.app_id
                 WHERE s.state_hash = ?",
                rows::SESSION_COLUMNS,
                rows::APP_COLUMNS
            ),
            params![state_hash],
        )
        .await?
        .map(|r| {
            let mut c = Cols::new(r);
            Ok(PendingConnect {
                session: rows::session(&mut c)?,
                app: rows::app(&mut c)?,
            })
        })
        .transpose()
    }

    async fn begin_exchange(&self, id: &ConnectSessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        let changed = self
            .exec(
                "UPDATE connect_sessions SET status = 'exchanging'
                 WHERE id = ? AND status = 'pending' AND expires_at > ?",
                params![id.as_str(), ms(now)],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn finish_connect(
        &self,
        id: &ConnectSessionId,
        connection: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        write_tx!(self, tx => {
            oauth::upsert_connection(&mut tx, &connection).await?;
            tx.exec_drop(
                "UPDATE connect_sessions SET status = 'completed', finished_at = ?, connection_id = ? WHERE id = ?",
                params![ms(connection.tokens.at), connection.id.as_str(), id.as_str()],
            )
            .await
            .map_err(db)?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn fail_connect(
        &self,
        id: &ConnectSessionId,
        error: &str,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        write_tx!(self, tx => {
            tx.exec_drop(
                "UPDATE connect_sessions SET status = 'failed', error = ?, finished_at = ?
                 WHERE id = ? AND status IN ('pending', 'exchanging')",
                params![error, ms(at), id.as_str()],
            )
            .await
            .map_err(db)?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn insert_connection(
        &self,
        connection: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        write_tx!(self, tx => {
            oauth::insert_new_connection(&mut tx, &connection).await?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn list_connections(&self, vault: &VaultId) -> StoreResult<Vec<ConnectionRecord>> {
        self.all(
            &format!(
                "SELECT {} FROM connections c JOIN apps a ON a.id = c.app_id
                 WHERE c.vault_id = ? ORDER BY c.created_at, c.id",
                rows::CONNECTION_COLUMNS
            ),
            params![vault.as_str()],
        )
        .await?
        .into_iter()
        .map(|r| rows::connection(&mut Cols::new(r)))
        .collect()
    }

    async fn connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionRecord>> {
        self.first(
            &format!(
                "SELECT {} FROM connections c JOIN apps a ON a.id = c.app_id
                 WHERE c.vault_id = ? AND c.id = ?",
                rows::CONNECTION_COLUMNS
            ),
            params![vault.as_str(), id.as_str()],
        )
        .await?
        .map(|r| rows::connection(&mut Cols::new(r)))
        .transpose()
    }

    async fn connection_for_token(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionForToken>> {
        self.first(
            oauth::connection_for_token_sql(),
            params![vault.as_str(), id.as_str()],
        )
        .await?
        .map(|r| connection_for_token(&mut Cols::new(r)))
        .transpose()
    }

    async fn rewrap_tokens(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        token_set: Vec<u8>,
    ) -> StoreResult<bool> {
        let changed = self
            .exec(
                "UPDATE connections SET token_set = ?, token_format = 1
                 WHERE vault_id = ? AND id = ? AND version = ? AND token_format = 2",
                params![token_set, vault.as_str(), id.as_str(), version],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn acquire_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // One conditional UPDATE: InnoDB evaluates the condition on the latest committed
        // row under its row lock, so of two processes racing for a lease one wins.
        let changed = self
            .exec(
                "UPDATE connections SET lease_owner = ?, lease_until = ?
                 WHERE vault_id = ? AND id = ? AND version = ?
                   AND (lease_owner IS NULL OR lease_until <= ? OR lease_owner = ?)",
                params![
                    owner,
                    ms(until),
                    vault.as_str(),
                    id.as_str(),
                    version,
                    ms(now),
                    owner
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn commit_refresh(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        tokens: TokenWrite,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        write_tx!(self, tx => {
            oauth::commit_refresh(&mut tx, vault, id, version, &tokens, &audit).await?
        })
    }

    async fn release_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        owner: &str,
    ) -> StoreResult<()> {
        self.exec(
            "UPDATE connections SET lease_owner = NULL, lease_until = NULL
             WHERE vault_id = ? AND id = ? AND lease_owner = ?",
            params![vault.as_str(), id.as_str(), owner],
        )
        .await
        .map(drop)
    }

    async fn mark_needs_reauth(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        owner: &str,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        write_tx!(self, tx => {
            tx.exec_drop(
                "UPDATE connections SET status = 'needs_reauth', lease_owner = NULL, lease_until = NULL
                 WHERE vault_id = ? AND id = ? AND version = ? AND lease_owner = ?",
                params![vault.as_str(), id.as_str(), version, owner],
            )
            .await
            .map_err(db)?;
            let changed = tx.affected_rows() == 1;
            if changed {
                write_audit(&mut tx, &audit).await?;
            }
            changed
        })
    }

    async fn delete_connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        write_tx!(self, tx => {
            tx.exec_drop(
                "DELETE FROM connections WHERE vault_id = ? AND id = ?",
                params![vault.as_str(), id.as_str()],
            )
            .await
            .map_err(db)?;
            let deleted = tx.affected_rows() == 1;
            if deleted {
                write_audit(&mut tx, &audit).await?;
            }
            deleted
        })
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        copy::is_empty(&mut self.conn().await?).await
    }

    async fn copy_page(
        &self,
        table: &'static CopyTable,
        after: Option<RawRow>,
        limit: u32,
    ) -> StoreResult<Vec<RawRow>> {
        copy::page(&mut self.conn().await?, table, after.as_ref(), limit).await
    }

    async fn copy_insert(&self, table: &'static CopyTable, rows: Vec<RawRow>) -> StoreResult<()> {
        write_tx!(self, tx => {
            copy::insert(&mut tx, table, &rows).await?;
        })
    }

    async fn copy_finish(&self) -> StoreResult<()> {
        // InnoDB moves an AUTO_INCREMENT counter past any value inserted explicitly, so
        // the copied audit_log.seq values need nothing more.
        Ok(())
    }
}

/// The columns of [`key_auth_record`], of `api_keys k`.
const KEY_AUTH_COLUMNS: &str = "k.vault_id, k.roles, k.scope, k.lookup_hash, k.slot, k.expires_at, k.revoked_at, k.last_used_at";

fn key_auth_record(id: &ApiKeyId, c: &mut Cols) -> Result<ApiKeyAuthRecord, StoreError> {
    let vault_id: String = c.get("api_keys.vault_id")?;
    let roles: String = c.get("api_keys.roles")?;
    let scope: String = c.get("api_keys.scope")?;
    Ok(ApiKeyAuthRecord {
        id: id.clone(),
        vault_id: parsed("api_keys.vault_id", VaultId::parse(&vault_id))?,
        roles: parsed("api_keys.roles", Roles::parse_list(&roles))?,
        scope: scope_of(&scope)?,
        lookup_hash: c.get("api_keys.lookup_hash")?,
        slot: c.get("api_keys.slot")?,
        expires_at: opt_time(c.get("api_keys.expires_at")?)?,
        revoked_at: opt_time(c.get("api_keys.revoked_at")?)?,
        last_used_at: opt_time(c.get("api_keys.last_used_at")?)?,
    })
}

/// Reads the columns of [`oauth::connection_for_token_sql`] from `c`.
fn connection_for_token(c: &mut Cols) -> Result<ConnectionForToken, StoreError> {
    Ok(ConnectionForToken {
        connection: rows::connection(c)?,
        app: rows::app(c)?,
        sealing_private_key: c.get("vaults.sealing_private_key")?,
        sealing_key_id: c.get("vaults.dek_key_id")?,
        custom_provider_spec: c.get("providers.spec")?,
    })
}
