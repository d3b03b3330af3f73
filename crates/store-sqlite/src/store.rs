//! [`Store`] on SQLite.

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use tokenwarden_domain::{
    AccountId, ApiKeyId, AppKey, AuditId, ConnectSessionId, ConnectionId, Email, KeyScope, Name,
    Roles, VaultId,
};
use tokenwarden_store::*;

use crate::SqliteUrl;
use crate::audit::{self, write_audit};
use crate::convert::{db, ms, opt_ms, opt_time, parsed, sql_error, time};
use crate::migrations;
use crate::oauth::{self, connection_key};
use crate::pool::Pool;

/// The SQLite store. Cheap to share behind an `Arc`; dropping the last one stops its
/// threads.
#[derive(Debug)]
pub struct SqliteStore {
    pool: Pool,
}

const READERS: usize = 4;

impl SqliteStore {
    /// Opens the database at `url`, creating the file if needed and applying migrations.
    pub fn open(url: &SqliteUrl) -> Result<Self, StoreError> {
        url.check_location()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Self::open_path(url.path())
    }

    fn open_path(path: &Path) -> Result<Self, StoreError> {
        let pool = Pool::open(path, READERS, |conn| migrations::apply(conn).map(drop))?;
        Ok(Self { pool })
    }

    /// Applies pending migrations only (`tokenwarden migrate`); returns the names of
    /// those applied. The writer's first transaction takes SQLite's write lock, so a
    /// server starting at the same moment waits rather than migrating twice.
    pub fn migrate(url: &SqliteUrl) -> Result<Vec<String>, StoreError> {
        url.check_location()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut applied = Vec::new();
        drop(Pool::open(url.path(), 1, |conn| {
            applied = migrations::apply(conn)?;
            Ok(())
        })?);
        Ok(applied.into_iter().map(str::to_owned).collect())
    }
}

fn insert_api_key(conn: &Connection, k: &NewApiKey) -> Result<(), StoreError> {
    let scope = serde_json::to_string(&k.scope).map_err(StoreError::backend)?;
    conn.execute(
        "INSERT INTO api_keys (id, vault_id, name, roles, scope, lookup_hash, slot, created_at, expires_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            k.id.as_str(),
            k.vault_id.as_str(),
            k.name.as_str(),
            k.roles.to_list(),
            scope,
            k.lookup_hash,
            k.slot,
            ms(k.created_at),
            opt_ms(k.expires_at),
            k.created_by,
        ],
    )
    .map_err(sql_error("api key"))?;
    Ok(())
}

fn api_key_auth_row(
    conn: &Connection,
    id: &ApiKeyId,
) -> Result<Option<ApiKeyAuthRecord>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT vault_id, roles, scope, lookup_hash, slot, expires_at, revoked_at, last_used_at
                 FROM api_keys WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.query_row([id.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<Vec<u8>>>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                ))
            })
            .optional()
        })
        .map_err(db)?;
    row.map(
        |(vault_id, roles, scope, lookup_hash, slot, expires_at, revoked_at, last_used_at)| {
            Ok(ApiKeyAuthRecord {
                id: id.clone(),
                vault_id: parsed("api_keys.vault_id", VaultId::parse(&vault_id))?,
                roles: parsed("api_keys.roles", Roles::parse_list(&roles))?,
                scope: scope_of(&scope)?,
                lookup_hash,
                slot,
                expires_at: opt_time(expires_at)?,
                revoked_at: opt_time(revoked_at)?,
                last_used_at: opt_time(last_used_at)?,
            })
        },
    )
    .transpose()
}

const VAULT_COLUMNS: &str = "v.id, v.name, v.managed, v.dek_key_id, v.sealing_public_key, v.sealing_private_key, v.master_slot, v.created_at";

fn vault_row(row: &Row<'_>) -> rusqlite::Result<Result<VaultRecord, StoreError>> {
    let id: String = row.get(0)?;
    let name: String = row.get(1)?;
    let managed: bool = row.get(2)?;
    let dek_key_id: u32 = row.get(3)?;
    let sealing_public_key: Vec<u8> = row.get(4)?;
    let sealing_private_key: Vec<u8> = row.get(5)?;
    let master_slot: Option<Vec<u8>> = row.get(6)?;
    let created_at: i64 = row.get(7)?;
    Ok((|| {
        Ok(VaultRecord {
            id: parsed("vaults.id", VaultId::parse(&id))?,
            name: parsed("vaults.name", Name::parse(&name))?,
            managed,
            dek_key_id,
            sealing_public_key,
            sealing_private_key,
            master_slot,
            created_at: time(created_at)?,
        })
    })())
}

fn scope_of(json: &str) -> Result<KeyScope, StoreError> {
    parsed("api_keys.scope", serde_json::from_str(json))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.pool
            .read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db))
            .await
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let name = name.to_owned();
        self.pool
            .read(move |conn| {
                conn.query_row(
                    "SELECT value FROM server_settings WHERE name = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)
            })
            .await
    }

    async fn init_setting(&self, name: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let name = name.to_owned();
        let value = value.to_vec();
        self.pool
            .write(move |conn| {
                let tx = conn
                    .savepoint()
                    .map_err(db)?;
                tx.execute(
                    "INSERT INTO server_settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                    params![name, value],
                )
                .map_err(db)?;
                let stored: Vec<u8> = tx
                    .query_row(
                        "SELECT value FROM server_settings WHERE name = ?1",
                        [&name],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                tx.commit().map_err(db)?;
                Ok(stored)
            })
            .await
    }

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
                        a.verifier,
                        ms(a.created_at)
                    ],
                )
                .map_err(sql_error("email"))?;
                Ok(())
            })
            .await
    }

    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<AccountRecord>> {
        let email = email.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let row = conn
                    .prepare_cached(
                        "SELECT id, email, kdf_params, kdf_salt, verifier, created_at FROM accounts WHERE email = ?1",
                    )
                    .and_then(|mut st| {
                        st.query_row([email], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, Vec<u8>>(3)?,
                                r.get::<_, Vec<u8>>(4)?,
                                r.get::<_, i64>(5)?,
                            ))
                        })
                        .optional()
                    })
                    .map_err(db)?;
                row.map(|(id, email, kdf_params, kdf_salt, verifier, created_at)| {
                    Ok(AccountRecord {
                        id: parsed("accounts.id", AccountId::parse(&id))?,
                        email: parsed("accounts.email", Email::parse(&email))?,
                        kdf_params,
                        kdf_salt,
                        verifier,
                        created_at: time(created_at)?,
                    })
                })
                .transpose()
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
                let tx = conn.savepoint().map_err(db)?;
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

    async fn create_vault(&self, v: NewVault) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                let tx = conn
                    .savepoint()
                    .map_err(db)?;
                let r = &v.vault;
                tx.execute(
                    "INSERT INTO vaults (id, name, managed, dek_key_id, sealing_public_key, sealing_private_key, master_slot, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        r.id.as_str(),
                        r.name.as_str(),
                        r.managed,
                        r.dek_key_id,
                        r.sealing_public_key,
                        r.sealing_private_key,
                        r.master_slot,
                        ms(r.created_at)
                    ],
                )
                .map_err(sql_error("vault"))?;
                tx.execute(
                    "INSERT INTO vault_members (vault_id, account_id, slot, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![r.id.as_str(), v.owner.as_str(), v.owner_slot, ms(r.created_at)],
                )
                .map_err(sql_error("vault member"))?;
                insert_api_key(&tx, &v.first_key)?;
                for a in &v.audit {
                    write_audit(&tx, a)?;
                }
                tx.commit().map_err(db)
            })
            .await
    }

    async fn vaults_of_account(&self, account: &AccountId) -> StoreResult<Vec<VaultRecord>> {
        let account = account.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let mut st = conn
                    .prepare_cached(&format!(
                        "SELECT {VAULT_COLUMNS} FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                         WHERE m.account_id = ?1 ORDER BY v.created_at, v.id"
                    ))
                    .map_err(db)?;
                let rows = st
                    .query_map([account], vault_row)
                    .map_err(db)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(db)?;
                rows.into_iter().collect()
            })
            .await
    }

    async fn vault(&self, id: &VaultId) -> StoreResult<Option<VaultRecord>> {
        let id = id.as_str().to_owned();
        self.pool
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {VAULT_COLUMNS} FROM vaults v WHERE v.id = ?1"
                ))
                .and_then(|mut st| st.query_row([id], vault_row).optional())
                .map_err(db)?
                .transpose()
            })
            .await
    }

    async fn vault_membership(
        &self,
        vault: &VaultId,
        account: &AccountId,
    ) -> StoreResult<Option<(VaultRecord, Vec<u8>)>> {
        let vault = vault.as_str().to_owned();
        let account = account.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let row = conn
                    .prepare_cached(&format!(
                        "SELECT {VAULT_COLUMNS}, m.slot FROM vaults v JOIN vault_members m ON m.vault_id = v.id
                         WHERE v.id = ?1 AND m.account_id = ?2"
                    ))
                    .and_then(|mut st| {
                        st.query_row([vault, account], |r| Ok((vault_row(r)?, r.get::<_, Vec<u8>>(8)?)))
                            .optional()
                    })
                    .map_err(db)?;
                row.map(|(v, slot)| Ok((v?, slot))).transpose()
            })
            .await
    }

    async fn create_api_key(&self, key: NewApiKey, audit: NewAuditRecord) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                let tx = conn.savepoint().map_err(db)?;
                insert_api_key(&tx, &key)?;
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn api_key_auth(&self, id: &ApiKeyId) -> StoreResult<Option<ApiKeyAuthRecord>> {
        self.pool.read_now(|conn| api_key_auth_row(conn, id))
    }

    async fn api_key_auth_with_connection(
        &self,
        key: &ApiKeyId,
        connection: &ConnectionId,
    ) -> StoreResult<Option<KeyWithConnection>> {
        self.pool.read_now(|conn| {
            // One snapshot, and one round of SQLite's read locks instead of two.
            let tx = conn.transaction().map_err(db)?;
            let Some(key_row) = api_key_auth_row(&tx, key)? else {
                return Ok(None);
            };
            let row =
                oauth::connection_for_token(&tx, key_row.vault_id.as_str(), connection.as_str())?;
            Ok(Some((key_row, row)))
        })
    }

    async fn list_api_keys(&self, vault: &VaultId) -> StoreResult<Vec<ApiKeyRecord>> {
        let vault = vault.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let mut st = conn
                    .prepare_cached(
                        "SELECT id, vault_id, name, roles, scope, created_at, expires_at, revoked_at, last_used_at
                         FROM api_keys WHERE vault_id = ?1 ORDER BY created_at, id",
                    )
                    .map_err(db)?;
                let rows = st
                    .query_map([vault], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, i64>(5)?,
                            r.get::<_, Option<i64>>(6)?,
                            r.get::<_, Option<i64>>(7)?,
                            r.get::<_, Option<i64>>(8)?,
                        ))
                    })
                    .map_err(db)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(db)?;
                rows.into_iter()
                    .map(|(id, vault_id, name, roles, scope, created_at, expires_at, revoked_at, last_used_at)| {
                        Ok(ApiKeyRecord {
                            id: parsed("api_keys.id", ApiKeyId::parse(&id))?,
                            vault_id: parsed("api_keys.vault_id", VaultId::parse(&vault_id))?,
                            name: parsed("api_keys.name", Name::parse(&name))?,
                            roles: parsed("api_keys.roles", Roles::parse_list(&roles))?,
                            scope: scope_of(&scope)?,
                            created_at: time(created_at)?,
                            expires_at: opt_time(expires_at)?,
                            revoked_at: opt_time(revoked_at)?,
                            last_used_at: opt_time(last_used_at)?,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn revoke_api_key(
        &self,
        vault: &VaultId,
        id: &ApiKeyId,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let vault = vault.as_str().to_owned();
        let id = id.as_str().to_owned();
        self.pool
            .write(move |conn| {
                let tx = conn.savepoint().map_err(db)?;
                let changed = tx
                    .execute(
                        "UPDATE api_keys SET revoked_at = ?1, slot = NULL, lookup_hash = NULL
                         WHERE id = ?2 AND vault_id = ?3 AND revoked_at IS NULL",
                        params![ms(at), id, vault],
                    )
                    .map_err(db)?;
                if changed == 1 {
                    write_audit(&tx, &audit)?;
                }
                tx.commit().map_err(db)?;
                Ok(changed == 1)
            })
            .await
    }

    async fn touch_api_key(&self, id: &ApiKeyId, at: DateTime<Utc>) -> StoreResult<()> {
        let id = id.as_str().to_owned();
        self.pool
            .write_relaxed(move |conn| {
                conn.prepare_cached("UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2")
                    .and_then(|mut st| st.execute(params![ms(at), id]))
                    .map_err(db)?;
                Ok(())
            })
            .await
    }

    async fn append_audits(&self, mut records: Vec<NewAuditRecord>) -> StoreResult<()> {
        tokenwarden_store::audit::lock_order(&mut records);
        self.pool
            .write(move |conn| {
                let tx = conn.savepoint().map_err(db)?;
                audit::write_audits(&tx, &records)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn list_audit(
        &self,
        vault: &VaultId,
        limit: u32,
        before: Option<&AuditId>,
    ) -> StoreResult<Vec<AuditRecord>> {
        let vault = vault.as_str().to_owned();
        let before = before.map(|b| b.as_str().to_owned());
        self.pool
            .read(move |conn| audit::list_audit(conn, &vault, limit, before.as_deref()))
            .await
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        self.pool.read(audit::audit_heads).await
    }

    async fn audit_chains(&self) -> StoreResult<Vec<String>> {
        self.pool.read(audit::audit_chains).await
    }

    async fn audit_chain(
        &self,
        chain: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedAuditRecord>> {
        let chain = chain.to_owned();
        self.pool
            .read(move |conn| audit::audit_chain(conn, &chain, after_seq, limit))
            .await
    }

    async fn create_provider(
        &self,
        provider: ProviderRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        self.pool
            .write(move |c| oauth::create_provider(c, provider, audit))
            .await
    }

    async fn list_providers(&self, vault: &VaultId) -> StoreResult<Vec<ProviderRecord>> {
        let vault = vault.as_str().to_owned();
        self.pool
            .read(move |c| oauth::list_providers(c, &vault))
            .await
    }

    async fn provider(&self, vault: &VaultId, key: &str) -> StoreResult<Option<ProviderRecord>> {
        let (vault, key) = (vault.as_str().to_owned(), key.to_owned());
        self.pool
            .read(move |c| oauth::provider(c, &vault, &key))
            .await
    }

    async fn create_app(&self, app: AppRecord, audit: NewAuditRecord) -> StoreResult<()> {
        self.pool
            .write(move |c| oauth::create_app(c, app, audit))
            .await
    }

    async fn list_apps(&self, vault: &VaultId) -> StoreResult<Vec<AppRecord>> {
        let vault = vault.as_str().to_owned();
        self.pool.read(move |c| oauth::list_apps(c, &vault)).await
    }

    async fn app_by_key(&self, vault: &VaultId, key: &AppKey) -> StoreResult<Option<AppRecord>> {
        let (vault, key) = (vault.as_str().to_owned(), key.as_str().to_owned());
        self.pool
            .read(move |c| oauth::app_by_key(c, &vault, &key))
            .await
    }

    async fn update_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        update: AppUpdate,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<Option<AppRecord>> {
        let (vault, key) = (vault.clone(), key.clone());
        self.pool
            .write(move |c| oauth::update_app(c, &vault, &key, update, at, audit))
            .await
    }

    async fn delete_app(
        &self,
        vault: &VaultId,
        key: &AppKey,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let (vault, key) = (vault.clone(), key.clone());
        self.pool
            .write(move |c| oauth::delete_app(c, &vault, &key, audit))
            .await
    }

    async fn create_connect_session(
        &self,
        session: ConnectSessionRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        self.pool
            .write(move |c| oauth::create_connect_session(c, session, audit))
            .await
    }

    async fn connect_session(
        &self,
        vault: &VaultId,
        id: &ConnectSessionId,
    ) -> StoreResult<Option<ConnectSessionRecord>> {
        let (vault, id) = (vault.as_str().to_owned(), id.as_str().to_owned());
        self.pool
            .read(move |c| oauth::connect_session(c, &vault, &id))
            .await
    }

    async fn connect_link(&self, link_hash: &[u8]) -> StoreResult<Option<ConnectLinkView>> {
        let link_hash = link_hash.to_vec();
        self.pool
            .read(move |c| oauth::connect_link(c, &link_hash))
            .await
    }

    async fn spend_connect_link(
        &self,
        id: &ConnectSessionId,
        binding_hash: &[u8],
        now: DateTime<Utc>,
        state_expires_at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let id = id.as_str().to_owned();
        let binding_hash = binding_hash.to_vec();
        self.pool
            .write(move |c| {
                oauth::spend_connect_link(c, &id, &binding_hash, now, state_expires_at, audit)
            })
            .await
    }

    async fn pending_connect(&self, state_hash: &[u8]) -> StoreResult<Option<PendingConnect>> {
        let hash = state_hash.to_vec();
        self.pool
            .read(move |c| oauth::pending_connect(c, &hash))
            .await
    }

    async fn begin_exchange(&self, id: &ConnectSessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        let id = id.as_str().to_owned();
        self.pool
            .write(move |c| oauth::begin_exchange(c, &id, now))
            .await
    }

    async fn finish_connect(
        &self,
        id: &ConnectSessionId,
        connection: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        let id = id.clone();
        self.pool
            .write(move |c| oauth::finish_connect(c, &id, connection, audit))
            .await
    }

    async fn fail_connect(
        &self,
        id: &ConnectSessionId,
        error: &str,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        let (id, error) = (id.clone(), error.to_owned());
        self.pool
            .write(move |c| oauth::fail_connect(c, &id, &error, at, audit))
            .await
    }

    async fn insert_connection(
        &self,
        connection: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        self.pool
            .write(move |c| oauth::insert_connection(c, connection, audit))
            .await
    }

    async fn list_connections(&self, vault: &VaultId) -> StoreResult<Vec<ConnectionRecord>> {
        let vault = vault.as_str().to_owned();
        self.pool
            .read(move |c| oauth::list_connections(c, &vault))
            .await
    }

    async fn connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionRecord>> {
        let (vault, id) = connection_key(vault, id);
        self.pool
            .read(move |c| oauth::connection(c, &vault, &id))
            .await
    }

    async fn connection_for_token(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionForToken>> {
        self.pool
            .read_now(|c| oauth::connection_for_token(c, vault.as_str(), id.as_str()))
    }

    async fn rewrap_tokens(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        token_set: Vec<u8>,
    ) -> StoreResult<bool> {
        let (vault, id) = connection_key(vault, id);
        self.pool
            .write_relaxed(move |c| oauth::rewrap_tokens(c, &vault, &id, version, token_set))
            .await
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
        let (vault, id) = connection_key(vault, id);
        let owner = owner.to_owned();
        self.pool
            .write_relaxed(move |c| {
                oauth::acquire_refresh_lease(c, &vault, &id, version, &owner, until, now)
            })
            .await
    }

    async fn commit_refresh(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        tokens: TokenWrite,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let (vault, id) = connection_key(vault, id);
        self.pool
            .write(move |c| oauth::commit_refresh(c, &vault, &id, version, tokens, audit))
            .await
    }

    async fn release_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        owner: &str,
    ) -> StoreResult<()> {
        let (vault, id) = connection_key(vault, id);
        let owner = owner.to_owned();
        self.pool
            .write_relaxed(move |c| oauth::release_refresh_lease(c, &vault, &id, &owner))
            .await
    }

    async fn mark_needs_reauth(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        owner: &str,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let (vault, id) = connection_key(vault, id);
        let owner = owner.to_owned();
        self.pool
            .write(move |c| oauth::mark_needs_reauth(c, &vault, &id, version, &owner, audit))
            .await
    }

    async fn delete_connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let (vault, id) = connection_key(vault, id);
        self.pool
            .write(move |c| oauth::delete_connection(c, &vault, &id, audit))
            .await
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        self.pool.read(crate::copy::is_empty).await
    }

    async fn copy_page(
        &self,
        table: &'static tokenwarden_store::copy::CopyTable,
        after: Option<tokenwarden_store::copy::RawRow>,
        limit: u32,
    ) -> StoreResult<Vec<tokenwarden_store::copy::RawRow>> {
        self.pool
            .read(move |c| crate::copy::page(c, table, after.as_ref(), limit))
            .await
    }

    async fn copy_insert(
        &self,
        table: &'static tokenwarden_store::copy::CopyTable,
        rows: Vec<tokenwarden_store::copy::RawRow>,
    ) -> StoreResult<()> {
        self.pool
            .write(move |c| crate::copy::insert(c, table, &rows))
            .await
    }

    async fn copy_finish(&self) -> StoreResult<()> {
        Ok(())
    }
}
