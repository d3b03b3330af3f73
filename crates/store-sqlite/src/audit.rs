//! The audit log and its hash chain on SQLite.

use rusqlite::{Connection, OptionalExtension, Row, params};
use tokenwarden_domain::{AuditId, VaultId};
use tokenwarden_store::audit::{AuditFields, GENESIS, SERVER_CHAIN, audit_hash};
use tokenwarden_store::{AuditHead, AuditRecord, ChainedAuditRecord, NewAuditRecord, StoreError};

use crate::convert::{db, parsed, time};

const AUDIT_COLUMNS: &str =
    "seq, id, vault_id, at, key_id, account_id, action, target, outcome, ip, prev_hash, hash";

/// Appends `a` to its chain. Runs inside the caller's write transaction; SQLite's one
/// writer serialises appends, so reading the head and writing it back cannot race.
pub(crate) fn write_audit(conn: &Connection, a: &NewAuditRecord) -> Result<(), StoreError> {
    write_audits(conn, std::slice::from_ref(a))
}

/// Appends `records` in order, each to its chain. A chain's head is read once and
/// written once however many of its records the batch holds (the group commit of the
/// read path puts many records of one vault in one batch).
pub(crate) fn write_audits(
    conn: &Connection,
    records: &[NewAuditRecord],
) -> Result<(), StoreError> {
    // The heads this batch read, advanced in memory and written back at the end.
    let mut heads: Vec<Head<'_>> = Vec::new();
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO audit_log (id, vault_id, at, key_id, account_id, action, target, outcome, ip, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(db)?;
    for record in records {
        let f = AuditFields::of_new(record);
        let chain = f.chain();
        let at = match heads.iter().position(|h| h.chain == chain) {
            Some(at) => at,
            None => {
                heads.push(read_head(conn, chain)?);
                heads.len() - 1
            }
        };
        let head = &mut heads[at];
        let hash = audit_hash(&head.hash, &f);
        insert
            .execute(params![
                f.id,
                f.vault_id,
                f.at_ms,
                f.key_id,
                f.account_id,
                f.action,
                f.target,
                f.outcome,
                f.ip,
                head.hash.as_slice(),
                hash.as_slice(),
            ])
            .map_err(db)?;
        head.length += 1;
        head.last_seq = conn.last_insert_rowid();
        head.hash = hash.to_vec();
    }
    let mut write_head = conn
        .prepare_cached(
            "INSERT INTO audit_heads (chain, length, last_seq, hash) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (chain) DO UPDATE SET length = excluded.length, last_seq = excluded.last_seq, hash = excluded.hash",
        )
        .map_err(db)?;
    for h in &heads {
        write_head
            .execute(params![h.chain, h.length, h.last_seq, h.hash.as_slice()])
            .map_err(db)?;
    }
    Ok(())
}

/// A chain's head as a batch advances it.
struct Head<'a> {
    chain: &'a str,
    length: i64,
    last_seq: i64,
    hash: Vec<u8>,
}

/// A chain's stored head; the genesis hash for a new chain. (A damaged head is chained
/// from as it is: `audit verify` reports it, reads go on.)
fn read_head<'a>(conn: &Connection, chain: &'a str) -> Result<Head<'a>, StoreError> {
    let head = conn
        .prepare_cached("SELECT length, last_seq, hash FROM audit_heads WHERE chain = ?1")
        .and_then(|mut st| {
            st.query_row([chain], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(db)?;
    let (length, last_seq, hash) = head.unwrap_or((0, 0, GENESIS.to_vec()));
    Ok(Head {
        chain,
        length,
        last_seq,
        hash,
    })
}

/// Migration hook: chains the records written before the chain existed, in `seq`
/// order, so every database verifies from its first record.
pub(crate) fn chain_existing(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    type Row10 = (
        i64,
        String,
        Option<String>,
        i64,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
        String,
        Option<String>,
    );
    let rows: Vec<Row10> = tx
        .prepare(
            "SELECT seq, id, vault_id, at, key_id, account_id, action, target, outcome, ip
             FROM audit_log ORDER BY seq",
        )?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut heads: std::collections::HashMap<String, (i64, i64, [u8; 32])> =
        std::collections::HashMap::new();
    for (seq, id, vault_id, at, key_id, account_id, action, target, outcome, ip) in &rows {
        let f = AuditFields {
            id,
            vault_id: vault_id.as_deref(),
            at_ms: *at,
            key_id: key_id.as_deref(),
            account_id: account_id.as_deref(),
            action,
            target: target.as_deref(),
            outcome,
            ip: ip.as_deref(),
        };
        let chain = f.chain().to_owned();
        let (length, prev) = heads
            .get(&chain)
            .map(|(l, _, h)| (*l, *h))
            .unwrap_or((0, GENESIS));
        let hash = audit_hash(&prev, &f);
        tx.execute(
            "UPDATE audit_log SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            params![seq, prev.as_slice(), hash.as_slice()],
        )?;
        heads.insert(chain, (length + 1, *seq, hash));
    }
    for (chain, (length, last_seq, hash)) in heads {
        tx.execute(
            "INSERT INTO audit_heads (chain, length, last_seq, hash) VALUES (?1, ?2, ?3, ?4)",
            params![chain, length, last_seq, hash.as_slice()],
        )?;
    }
    Ok(())
}

fn record(r: &Row<'_>) -> rusqlite::Result<Result<ChainedAuditRecord, StoreError>> {
    let seq: i64 = r.get(0)?;
    let id: String = r.get(1)?;
    let vault_id: Option<String> = r.get(2)?;
    let at: i64 = r.get(3)?;
    let key_id: Option<String> = r.get(4)?;
    let account_id: Option<String> = r.get(5)?;
    let action: String = r.get(6)?;
    let target: Option<String> = r.get(7)?;
    let outcome: String = r.get(8)?;
    let ip: Option<String> = r.get(9)?;
    let prev_hash: Option<Vec<u8>> = r.get(10)?;
    let hash: Option<Vec<u8>> = r.get(11)?;
    Ok((|| {
        Ok(ChainedAuditRecord {
            record: AuditRecord {
                seq,
                id: parsed("audit_log.id", AuditId::parse(&id))?,
                vault_id: vault_id
                    .map(|v| parsed("audit_log.vault_id", VaultId::parse(&v)))
                    .transpose()?,
                at: time(at)?,
                key_id,
                account_id,
                action,
                target,
                outcome,
                ip,
            },
            prev_hash: prev_hash.unwrap_or_default(),
            hash: hash.unwrap_or_default(),
        })
    })())
}

pub(crate) fn list_audit(
    conn: &mut Connection,
    vault: &str,
    limit: u32,
    before: Option<&str>,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log
             WHERE vault_id = ?1
               AND (?2 IS NULL OR seq < coalesce((SELECT seq FROM audit_log WHERE id = ?2 AND vault_id = ?1), 0))
             ORDER BY seq DESC LIMIT ?3"
        ))
        .map_err(db)?;
    let rows = st
        .query_map(params![vault, before, limit], record)
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    rows.into_iter().map(|r| r.map(|c| c.record)).collect()
}

pub(crate) fn audit_heads(conn: &mut Connection) -> Result<Vec<AuditHead>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT chain, length, last_seq, hash FROM audit_heads ORDER BY chain")
        .map_err(db)?;
    st.query_map([], |r| {
        Ok(AuditHead {
            chain: r.get(0)?,
            length: r.get(1)?,
            last_seq: r.get(2)?,
            hash: r.get(3)?,
        })
    })
    .map_err(db)?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(db)
}

pub(crate) fn audit_chain(
    conn: &mut Connection,
    chain: &str,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<ChainedAuditRecord>, StoreError> {
    // The server chain is the records without a vault; each form walks the index.
    let filter = if chain == SERVER_CHAIN {
        "vault_id IS NULL AND ?1 = ''"
    } else {
        "vault_id = ?1"
    };
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log
             WHERE {filter} AND seq > ?2
             ORDER BY seq LIMIT ?3"
        ))
        .map_err(db)?;
    let rows = st
        .query_map(params![chain, after_seq, limit], record)
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    rows.into_iter().collect()
}

pub(crate) fn audit_chains(conn: &mut Connection) -> Result<Vec<String>, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT DISTINCT coalesce(vault_id, '') FROM audit_log ORDER BY 1")
        .map_err(db)?;
    st.query_map([], |r| r.get(0))
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(db)
}
