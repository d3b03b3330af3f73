//! The audit log and its hash chain on MySQL.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Transaction};
use tokenwarden_domain::{AuditId, VaultId};
use tokenwarden_store::audit::{AuditFields, GENESIS, SERVER_CHAIN, audit_hash};
use tokenwarden_store::{AuditHead, AuditRecord, ChainedAuditRecord, NewAuditRecord, StoreError};

use crate::convert::{Cols, db, params, parsed, time};

const AUDIT_COLUMNS: &str =
    "seq, id, vault_id, at, key_id, account_id, action, target, outcome, ip, prev_hash, hash";

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

fn record(row: Row) -> Result<ChainedAuditRecord, StoreError> {
    let mut c = Cols::new(row);
    let seq: i64 = c.get("audit_log.seq")?;
    let id: String = c.get("audit_log.id")?;
    let vault_id: Option<String> = c.get("audit_log.vault_id")?;
    Ok(ChainedAuditRecord {
        record: AuditRecord {
            seq,
            id: parsed("audit_log.id", AuditId::parse(&id))?,
            vault_id: vault_id
                .map(|v| parsed("audit_log.vault_id", VaultId::parse(&v)))
                .transpose()?,
            at: time(c.get("audit_log.at")?)?,
            key_id: c.get("audit_log.key_id")?,
            account_id: c.get("audit_log.account_id")?,
            action: c.get("audit_log.action")?,
            target: c.get("audit_log.target")?,
            outcome: c.get("audit_log.outcome")?,
            ip: c.get("audit_log.ip")?,
        },
        prev_hash: c.get("audit_log.prev_hash")?,
        hash: c.get("audit_log.hash")?,
    })
}

pub(crate) async fn list_audit(
    conn: &mut Conn,
    vault: &str,
    limit: u32,
    before: Option<&str>,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows: Vec<Row> = match before {
        None => {
            conn.exec(
                format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE vault_id = ? ORDER BY seq DESC LIMIT ?"
                ),
                params![vault, limit],
            )
            .await
        }
        Some(before) => {
            conn.exec(
                format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log
                     WHERE vault_id = ?
                       AND seq < coalesce((SELECT b.seq FROM audit_log b WHERE b.id = ? AND b.vault_id = ?), 0)
                     ORDER BY seq DESC LIMIT ?"
                ),
                params![vault, before, vault, limit],
            )
            .await
        }
    }
    .map_err(db)?;
    rows.into_iter()
        .map(|r| record(r).map(|c| c.record))
        .collect()
}

pub(crate) async fn audit_heads(conn: &mut Conn) -> Result<Vec<AuditHead>, StoreError> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT chain, length, last_seq, hash FROM audit_heads ORDER BY chain",
            (),
        )
        .await
        .map_err(db)?;
    rows.into_iter()
        .map(|row| {
            let mut c = Cols::new(row);
            Ok(AuditHead {
                chain: c.get("audit_heads.chain")?,
                length: c.get("audit_heads.length")?,
                last_seq: c.get("audit_heads.last_seq")?,
                hash: c.get("audit_heads.hash")?,
            })
        })
        .collect()
}

pub(crate) async fn audit_chain(
    conn: &mut Conn,
    chain: &str,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<ChainedAuditRecord>, StoreError> {
    // The server chain is the records without a vault; each form walks an index.
    let rows: Vec<Row> = if chain == SERVER_CHAIN {
        conn.exec(
            format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE vault_id IS NULL AND seq > ? ORDER BY seq LIMIT ?"
            ),
            params![after_seq, limit],
        )
        .await
    } else {
        conn.exec(
            format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE vault_id = ? AND seq > ? ORDER BY seq LIMIT ?"
            ),
            params![chain, after_seq, limit],
        )
        .await
    }
    .map_err(db)?;
    rows.into_iter().map(record).collect()
}

pub(crate) async fn audit_chains(conn: &mut Conn) -> Result<Vec<String>, StoreError> {
    conn.exec(
        "SELECT DISTINCT coalesce(vault_id, '') FROM audit_log ORDER BY 1",
        (),
    )
    .await
    .map_err(db)
}
