//! [`ConnectStore`] on SQLite: connect sessions and their links.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;
use tokenwarden_domain::{ConnectSessionId, VaultId};
use tokenwarden_store::connect::{
    LINK_VIEW_COLUMNS, PENDING_CONNECT_COLUMNS, SESSION_COLUMNS, link_view, pending_connect,
    session,
};
use tokenwarden_store::rows::{Columns, Dialect, scopes_json};
use tokenwarden_store::{
    ConnectLinkView, ConnectSessionRecord, ConnectStore, ConnectionUpsert, LookupHash,
    NewAuditRecord, PendingConnect, StoreResult,
};

use crate::SqliteStore;
use crate::audit::write_audit;
use crate::connections::upsert_connection;
use crate::convert::{db, ms, savepoint, sql_error};
use crate::cursor::one;

#[async_trait]
impl ConnectStore for SqliteStore {
    async fn create_connect_session(
        &self,
        s: ConnectSessionRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                tx.execute(
                    "INSERT INTO connect_sessions (id, vault_id, app_id, connection_id, state_hash, secrets, scopes, return_to, status, error, created_by, created_at, expires_at, finished_at, link_hash, link_secret, link_expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?11, ?12, NULL, ?13, ?14, ?15)",
                    params![
                        s.id.as_str(),
                        s.vault_id.as_str(),
                        s.app_id.as_str(),
                        s.connection_id.as_str(),
                        s.state_hash.as_bytes(),
                        s.secrets.as_bytes(),
                        scopes_json(&s.scopes),
                        s.return_to,
                        s.status.as_str(),
                        s.created_by,
                        ms(s.created_at),
                        ms(s.expires_at),
                        s.link.as_ref().map(|l| l.hash.as_bytes()),
                        s.link.as_ref().map(|l| l.sealed_url.as_bytes()),
                        s.link.as_ref().map(|l| ms(l.expires_at)),
                    ],
                )
                .map_err(sql_error("connect session"))?;
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)
            })
            .await
    }

    async fn connect_session(
        &self,
        vault: &VaultId,
        id: &ConnectSessionId,
    ) -> StoreResult<Option<ConnectSessionRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM connect_sessions s WHERE s.vault_id = ?1 AND s.id = ?2",
                Columns::select(Dialect::Sqlite, &[&SESSION_COLUMNS])
            )
        });
        let (vault, id) = (vault.as_str().to_owned(), id.as_str().to_owned());
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                one(&mut st, [vault, id], |c| session(c))
            })
            .await
    }

    async fn connect_link(&self, link_hash: &LookupHash) -> StoreResult<Option<ConnectLinkView>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}
                 FROM connect_sessions s
                 JOIN apps a ON a.id = s.app_id
                 JOIN vaults v ON v.id = s.vault_id
                 WHERE s.link_hash = ?1",
                Columns::select(Dialect::Sqlite, LINK_VIEW_COLUMNS)
            )
        });
        let link_hash = link_hash.clone();
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                one(&mut st, [link_hash.as_bytes()], |c| link_view(c))
            })
            .await
    }

    async fn spend_connect_link(
        &self,
        id: &ConnectSessionId,
        binding_hash: &LookupHash,
        now: DateTime<Utc>,
        state_expires_at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let id = id.as_str().to_owned();
        let binding_hash = binding_hash.clone();
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                let changed = tx
                    .execute(
                        "UPDATE connect_sessions
                         SET link_spent_at = ?2, binding_hash = ?3, expires_at = ?4
                         WHERE id = ?1 AND status = 'pending' AND link_hash IS NOT NULL
                           AND link_spent_at IS NULL AND link_expires_at > ?2",
                        params![id, ms(now), binding_hash.as_bytes(), ms(state_expires_at)],
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

    async fn pending_connect(
        &self,
        state_hash: &LookupHash,
    ) -> StoreResult<Option<PendingConnect>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}
                 FROM connect_sessions s
                 JOIN apps a ON a.id = s.app_id
                 WHERE s.state_hash = ?1",
                Columns::select(Dialect::Sqlite, PENDING_CONNECT_COLUMNS)
            )
        });
        let hash = state_hash.clone();
        self.pool
            .read(move |conn| {
                let mut st = conn.prepare_cached(&SQL).map_err(db)?;
                one(&mut st, [hash.as_bytes()], |c| pending_connect(c))
            })
            .await
    }

    async fn begin_exchange(&self, id: &ConnectSessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        let id = id.as_str().to_owned();
        self.pool
            .write(move |conn| {
                let changed = conn
                    .execute(
                        "UPDATE connect_sessions SET status = 'exchanging'
                         WHERE id = ?1 AND status = 'pending' AND expires_at > ?2",
                        params![id, ms(now)],
                    )
                    .map_err(db)?;
                Ok(changed == 1)
            })
            .await
    }

    async fn finish_connect(
        &self,
        id: &ConnectSessionId,
        c: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        let id = id.clone();
        self.pool
            .write(move |conn| {
                let tx = savepoint(conn)?;
                upsert_connection(&tx, &c)?;
                tx.execute(
                    "UPDATE connect_sessions SET status = 'completed', finished_at = ?2, connection_id = ?3 WHERE id = ?1",
                    params![id.as_str(), ms(c.tokens.at), c.id.as_str()],
                )
                .map_err(db)?;
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)
            })
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
            .write(move |conn| {
                let tx = savepoint(conn)?;
                tx.execute(
                    "UPDATE connect_sessions SET status = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1 AND status IN ('pending', 'exchanging')",
                    params![id.as_str(), error, ms(at)],
                )
                .map_err(db)?;
                write_audit(&tx, &audit)?;
                tx.commit().map_err(db)
            })
            .await
    }
}
