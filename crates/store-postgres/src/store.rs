//! [`Store`] on PostgreSQL: accounts, vaults, keys and the audit log (the OAuth
//! tables are in [`crate::oauth`]).

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction};
use sha2::{Digest, Sha256};
use tokenwarden_domain::{
    AccountId, ApiKeyId, AppKey, AuditId, ConnectSessionId, ConnectionId, Email, VaultId,
};
use tokenwarden_store::*;
use tokio_postgres::NoTls;

use crate::PgUrl;
use crate::audit::{self, write_audit};
use crate::convert::{changed_one, db, get, ms, opt_ms, opt_time, parsed, pool, sql_error};
use crate::migrate::{AppliedMigration, migrate};
use crate::oauth;
use crate::rows::{self, VAULT_COLUMNS, key_scope};

/// The PostgreSQL store: a pool of connections, each caching its prepared statements.
/// Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// Applies pending migrations (under the migration lock), then opens the pool.
    pub async fn open(url: &PgUrl) -> Result<Self, StoreError> {
        migrate(url).await?;
        let store = Self::connect(url)?;
        // Fail at start, not on the first request, when the database does not answer.
        store.ping().await?;
        Ok(store)
    }

    /// Applies pending migrations only and says which ran (`tokenwarden migrate`).
    pub async fn migrate(url: &PgUrl) -> Result<Vec<AppliedMigration>, StoreError> {
        migrate(url).await
    }

    fn connect(url: &PgUrl) -> Result<Self, StoreError> {
        let manager = Manager::from_config(
            url.config().clone(),
            NoTls,
            ManagerConfig {
                // A broken connection shows as an error on its next query and is
                // dropped then; a probe query on every checkout would double the round
                // trips of a token read.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(url.pool_size())
            .build()
            .map_err(StoreError::backend)?;
        Ok(Self { pool })
    }

    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool)
    }

    /// One cached prepared statement on a pooled connection: at most one row.
    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql).await.map_err(db)?;
        c.query_opt(&st, params).await.map_err(db)
    }
}

/// The columns of [`key_auth_record`], of `api_keys k`.
pub(crate) const KEY_AUTH_COLUMNS: &str = "k.vault_id, k.roles, k.scope, k.lookup_hash, k.slot, k.expires_at, k.revoked_at, k.last_used_at";
pub(crate) const KEY_AUTH_COLUMN_COUNT: usize = 8;

/// Reads [`KEY_AUTH_COLUMNS`] from the start of `r`.
pub(crate) fn key_auth_record(
    id: &ApiKeyId,
    r: &tokio_postgres::Row,
) -> Result<ApiKeyAuthRecord, StoreError> {
    Ok(ApiKeyAuthRecord {
        id: id.clone(),
        vault_id: parsed("api_keys.vault_id", VaultId::parse(get(r, 0)?))?,
        roles: parsed(
            "api_keys.roles",
            tokenwarden_domain::Roles::parse_list(get(r, 1)?),
        )?,
        scope: key_scope(get(r, 2)?)?,
        lookup_hash: get(r, 3)?,
        slot: get(r, 4)?,
        expires_at: opt_time(get(r, 5)?)?,
        revoked_at: opt_time(get(r, 6)?)?,
        last_used_at: opt_time(get(r, 7)?)?,
    })
}

async fn insert_api_key(tx: &Transaction<'_>, k: &NewApiKey) -> Result<(), StoreError> {
    let scope = serde_json::to_string(&k.scope).map_err(StoreError::backend)?;
    let st = tx
        .prepare_cached(
            "INSERT INTO api_keys (id, vault_id, name, roles, scope, lookup_hash, slot, created_at, expires_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .await
        .map_err(db)?;
    tx.execute(
        &st,
        &[
            &k.id.as_str(),
            &k.vault_id.as_str(),
            &k.name.as_str(),
            &k.roles.to_list(),
            &scope,
            &k.lookup_hash,
            &k.slot,
            &ms(k.created_at),
            &opt_ms(k.expires_at),
            &k.created_by,
        ],
    )
    .await
    .map_err(sql_error("api key"))?;
    Ok(())
}

/// The advisory-lock key that serialises login attempts against one subject, so that
/// parallel guesses cannot all count themselves under the limit.
fn login_lock(subject: &[u8]) -> i64 {
    let digest = Sha256::digest(subject);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        let c = self.client().await?;
        c.simple_query("SELECT 1").await.map_err(db)?;
        Ok(())
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = self
            .query_opt(
                "SELECT value FROM server_settings WHERE name = $1",
                &[&name],
            )
            .await?;
        row.map(|r| get(&r, 0)).transpose()
    }

    async fn init_setting(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        tx.execute(
            "INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &value],
        )
        .await
        .map_err(db)?;
        // A fresh statement snapshot: sees the row of a racing replica that won.
        let row = tx
            .query_one(
                "SELECT value FROM server_settings WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(db)?;
        let stored: Vec<u8> = get(&row, 0)?;
        tx.commit().await.map_err(db)?;
        Ok(stored)
    }

    async fn create_account(&self, a: NewAccount) -> StoreResult<()> {
        let c = self.client().await?;
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
                &a.verifier,
                &ms(a.created_at),
            ],
        )
        .await
        .map_err(sql_error("email"))?;
        Ok(())
    }

    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<AccountRecord>> {
        let row = self.query_opt("SELECT id, email, kdf_params, kdf_salt, verifier, created_at FROM accounts WHERE email = $1", &[&email.as_str()]).await?;
        row.map(|r| rows::account(&r)).transpose()
    }

    async fn begin_login_attempt(
        &self,
        subject: &[u8],
        at: DateTime<Utc>,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<LoginAttempt> {
        let mut c = self.client().await?;
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
        let count: i64 = get(&row, 0)?;
        let oldest: Option<i64> = get(&row, 1)?;
        let outcome = if count >= i64::from(limit) {
            LoginAttempt::Limited {
                oldest: opt_time(oldest)?.unwrap_or(at),
            }
        } else {
            let row = tx
                .query_one(
                    "INSERT INTO login_failures (subject, at) VALUES ($1, $2) RETURNING id",
                    &[&subject, &ms(at)],
                )
                .await
                .map_err(db)?;
            LoginAttempt::Allowed(get(&row, 0)?)
        };
        tx.commit().await.map_err(db)?;
        Ok(outcome)
    }

    async fn clear_login_attempt(&self, attempt: i64) -> StoreResult<()> {
        let c = self.client().await?;
        c.execute("DELETE FROM login_failures WHERE id = $1", &[&attempt])
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn create_vault(&self, v: NewVault) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let r = &v.vault;
        tx.execute(
            "INSERT INTO vaults (id, name, managed, dek_key_id, sealing_public_key, sealing_private_key, master_slot, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &r.id.as_str(),
                &r.name.as_str(),
                &r.managed,
                &i64::from(r.dek_key_id),
                &r.sealing_public_key,
                &r.sealing_private_key,
                &r.master_slot,
                &ms(r.created_at),
            ],
        )
        .await
        .map_err(sql_error("vault"))?;
        tx.execute(
            "INSERT INTO vault_members (vault_id, account_id, slot, created_at) VALUES ($1, $2, $3, $4)",
            &[&r.id.as_str(), &v.owner.as_str(), &v.owner_slot, &ms(r.created_at)],
        )
        .await
        .map_err(sql_error("vault member"))?;
        insert_api_key(&tx, &v.first_key).await?;
        for a in &v.audit {
            write_audit(&tx, a).await?;
        }
        tx.commit().await.map_err(db)
    }

    async fn vaults_of_account(&self, account: &AccountId) -> StoreResult<Vec<VaultRecord>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!(
                "SELECT {VAULT_COLUMNS} FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                 WHERE m.account_id = $1 ORDER BY v.created_at, v.id"
            ))
            .await
            .map_err(db)?;
        let rows = c.query(&st, &[&account.as_str()]).await.map_err(db)?;
        rows.iter().map(rows::vault).collect()
    }

    async fn vault(&self, id: &VaultId) -> StoreResult<Option<VaultRecord>> {
        let row = self
            .query_opt(
                &format!("SELECT {VAULT_COLUMNS} FROM vaults v WHERE v.id = $1"),
                &[&id.as_str()],
            )
            .await?;
        row.map(|r| rows::vault(&r)).transpose()
    }

    async fn vault_membership(
        &self,
        vault: &VaultId,
        account: &AccountId,
    ) -> StoreResult<Option<(VaultRecord, Vec<u8>)>> {
        let row = self.query_opt(&format!(
                "SELECT {VAULT_COLUMNS}, m.slot FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                 WHERE v.id = $1 AND m.account_id = $2"
            ), &[&vault.as_str(), &account.as_str()]).await?;
        row.map(|r| Ok((rows::vault(&r)?, get(&r, 8)?))).transpose()
    }

    async fn create_api_key(&self, key: NewApiKey, audit: NewAuditRecord) -> StoreResult<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        insert_api_key(&tx, &key).await?;
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn api_key_auth(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKeyAuthRecord>> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {KEY_AUTH_COLUMNS} FROM api_keys k WHERE k.id = $1"));
        let row = self.query_opt(&SQL, &[&id.as_str()]).await?;
        row.map(|r| key_auth_record(id, &r)).transpose()
    }

    async fn api_key_auth_with_connection(
        &self,
        key: &ApiKeyId,
        connection: &ConnectionId,
    ) -> StoreResult<Option<KeyWithConnection>> {
        oauth::api_key_auth_with_connection(self, key, connection).await
    }

    async fn list_api_keys(&self, vault: &VaultId) -> StoreResult<Vec<ApiKeyRecord>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT id, vault_id, name, roles, scope, created_at, expires_at, revoked_at, last_used_at
                 FROM api_keys WHERE vault_id = $1 ORDER BY created_at, id",
            )
            .await
            .map_err(db)?;
        let rows = c.query(&st, &[&vault.as_str()]).await.map_err(db)?;
        rows.iter().map(rows::api_key).collect()
    }

    async fn revoke_api_key(
        &self,
        vault: &VaultId,
        id: &ApiKeyId,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let changed = tx
            .execute(
                "UPDATE api_keys SET revoked_at = $1, slot = NULL, lookup_hash = NULL
                 WHERE id = $2 AND vault_id = $3 AND revoked_at IS NULL",
                &[&ms(at), &id.as_str(), &vault.as_str()],
            )
            .await
            .map_err(db)?;
        let changed = changed_one(changed);
        if changed {
            write_audit(&tx, &audit).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(changed)
    }

    async fn touch_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        let c = self.client().await?;
        let st = c
            .prepare_cached("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .await
            .map_err(db)?;
        c.execute(&st, &[&ms(at), &id.as_str()]).await.map_err(db)?;
        Ok(())
    }

    async fn append_audits(&self, mut records: Vec<NewAuditRecord>) -> StoreResult<()> {
        tokenwarden_store::audit::lock_order(&mut records);
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        audit::write_audits(&tx, &records).await?;
        tx.commit().await.map_err(db)
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        let c = self.client().await?;
        audit::audit_heads(&c).await
    }

    async fn audit_chains(&self) -> StoreResult<Vec<String>> {
        let c = self.client().await?;
        audit::audit_chains(&c).await
    }

    async fn audit_chain(
        &self,
        chain: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedAuditRecord>> {
        let c = self.client().await?;
        audit::audit_chain(&c, chain, after_seq, limit).await
    }

    async fn list_audit(
        &self,
        vault: &VaultId,
        limit: u32,
        before: Option<&AuditId>,
    ) -> StoreResult<Vec<AuditRecord>> {
        let c = self.client().await?;
        audit::list_audit(&c, vault.as_str(), limit, before.map(AuditId::as_str)).await
    }

    async fn create_provider(
        &self,
        provider: ProviderRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        oauth::create_provider(self, provider, audit).await
    }

    async fn list_providers(&self, vault: &VaultId) -> StoreResult<Vec<ProviderRecord>> {
        oauth::list_providers(self, vault).await
    }

    async fn provider(&self, vault: &VaultId, key: &str) -> StoreResult<Option<ProviderRecord>> {
        oauth::provider(self, vault, key).await
    }

    async fn create_app(&self, app: AppRecord, audit: NewAuditRecord) -> StoreResult<()> {
        oauth::create_app(self, app, audit).await
    }

    async fn list_apps(&self, vault: &VaultId) -> StoreResult<Vec<AppRecord>> {
        oauth::list_apps(self, vault).await
    }

    async fn app_by_key(&self, vault: &VaultId, key: &AppKey) -> StoreResult<Option<AppRecord>> {
        oauth::app_by_key(self, vault, key).await
    }

    async fn update_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        update: AppUpdate,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<Option<AppRecord>> {
        oauth::update_app(self, vault, key, update, at, audit).await
    }

    async fn delete_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        oauth::delete_app(self, vault, key, audit).await
    }

    async fn create_connect_session(
        &self,
        session: ConnectSessionRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        oauth::create_connect_session(self, session, audit).await
    }

    async fn connect_session(
        &self,
        vault: &VaultId,
        id: &ConnectSessionId,
    ) -> StoreResult<Option<ConnectSessionRecord>> {
        oauth::connect_session(self, vault, id).await
    }

    async fn connect_link(&self, link_hash: &[u8]) -> StoreResult<Option<ConnectLinkView>> {
        oauth::connect_link(self, link_hash).await
    }

    async fn spend_connect_link(
        &self,
        id: &ConnectSessionId,
        binding_hash: &[u8],
        now: DateTime<Utc>,
        state_expires_at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        oauth::spend_connect_link(self, id, binding_hash, now, state_expires_at, audit).await
    }

    async fn pending_connect(&self, state_hash: &[u8]) -> StoreResult<Option<PendingConnect>> {
        oauth::pending_connect(self, state_hash).await
    }

    async fn begin_exchange(&self, id: &ConnectSessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        oauth::begin_exchange(self, id, now).await
    }

    async fn finish_connect(
        &self,
        id: &ConnectSessionId,
        connection: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        oauth::finish_connect(self, id, connection, audit).await
    }

    async fn fail_connect(
        &self,
        id: &ConnectSessionId,
        error: &str,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        oauth::fail_connect(self, id, error, at, audit).await
    }

    async fn insert_connection(
        &self,
        connection: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        oauth::insert_connection(self, connection, audit).await
    }

    async fn list_connections(&self, vault: &VaultId) -> StoreResult<Vec<ConnectionRecord>> {
        oauth::list_connections(self, vault).await
    }

    async fn connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionRecord>> {
        oauth::connection(self, vault, id).await
    }

    async fn connection_for_token(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionForToken>> {
        oauth::connection_for_token(self, vault, id).await
    }

    async fn rewrap_tokens(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        token_set: Vec<u8>,
    ) -> StoreResult<bool> {
        oauth::rewrap_tokens(self, vault, id, version, token_set).await
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
        oauth::acquire_refresh_lease(self, vault, id, version, owner, until, now).await
    }

    async fn commit_refresh(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        tokens: TokenWrite,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        oauth::commit_refresh(self, vault, id, version, tokens, audit).await
    }

    async fn release_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        owner: &str,
    ) -> StoreResult<()> {
        oauth::release_refresh_lease(self, vault, id, owner).await
    }

    async fn mark_needs_reauth(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        owner: &str,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        oauth::mark_needs_reauth(self, vault, id, version, owner, audit).await
    }

    async fn delete_connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        oauth::delete_connection(self, vault, id, audit).await
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        crate::copy::is_empty(self).await
    }

    async fn copy_page(
        &self,
        table: &'static tokenwarden_store::copy::CopyTable,
        after: Option<tokenwarden_store::copy::RawRow>,
        limit: u32,
    ) -> StoreResult<Vec<tokenwarden_store::copy::RawRow>> {
        crate::copy::page(self, table, after.as_ref(), limit).await
    }

    async fn copy_insert(
        &self,
        table: &'static tokenwarden_store::copy::CopyTable,
        rows: Vec<tokenwarden_store::copy::RawRow>,
    ) -> StoreResult<()> {
        crate::copy::insert(self, table, &rows).await
    }

    async fn copy_finish(&self) -> StoreResult<()> {
        crate::copy::finish(self).await
    }
}
