//! [`AuditStore`] on MySQL: appending to the hash chain under a lock on its head row,
//! and reading it back.

use std::sync::LazyLock;

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Params, Transaction};
use tokenwarden_domain::{AuditId, VaultId};
use tokenwarden_store::audit::records::{AUDIT_COLUMNS, HEAD_COLUMNS, chained_record, head};
use tokenwarden_store::audit::{AuditFields, GENESIS, SERVER_CHAIN, audit_hash, lock_order};
use tokenwarden_store::rows::{Columns, Dialect};
use tokenwarden_store::{
    AuditHead, AuditRecord, AuditStore, ChainedAuditRecord, NewAuditRecord, StoreError, StoreResult,
};

use crate::MysqlStore;
use crate::convert::{db, params};
use crate::cursor::all;
use crate::pool::write_tx;

/// Appends `a` to its chain inside the caller's transaction. Writers in many processes
/// may append to one chain at once, so the chain's head row is locked first: it is
/// created (length 0, genesis hash) if missing, then read `FOR UPDATE`, which waits for
/// any other appender to commit and returns its head. The record's `seq` is drawn while
/// the lock is held, so it grows along the chain.
pub(crate) async fn write_audit(
    tx: &mut Transaction<'static>,
    a: &NewAuditRecord,
) -> Result<(), StoreError> {
    let f = AuditFields::of_new(a);
    let chain = f.chain();
    tx.exec_drop(
        "INSERT INTO audit_heads (chain, length, last_seq, hash) VALUES (?, 0, 0, ?)
         ON DUPLICATE KEY UPDATE chain = chain",
        params![chain, GENESIS.as_slice()],
    )
    .await
    .map_err(db)?;
    let head: Option<(i64, Vec<u8>)> = tx
        .exec_first(
            "SELECT length, hash FROM audit_heads WHERE chain = ? FOR UPDATE",
            params![chain],
        )
        .await
        .map_err(db)?;
    let (length, prev) =
        head.ok_or_else(|| StoreError::Corrupt("audit_heads row vanished".into()))?;
    let hash = audit_hash(&prev, &f);
    tx.exec_drop(
        "INSERT INTO audit_log (id, vault_id, at, key_id, account_id, action, target, outcome, ip, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            f.id, f.vault_id, f.at_ms, f.key_id, f.account_id, f.action, f.target, f.outcome,
            f.ip, prev, hash.as_slice()
        ],
    )
    .await
    .map_err(db)?;
    let seq = tx
        .last_insert_id()
        .and_then(|s| i64::try_from(s).ok())
        .ok_or_else(|| StoreError::Corrupt("audit_log.seq not assigned".into()))?;
    tx.exec_drop(
        "UPDATE audit_heads SET length = ?, last_seq = ?, hash = ? WHERE chain = ?",
        params![length + 1, seq, hash.as_slice(), chain],
    )
    .await
    .map_err(db)?;
    Ok(())
}

#[async_trait]
impl AuditStore for MysqlStore {
    async fn append_audits(&self, mut records: Vec<NewAuditRecord>) -> StoreResult<()> {
        lock_order(&mut records);
        write_tx!(self, tx => {
            for record in &records {
                write_audit(&mut tx, record).await?;
            }
        })
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM audit_heads h ORDER BY h.chain",
                Columns::select(Dialect::Mysql, &[&HEAD_COLUMNS])
            )
        });
        all(&mut self.conn().await?, &SQL, Params::Empty, head).await
    }

    async fn audit_chains(&self) -> StoreResult<Vec<String>> {
        self.conn()
            .await?
            .exec(
                "SELECT DISTINCT coalesce(vault_id, '') FROM audit_log ORDER BY 1",
                (),
            )
            .await
            .map_err(db)
    }

    async fn audit_chain(
        &self,
        chain: &str,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChainedAuditRecord>> {
        // The server chain is the records without a vault; each form walks an index.
        static SERVER: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM audit_log l WHERE l.vault_id IS NULL AND l.seq > ? ORDER BY l.seq LIMIT ?",
                Columns::select(Dialect::Mysql, &[&AUDIT_COLUMNS])
            )
        });
        static VAULT: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM audit_log l WHERE l.vault_id = ? AND l.seq > ? ORDER BY l.seq LIMIT ?",
                Columns::select(Dialect::Mysql, &[&AUDIT_COLUMNS])
            )
        });
        let (sql, params) = if chain == SERVER_CHAIN {
            (&*SERVER, params![after_seq, limit])
        } else {
            (&*VAULT, params![chain, after_seq, limit])
        };
        all(&mut self.conn().await?, sql, params, chained_record).await
    }

    async fn list_audit(
        &self,
        vault: &VaultId,
        limit: u32,
        before: Option<&AuditId>,
    ) -> StoreResult<Vec<AuditRecord>> {
        static FIRST: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM audit_log l WHERE l.vault_id = ? ORDER BY l.seq DESC LIMIT ?",
                Columns::select(Dialect::Mysql, &[&AUDIT_COLUMNS])
            )
        });
        static AFTER: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM audit_log l
                 WHERE l.vault_id = ?
                   AND l.seq < coalesce((SELECT b.seq FROM audit_log b WHERE b.id = ? AND b.vault_id = ?), 0)
                 ORDER BY l.seq DESC LIMIT ?",
                Columns::select(Dialect::Mysql, &[&AUDIT_COLUMNS])
            )
        });
        let vault = vault.as_str();
        let (sql, params) = match before {
            None => (&*FIRST, params![vault, limit]),
            Some(before) => (&*AFTER, params![vault, before.as_str(), vault, limit]),
        };
        all(&mut self.conn().await?, sql, params, |c| {
            chained_record(c).map(|r| r.record)
        })
        .await
    }
}
