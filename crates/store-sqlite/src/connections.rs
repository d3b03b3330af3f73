//! [`ConnectionStore`] on SQLite: connections, the token read's query, and the refresh
//! lease and fenced commit.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use tokenwarden_domain::{ConnectionId, VaultId};
use tokenwarden_store::connections::{
    CONNECTION_COLUMNS, CONNECTION_FOR_TOKEN_COLUMNS, connection, connection_for_token as token_row,
};
use tokenwarden_store::rows::{Columns, Dialect, scopes_json};
use tokenwarden_store::{
    Ciphertext, ConnectionForToken, ConnectionRecord, ConnectionStore, ConnectionUpsert,
    NewAuditRecord, StoreError, StoreResult, TokenWrite,
};

use crate::SqliteStore;
use crate::audit::write_audit;
use crate::convert::{db, ms, opt_ms, savepoint};
use crate::cursor::{all, one};

/// Every token read's query (the statement cache is keyed by its text, so it is built
/// once).
pub(crate) fn connection_for_token(
    conn: &Connection,
    vault: &str,
    id: &str,
) -> StoreResult<Option<ConnectionForToken>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}
             FROM connections c
             JOIN apps a ON a.id = c.app_id
             JOIN vaults v ON v.id = c.vault_id
             LEFT JOIN providers p ON p.vault_id = a.vault_id AND p.key = a.provider_key
             WHERE c.vault_id = ?1 AND c.id = ?2",
            Columns::select(Dialect::Sqlite, CONNECTION_FOR_TOKEN_COLUMNS)
        )
    });
    let mut st = conn.prepare_cached(&SQL).map_err(db)?;
    one(&mut st, [vault, id], |c| token_row(c))
}

/// Inserts a connection or replaces its tokens in place. A connection of another app
/// is never taken over: that is a conflict.
pub(crate) fn upsert_connection(tx: &Connection, c: &ConnectionUpsert) -> StoreResult<()> {
    let t = &c.tokens;
    let changed = tx.execute(
        "INSERT INTO connections (vault_id, id, app_id, status, scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at, refreshed_at, updated_at)
         VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?7, ?8, 1, NULL, NULL, ?9, NULL, ?9)
         ON CONFLICT (vault_id, id) DO UPDATE SET
            app_id = excluded.app_id, status = 'active', scopes = excluded.scopes,
            token_set = excluded.token_set, token_format = excluded.token_format,
            expires_at = excluded.expires_at, has_refresh = excluded.has_refresh,
            version = connections.version + 1, lease_owner = NULL, lease_until = NULL,
            updated_at = excluded.updated_at
         WHERE connections.app_id = excluded.app_id",
        params![
            c.vault_id.as_str(),
            c.id.as_str(),
            c.app_id.as_str(),
            scopes_json(&t.scopes),
            t.token_set.as_bytes(),
            t.token_format as i64,
            opt_ms(t.expires_at),
            t.has_refresh,
            ms(t.at)
        ],
    )
    .map_err(db)?;
    if changed == 0 {
        return Err(StoreError::Conflict("connection of another app"));
    }
    Ok(())
}

fn key(vault: &VaultId, id: &ConnectionId) -> (String, String) {
    (vault.as_str().to_owned(), id.as_str().to_owned())
}

#[async_trait]
impl ConnectionStore for SqliteStore {
    async fn insert_connection(
        &self,
        c: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let exists: Option<i64> = tx
                    .query_row(
                        "SELECT 1 FROM connections WHERE vault_id = ?1 AND id = ?2",
                        [c.vault_id.as_str(), c.id.as_str()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(db)?;
                if exists.is_some() {
                    return Err(StoreError::Conflict("connection"));
                }
                upsert_connection(&tx, &c)?;
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn list_connections(&self, vault: &VaultId) -> StoreResult<Vec<ConnectionRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM connections c JOIN apps a ON a.id = c.app_id
                 WHERE c.vault_id = ?1 ORDER BY c.created_at, c.id",
                Columns::select(Dialect::Sqlite, &[&CONNECTION_COLUMNS])
            )
        });
        let vault = vault.as_str().to_owned();
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                all(&mut st, [vault], |c| connection(c))
            })
            .await
    }

    async fn connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM connections c JOIN apps a ON a.id = c.app_id
                 WHERE c.vault_id = ?1 AND c.id = ?2",
                Columns::select(Dialect::Sqlite, &[&CONNECTION_COLUMNS])
            )
        });
        let (vault, id) = key(vault, id);
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                one(&mut st, [vault, id], |c| connection(c))
            })
            .await
    }

    async fn connection_for_token(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
    ) -> StoreResult<Option<ConnectionForToken>> {
        self.pool
            .read_now(|conn| connection_for_token(conn, vault.as_str(), id.as_str()))
    }

    async fn rewrap_tokens(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        token_set: Ciphertext,
    ) -> StoreResult<bool> {
        let (vault, id) = key(vault, id);
        self.pool
            .write_relaxed(move |conn| {
                let changed = conn
                    .execute(
                        "UPDATE connections SET token_set = ?4, token_format = 1
                         WHERE vault_id = ?1 AND id = ?2 AND version = ?3 AND token_format = 2",
                        params![vault, id, version, token_set.as_bytes()],
                    )
                    .map_err(db)?;
                Ok(changed == 1)
            })
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
        let (vault, id) = key(vault, id);
        let owner = owner.to_owned();
        self.pool
            .write_relaxed(move |conn| {
                let changed = conn
                    .execute(
                        "UPDATE connections SET lease_owner = ?4, lease_until = ?5
                         WHERE vault_id = ?1 AND id = ?2 AND version = ?3
                           AND (lease_owner IS NULL OR lease_until <= ?6 OR lease_owner = ?4)",
                        params![vault, id, version, owner, ms(until), ms(now)],
                    )
                    .map_err(db)?;
                Ok(changed == 1)
            })
            .await
    }

    async fn commit_refresh(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        version: i64,
        t: TokenWrite,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let (vault, id) = key(vault, id);
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                // Fenced on the version alone: every token write bumps it, so a newer
                // token is never overwritten; and a refresher whose lease ran out but
                // whose write is still the newest keeps its rotated refresh token
                // instead of throwing it away.
                let changed = tx
                    .execute(
                        "UPDATE connections SET token_set = ?4, token_format = ?5, expires_at = ?6, has_refresh = ?7,
                            scopes = ?8, version = version + 1, lease_owner = NULL, lease_until = NULL,
                            refreshed_at = ?9, updated_at = ?9, status = 'active'
                         WHERE vault_id = ?1 AND id = ?2 AND version = ?3",
                        params![
                            vault,
                            id,
                            version,
                            t.token_set.as_bytes(),
                            t.token_format as i64,
                            opt_ms(t.expires_at),
                            t.has_refresh,
                            scopes_json(&t.scopes),
                            ms(t.at)
                        ],
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

    async fn release_refresh_lease(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        owner: &str,
    ) -> StoreResult<()> {
        let (vault, id) = key(vault, id);
        let owner = owner.to_owned();
        self.pool
            .write_relaxed(move |conn| {
                conn.execute(
                    "UPDATE connections SET lease_owner = NULL, lease_until = NULL WHERE vault_id = ?1 AND id = ?2 AND lease_owner = ?3",
                    params![vault, id, owner],
                )
                .map_err(db)?;
                Ok(())
            })
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
        let (vault, id) = key(vault, id);
        let owner = owner.to_owned();
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let changed = tx
                    .execute(
                        "UPDATE connections SET status = 'needs_reauth', lease_owner = NULL, lease_until = NULL
                         WHERE vault_id = ?1 AND id = ?2 AND version = ?3 AND lease_owner = ?4",
                        params![vault, id, version, owner],
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

    async fn delete_connection(
        &self,
        vault: &VaultId,
        id: &ConnectionId,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let (vault, id) = key(vault, id);
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let deleted = tx
                    .execute(
                        "DELETE FROM connections WHERE vault_id = ?1 AND id = ?2",
                        [vault, id],
                    )
                    .map_err(db)?;
                if deleted == 1 {
                    write_audit(&tx, &audit)?;
                }
                tx.commit().map_err(db)?;
                Ok(deleted == 1)
            })
            .await
    }
}
