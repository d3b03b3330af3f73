//! [`AuditStore`] on PostgreSQL: appending to the hash chain, and reading it back.

use std::sync::LazyLock;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use tokenwarden_domain::{AuditId, VaultId};
use tokenwarden_store::audit::records::{AUDIT_COLUMNS, HEAD_COLUMNS, chained_record, head};
use tokenwarden_store::audit::{AuditFields, GENESIS, SERVER_CHAIN, audit_hash, lock_order};
use tokenwarden_store::rows::{Columns, Cursor, Dialect};
use tokenwarden_store::{
    AuditHead, AuditRecord, AuditStore, ChainedAuditRecord, NewAuditRecord, StoreError, StoreResult,
};

use crate::PgStore;
use crate::convert::db;
use crate::cursor::{RowCursor, all};

/// Appends `a` to its chain inside the caller's transaction. Many processes append at
/// once, so the chain's head row is locked first (created at length 0 if the chain is
/// new): whoever holds it reads the previous hash, draws the next `seq` and moves the
/// head, and the others wait for its commit. Every method that writes an audit record
/// comes through here.
pub(crate) async fn write_audit(
    tx: &Transaction<'_>,
    a: &NewAuditRecord,
) -> Result<(), StoreError> {
    write_audits(tx, std::slice::from_ref(a)).await
}

/// Appends a batch (already in [`lock_order`]) inside the
/// caller's transaction, as appending the records one by one would, but with one head lock
/// and one head update per chain, and one multi-row insert per chain
/// (inserted in chain order, so `seq` still grows along the chain).
pub(crate) async fn write_audits(
    tx: &Transaction<'_>,
    records: &[NewAuditRecord],
) -> Result<(), StoreError> {
    let ensure = tx
        .prepare_cached(
            "INSERT INTO audit_heads (chain, length, last_seq, hash) VALUES ($1, 0, 0, $2)
             ON CONFLICT (chain) DO NOTHING",
        )
        .await
        .map_err(db)?;
    let lock = tx
        .prepare_cached("SELECT length, hash FROM audit_heads WHERE chain = $1 FOR UPDATE")
        .await
        .map_err(db)?;
    // One statement per chain, however many records: a batch of reads costs the server
    // one insert to plan and execute instead of one per read. Rows are inserted in
    // array order, so `seq` grows along the chain.
    let insert = tx
        .prepare_cached(
            "INSERT INTO audit_log (id, vault_id, at, key_id, account_id, action, target, outcome, ip, prev_hash, hash)
             SELECT id, vault_id, at, key_id, account_id, action, target, outcome, ip, prev_hash, hash
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                         $7::text[], $8::text[], $9::text[], $10::bytea[], $11::bytea[])
                  WITH ORDINALITY
                  AS r(id, vault_id, at, key_id, account_id, action, target, outcome, ip, prev_hash, hash, n)
             ORDER BY n
             RETURNING seq",
        )
        .await
        .map_err(db)?;
    let advance = tx
        .prepare_cached(
            "UPDATE audit_heads SET length = $2, last_seq = $3, hash = $4 WHERE chain = $1",
        )
        .await
        .map_err(db)?;
    let genesis = GENESIS.as_slice();
    let fields: Vec<AuditFields<'_>> = records.iter().map(AuditFields::of_new).collect();
    for group in fields.chunk_by(|a, b| a.chain() == b.chain()) {
        let Some(first) = group.first() else {
            continue;
        };
        let chain = first.chain();
        tx.execute(&ensure, &[&chain, &genesis]).await.map_err(db)?;
        let locked = tx.query_one(&lock, &[&chain]).await.map_err(db)?;
        let mut locked = RowCursor::new(&locked);
        let length = locked.int("audit_heads.length")?;
        // The head's hash, then each record's: record i links [i] to [i + 1].
        let mut chained: Vec<Vec<u8>> = Vec::with_capacity(group.len() + 1);
        chained.push(locked.bytes("audit_heads.hash")?);
        for f in group {
            let prev = chained.last().map_or(&[][..], Vec::as_slice);
            let hash = audit_hash(prev, f).to_vec();
            chained.push(hash);
        }
        let ids: Vec<&str> = group.iter().map(|f| f.id).collect();
        let vaults: Vec<Option<&str>> = group.iter().map(|f| f.vault_id).collect();
        let ats: Vec<i64> = group.iter().map(|f| f.at_ms).collect();
        let keys: Vec<Option<&str>> = group.iter().map(|f| f.key_id).collect();
        let accounts: Vec<Option<&str>> = group.iter().map(|f| f.account_id).collect();
        let actions: Vec<&str> = group.iter().map(|f| f.action).collect();
        let targets: Vec<Option<&str>> = group.iter().map(|f| f.target).collect();
        let outcomes: Vec<&str> = group.iter().map(|f| f.outcome).collect();
        let ips: Vec<Option<&str>> = group.iter().map(|f| f.ip).collect();
        let prevs: Vec<&[u8]> = chained[..group.len()].iter().map(Vec::as_slice).collect();
        let hashes: Vec<&[u8]> = chained[1..].iter().map(Vec::as_slice).collect();
        let head_hash = chained.last().map_or(&[][..], Vec::as_slice);
        let rows = tx
            .query(
                &insert,
                &[
                    &ids, &vaults, &ats, &keys, &accounts, &actions, &targets, &outcomes, &ips,
                    &prevs, &hashes,
                ],
            )
            .await
            .map_err(db)?;
        let mut last_seq = 0i64;
        for row in &rows {
            last_seq = last_seq.max(RowCursor::new(row).int("audit_log.seq")?);
        }
        let count = i64::try_from(group.len()).map_err(StoreError::backend)?;
        tx.execute(
            &advance,
            &[&chain, &(length + count), &last_seq, &head_hash],
        )
        .await
        .map_err(db)?;
    }
    Ok(())
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audits(&self, mut records: Vec<NewAuditRecord>) -> StoreResult<()> {
        lock_order(&mut records);
        let mut c = self.pool.client().await?;
        let tx = c.transaction().await.map_err(db)?;
        write_audits(&tx, &records).await?;
        tx.commit().await.map_err(db)
    }

    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM audit_heads h ORDER BY h.chain",
                Columns::select(Dialect::Postgres, &[&HEAD_COLUMNS])
            )
        });
        let rows = self.pool.query(&SQL, &[]).await?;
        all(&rows, |c| head(c))
    }

    async fn audit_chains(&self) -> StoreResult<Vec<String>> {
        let rows = self
            .pool
            .query(
                "SELECT DISTINCT coalesce(vault_id, '') FROM audit_log ORDER BY 1",
                &[],
            )
            .await?;
        all(&rows, |c| c.text("audit_log.vault_id"))
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
                "SELECT {} FROM audit_log l
                 WHERE l.vault_id IS NULL AND $1::text = '' AND l.seq > $2 ORDER BY l.seq LIMIT $3",
                Columns::select(Dialect::Postgres, &[&AUDIT_COLUMNS])
            )
        });
        static VAULT: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM audit_log l
                 WHERE l.vault_id = $1 AND l.seq > $2 ORDER BY l.seq LIMIT $3",
                Columns::select(Dialect::Postgres, &[&AUDIT_COLUMNS])
            )
        });
        let sql = if chain == SERVER_CHAIN {
            &SERVER
        } else {
            &VAULT
        };
        let rows = self
            .pool
            .query(sql, &[&chain, &after_seq, &i64::from(limit)])
            .await?;
        all(&rows, |c| chained_record(c))
    }

    async fn list_audit(
        &self,
        vault: &VaultId,
        limit: u32,
        before: Option<&AuditId>,
    ) -> StoreResult<Vec<AuditRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {} FROM audit_log l
                 WHERE l.vault_id = $1
                   AND ($2::text IS NULL OR l.seq < coalesce((SELECT seq FROM audit_log WHERE id = $2 AND vault_id = $1), 0))
                 ORDER BY l.seq DESC LIMIT $3",
                Columns::select(Dialect::Postgres, &[&AUDIT_COLUMNS])
            )
        });
        let before = before.map(AuditId::as_str);
        let rows = self
            .pool
            .query(&SQL, &[&vault.as_str(), &before, &i64::from(limit)])
            .await?;
        all(&rows, |c| chained_record(c).map(|r| r.record))
    }
}
