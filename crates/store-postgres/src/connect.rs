//! [`ConnectStore`] on PostgreSQL: connect sessions and their links. The calls that
//! decide a race (`begin_exchange`, `spend_connect_link`) are each one conditional
//! UPDATE: PostgreSQL re-checks its WHERE clause against the newest row version once a
//! competing writer commits, so exactly one caller, in any process, sees its row changed.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
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

use crate::PgStore;
use crate::audit::write_audit;
use crate::connections::upsert_connection;
use crate::convert::{changed_one, db, ms, sql_error};
use crate::cursor::one;

#[async_trait]
impl ConnectStore for PgStore {
    async fn create_connect_session(
        &self,
        cs: ConnectSessionRecord,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        tx.execute(
            "INSERT INTO connect_sessions (id, vault_id, app_id, connection_id, state_hash, secrets, scopes, return_to, status, error, created_by, created_at, expires_at, finished_at, link_hash, link_secret, link_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, $12, NULL, $13, $14, $15)",
            &[
                &cs.id.as_str(),
                &cs.vault_id.as_str(),
                &cs.app_id.as_str(),
                &cs.connection_id.as_str(),
                &cs.state_hash.as_bytes(),
                &cs.secrets.as_bytes(),
                &scopes_json(&cs.scopes),
                &cs.return_to,
                &cs.status.as_str(),
                &cs.created_by,
                &ms(cs.created_at),
                &ms(cs.expires_at),
                &cs.link.as_ref().map(|l| l.hash.as_bytes()),
                &cs.link.as_ref().map(|l| l.sealed_url.as_bytes()),
                &cs.link.as_ref().map(|l| ms(l.expires_at)),
            ],
        )
        .await
        .map_err(sql_error("connect session"))?;
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn connect_session(
        &self,
        vault: &VaultId,
        id: &ConnectSessionId,
    ) -> StoreResult<Option<ConnectSessionRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM connect_sessions s WHERE s.vault_id = $1 AND s.id = $2",
                Columns::select(Dialect::Postgres, &[&SESSION_COLUMNS])
            )
        });
        let row = self
            .pool
            .query_opt(&SQL, &[&vault.as_str(), &id.as_str()])
            .await?;
        one(row, |c| session(c))
    }

    async fn connect_link(&self, link_hash: &LookupHash) -> StoreResult<Option<ConnectLinkView>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}
                 FROM connect_sessions s
                 JOIN apps a ON a.id = s.app_id
                 JOIN vaults v ON v.id = s.vault_id
                 WHERE s.link_hash = $1",
                Columns::select(Dialect::Postgres, LINK_VIEW_COLUMNS)
            )
        });
        let row = self.pool.query_opt(&SQL, &[&link_hash.as_bytes()]).await?;
        one(row, |c| link_view(c))
    }

    async fn spend_connect_link(
        &self,
        id: &ConnectSessionId,
        binding_hash: &LookupHash,
        now: DateTime<Utc>,
        state_expires_at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<bool> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        let changed = tx
            .execute(
                "UPDATE connect_sessions
                 SET link_spent_at = $2, binding_hash = $3, expires_at = $4
                 WHERE id = $1 AND status = 'pending' AND link_hash IS NOT NULL
                   AND link_spent_at IS NULL AND link_expires_at > $2",
                &[
                    &id.as_str(),
                    &ms(now),
                    &binding_hash.as_bytes(),
                    &ms(state_expires_at),
                ],
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

    async fn pending_connect(
        &self,
        state_hash: &LookupHash,
    ) -> StoreResult<Option<PendingConnect>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {}
                 FROM connect_sessions s
                 JOIN apps a ON a.id = s.app_id
                 WHERE s.state_hash = $1",
                Columns::select(Dialect::Postgres, PENDING_CONNECT_COLUMNS)
            )
        });
        let row = self.pool.query_opt(&SQL, &[&state_hash.as_bytes()]).await?;
        one(row, |c| pending_connect(c))
    }

    async fn begin_exchange(&self, id: &ConnectSessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        let c = self.pool.client().await?;
        let st = c
            .prepare_cached(
                "UPDATE connect_sessions SET status = 'exchanging'
                 WHERE id = $1 AND status = 'pending' AND expires_at > $2",
            )
            .await
            .map_err(db)?;
        let changed = c
            .execute(&st, &[&id.as_str(), &ms(now)])
            .await
            .map_err(db)?;
        Ok(changed_one(changed))
    }

    async fn finish_connect(
        &self,
        id: &ConnectSessionId,
        cu: ConnectionUpsert,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        upsert_connection(&tx, &cu).await?;
        tx.execute(
            "UPDATE connect_sessions SET status = 'completed', finished_at = $2, connection_id = $3 WHERE id = $1",
            &[&id.as_str(), &ms(cu.tokens.at), &cu.id.as_str()],
        )
        .await
        .map_err(db)?;
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn fail_connect(
        &self,
        id: &ConnectSessionId,
        error: &str,
        at: DateTime<Utc>,
        audit: NewAuditRecord,
    ) -> StoreResult<()> {
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        tx.execute(
            "UPDATE connect_sessions SET status = 'failed', error = $2, finished_at = $3 WHERE id = $1 AND status IN ('pending', 'exchanging')",
            &[&id.as_str(), &error, &ms(at)],
        )
        .await
        .map_err(db)?;
        write_audit(&tx, &audit).await?;
        tx.commit().await.map_err(db)
    }
}
