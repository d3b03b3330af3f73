//! The audit log and its hash chain on PostgreSQL.

use deadpool_postgres::{GenericClient, Transaction};
use tokenwarden_domain::{AuditId, VaultId};
use tokenwarden_store::audit::{AuditFields, GENESIS, SERVER_CHAIN, audit_hash};
use tokenwarden_store::{AuditHead, AuditRecord, ChainedAuditRecord, NewAuditRecord, StoreError};
use tokio_postgres::Row;

use crate::convert::{db, get, parsed, time};

const AUDIT_COLUMNS: &str =
    "seq, id, vault_id, at, key_id, account_id, action, target, outcome, ip, prev_hash, hash";

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

/// Appends a batch (already in [`tokenwarden_store::audit::lock_order`]) inside the
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
        let head = tx.query_one(&lock, &[&chain]).await.map_err(db)?;
        let length: i64 = get(&head, 0)?;
        // The head's hash, then each record's: record i links [i] to [i + 1].
        let mut chained: Vec<Vec<u8>> = Vec::with_capacity(group.len() + 1);
        chained.push(get(&head, 1)?);
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
            last_seq = last_seq.max(get(row, 0)?);
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

fn record(r: &Row) -> Result<ChainedAuditRecord, StoreError> {
    let vault_id: Option<&str> = get(r, 2)?;
    let prev_hash: Option<Vec<u8>> = get(r, 10)?;
    let hash: Option<Vec<u8>> = get(r, 11)?;
    Ok(ChainedAuditRecord {
        record: AuditRecord {
            seq: get(r, 0)?,
            id: parsed("audit_log.id", AuditId::parse(get(r, 1)?))?,
            vault_id: vault_id
                .map(|v| parsed("audit_log.vault_id", VaultId::parse(v)))
                .transpose()?,
            at: time(get(r, 3)?)?,
            key_id: get(r, 4)?,
            account_id: get(r, 5)?,
            action: get(r, 6)?,
            target: get(r, 7)?,
            outcome: get(r, 8)?,
            ip: get(r, 9)?,
        },
        prev_hash: prev_hash.unwrap_or_default(),
        hash: hash.unwrap_or_default(),
    })
}

pub(crate) async fn list_audit(
    c: &impl GenericClient,
    vault: &str,
    limit: u32,
    before: Option<&str>,
) -> Result<Vec<AuditRecord>, StoreError> {
    let st = c
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log
             WHERE vault_id = $1
               AND ($2::text IS NULL OR seq < coalesce((SELECT seq FROM audit_log WHERE id = $2 AND vault_id = $1), 0))
             ORDER BY seq DESC LIMIT $3"
        ))
        .await
        .map_err(db)?;
    let rows = c
        .query(&st, &[&vault, &before, &i64::from(limit)])
        .await
        .map_err(db)?;
    rows.iter().map(|r| record(r).map(|c| c.record)).collect()
}

pub(crate) async fn audit_heads(c: &impl GenericClient) -> Result<Vec<AuditHead>, StoreError> {
    let st = c
        .prepare_cached("SELECT chain, length, last_seq, hash FROM audit_heads ORDER BY chain")
        .await
        .map_err(db)?;
    let rows = c.query(&st, &[]).await.map_err(db)?;
    rows.iter()
        .map(|r| {
            Ok(AuditHead {
                chain: get(r, 0)?,
                length: get(r, 1)?,
                last_seq: get(r, 2)?,
                hash: get(r, 3)?,
            })
        })
        .collect()
}

pub(crate) async fn audit_chain(
    c: &impl GenericClient,
    chain: &str,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<ChainedAuditRecord>, StoreError> {
    // The server chain is the records without a vault; each form walks an index.
    let sql = if chain == SERVER_CHAIN {
        format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log
             WHERE vault_id IS NULL AND $1::text = '' AND seq > $2 ORDER BY seq LIMIT $3"
        )
    } else {
        format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log
             WHERE vault_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        )
    };
    let st = c.prepare_cached(&sql).await.map_err(db)?;
    let rows = c
        .query(&st, &[&chain, &after_seq, &i64::from(limit)])
        .await
        .map_err(db)?;
    rows.iter().map(record).collect()
}

pub(crate) async fn audit_chains(c: &impl GenericClient) -> Result<Vec<String>, StoreError> {
    let st = c
        .prepare_cached("SELECT DISTINCT coalesce(vault_id, '') FROM audit_log ORDER BY 1")
        .await
        .map_err(db)?;
    let rows = c.query(&st, &[]).await.map_err(db)?;
    rows.iter().map(|r| get(r, 0)).collect()
}
