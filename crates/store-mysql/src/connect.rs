//! [`ConnectStore`] on MySQL: connect sessions and their links.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mysql_async::Transaction;
use mysql_async::prelude::Queryable;
use tokenwarden_domain::{ConnectSessionId, VaultId};
use tokenwarden_store::connect::{
    LINK_VIEW_COLUMNS, PENDING_CONNECT_COLUMNS, SESSION_COLUMNS, link_view, pending_connect,
    session,
};
use tokenwarden_store::rows::{Columns, Dialect, scopes_json};
use tokenwarden_store::{
    ConnectLinkView, ConnectSessionRecord, ConnectStore, ConnectionUpsert, LookupHash,
    NewAuditRecord, PendingConnect, StoreError, StoreResult,
};

use crate::MysqlStore;
use crate::audit::write_audit;
use crate::connections::upsert_connection;
use crate::convert::{db, ms, params, sql_error};
use crate::cursor::one;
use crate::pool::write_tx;

async fn insert_connect_session(
    tx: &mut Transaction<'static>,
    s: &ConnectSessionRecord,
) -> Result<(), StoreError> {
    tx.exec_drop(
        "INSERT INTO connect_sessions (id, vault_id, app_id, connection_id, state_hash, secrets, scopes, return_to, status, error, created_by, created_at, expires_at, finished_at, link_hash, link_secret, link_expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, NULL, ?, ?, ?)",
        params![
            s.id.as_str(),
            s.vault_id.as_str(),
            s.app_id.as_str(),
            s.connection_id.as_str(),
            s.state_hash.as_bytes(),
            s.secrets.as_bytes(),
            scopes_json(&s.scopes),
            s.return_to.as_deref(),
            s.status.as_str(),
            s.created_by.as_str(),
            ms(s.created_at),
            ms(s.expires_at),
            s.link.as_ref().map(|l| l.hash.as_bytes()),
            s.link.as_ref().map(|l| l.sealed_url.as_bytes()),
            s.link.as_ref().map(|l| ms(l.expires_at)),
        ],
    )
    .await
    .map_err(sql_error("connect session"))
}

#[async_trait]
impl ConnectStore for MysqlStore {
    async fn create_connect_session(
        &self,
        session: ConnectSessionRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        write_tx!(self, tx => {
            insert_connect_session(&mut tx, &session).await?;
            write_audit(&mut tx, &audit).await?;
        })
    }

    async fn connect_session(
        &self,
        vault: &VaultId,
        id: &ConnectSessionId,
    ) -> StoreResult<Option<ConnectSessionRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM connect_sessions s WHERE s.vault_id = ? AND s.id = ?",
                Columns::select(Dialect::Mysql, &[&SESSION_COLUMNS])
            )
        });
        one(
            &mut self.conn().await?,
            &SQL,
            params![vault.as_str(), id.as_str()],
            session,
        )
        .await
    }

    async fn connect_link(&self, link_hash: &LookupHash) -> StoreResult<Option<ConnectLinkView>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}
                 FROM connect_sessions s
                 JOIN apps a ON a.id = s.app_id
                 JOIN vaults v ON v.id = s.vault_id
                 WHERE s.link_hash = ?",
                Columns::select(Dialect::Mysql, LINK_VIEW_COLUMNS)
            )
        });
        one(
            &mut self.conn().await?,
            &SQL,
            params![link_hash.as_bytes()],
            link_view,
        )
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
        write_tx!(self, tx => {
            tx.exec_drop(
                "UPDATE connect_sessions
                 SET link_spent_at = ?, binding_hash = ?, expires_at = ?
                 WHERE id = ? AND status = 'pending' AND link_hash IS NOT NULL
                   AND link_spent_at IS NULL AND link_expires_at > ?",
                params![
                    ms(now),
                    binding_hash.as_bytes(),
                    ms(state_expires_at),
                    id.as_str(),
                    ms(now)
                ],
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

    async fn pending_connect(
        &self,
        state_hash: &LookupHash,
    ) -> StoreResult<Option<PendingConnect>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}
                 FROM connect_sessions s
                 JOIN apps a ON a.id = s.app_id
                 WHERE s.state_hash = ?",
                Columns::select(Dialect::Mysql, PENDING_CONNECT_COLUMNS)
            )
        });
        one(
            &mut self.conn().await?,
            &SQL,
            params![state_hash.as_bytes()],
            pending_connect,
        )
        .await
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
            upsert_connection(&mut tx, &connection).await?;
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
}
