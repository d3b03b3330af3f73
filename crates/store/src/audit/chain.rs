//! The audit log's hash chain. Every backend computes a record's hash with
//! [`audit_hash`] inside the transaction that appends it, so the chain is the same
//! bytes on SQLite, PostgreSQL and MySQL, and [`verify_chain`] can check any of them.
//!
//! There is one chain per vault and one (named [`SERVER_CHAIN`]) for records without a
//! vault, such as failed logins. Each chain's head (its length and last hash) is kept
//! beside the log, so cutting records off the end shows as well as editing or deleting
//! one in the middle. The chain makes tampering evident to anyone who kept an earlier
//! head; it cannot stop someone who rewrites the whole log and its heads.

use sha2::{Digest, Sha256};

use crate::audit::records::{Actor, AuditHead, AuditRecord, ChainedAuditRecord, NewAuditRecord};

/// The chain of records that belong to no vault.
pub const SERVER_CHAIN: &str = "";

/// The `prev_hash` of a chain's first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// Puts a batch of records in the order a backend appends them: grouped by chain, the
/// chains in one global order (so concurrent batches lock chain heads in the same order
/// and cannot deadlock), each chain's records in their original order (a stable sort).
pub fn lock_order(records: &mut [NewAuditRecord]) {
    records.sort_by(|a, b| chain_of(a).cmp(chain_of(b)));
}

fn chain_of(record: &NewAuditRecord) -> &str {
    record
        .vault_id
        .as_ref()
        .map_or(SERVER_CHAIN, |v| v.as_str())
}

/// The fields a record's hash covers, as the database stores them.
#[derive(Debug, Clone, Copy)]
pub struct AuditFields<'a> {
    pub id: &'a str,
    pub vault_id: Option<&'a str>,
    /// Unix milliseconds, as stored.
    pub at_ms: i64,
    pub key_id: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub outcome: &'a str,
    pub ip: Option<&'a str>,
}

impl<'a> AuditFields<'a> {
    pub fn of(record: &'a AuditRecord) -> Self {
        Self {
            id: record.id.as_str(),
            vault_id: record.vault_id.as_ref().map(|v| v.as_str()),
            at_ms: record.at.timestamp_millis(),
            key_id: record.key_id.as_deref(),
            account_id: record.account_id.as_deref(),
            action: &record.action,
            target: record.target.as_deref(),
            outcome: &record.outcome,
            ip: record.ip.as_deref(),
        }
    }

    /// The fields of a record about to be appended, as every backend stores them.
    pub fn of_new(record: &'a NewAuditRecord) -> Self {
        let (key_id, account_id) = match &record.actor {
            Actor::ApiKey(k) => (Some(k.as_str()), None),
            Actor::Account(a) => (None, Some(a.as_str())),
            Actor::Anonymous => (None, None),
        };
        Self {
            id: record.id.as_str(),
            vault_id: record.vault_id.as_ref().map(|v| v.as_str()),
            at_ms: crate::convert::ms(record.at),
            key_id,
            account_id,
            action: record.action,
            target: record.target.as_deref(),
            outcome: record.outcome,
            ip: record.ip.as_deref(),
        }
    }

    /// The chain this record belongs to.
    pub fn chain(&self) -> &'a str {
        self.vault_id.unwrap_or(SERVER_CHAIN)
    }
}

/// SHA-256 over a domain label, the previous hash and every field, each length-prefixed
/// (and absent fields marked apart from empty ones), so no two records share an encoding.
pub fn audit_hash(prev: &[u8], fields: &AuditFields<'_>) -> [u8; 32] {
    fn put(h: &mut Sha256, value: Option<&[u8]>) {
        match value {
            None => h.update([0u8]),
            Some(v) => {
                h.update([1u8]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v);
            }
        }
    }
    let mut h = Sha256::new();
    h.update(b"tokenwarden audit v1\0");
    put(&mut h, Some(prev));
    put(&mut h, Some(fields.id.as_bytes()));
    put(&mut h, fields.vault_id.map(str::as_bytes));
    h.update(fields.at_ms.to_be_bytes());
    put(&mut h, fields.key_id.map(str::as_bytes));
    put(&mut h, fields.account_id.map(str::as_bytes));
    put(&mut h, Some(fields.action.as_bytes()));
    put(&mut h, fields.target.map(str::as_bytes));
    put(&mut h, Some(fields.outcome.as_bytes()));
    put(&mut h, fields.ip.map(str::as_bytes));
    h.finalize().into()
}

/// The first place where a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub chain: String,
    /// The first record that fails, when there is one (truncation names none).
    pub record_id: Option<String>,
    pub seq: Option<i64>,
    pub reason: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chain = if self.chain.is_empty() {
            "server"
        } else {
            &self.chain
        };
        match (&self.record_id, self.seq) {
            (Some(id), Some(seq)) => {
                write!(f, "chain {chain}: record {id} (seq {seq}): {}", self.reason)
            }
            _ => write!(f, "chain {chain}: {}", self.reason),
        }
    }
}

/// Walks one chain in order. Feed it the records page by page, then call
/// [`ChainVerifier::finish`] with the chain's head.
#[derive(Debug)]
pub struct ChainVerifier {
    chain: String,
    prev: Vec<u8>,
    length: i64,
    last_seq: i64,
}

impl ChainVerifier {
    pub fn new(chain: &str) -> Self {
        Self {
            chain: chain.to_owned(),
            prev: GENESIS.to_vec(),
            length: 0,
            last_seq: 0,
        }
    }

    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    pub fn checked(&self) -> i64 {
        self.length
    }

    fn broken(&self, r: &AuditRecord, reason: impl Into<String>) -> ChainBreak {
        ChainBreak {
            chain: self.chain.clone(),
            record_id: Some(r.id.as_str().to_owned()),
            seq: Some(r.seq),
            reason: reason.into(),
        }
    }

    pub fn check(&mut self, c: &ChainedAuditRecord) -> Result<(), ChainBreak> {
        let fields = AuditFields::of(&c.record);
        if fields.chain() != self.chain {
            return Err(self.broken(&c.record, "belongs to another chain"));
        }
        if c.prev_hash != self.prev {
            return Err(self.broken(
                &c.record,
                "its previous-hash does not match the record before it (a record before it was deleted, inserted or edited)",
            ));
        }
        if audit_hash(&c.prev_hash, &fields).as_slice() != c.hash.as_slice() {
            return Err(self.broken(&c.record, "its contents do not match its hash (edited)"));
        }
        self.prev.clone_from(&c.hash);
        self.length += 1;
        self.last_seq = c.record.seq;
        Ok(())
    }

    pub fn finish(self, head: Option<&AuditHead>) -> Result<i64, ChainBreak> {
        let fail = |reason: String| ChainBreak {
            chain: self.chain.clone(),
            record_id: None,
            seq: None,
            reason,
        };
        match head {
            None if self.length == 0 => Ok(0),
            None => Err(fail("the chain has records but no head".into())),
            Some(h) if h.length != self.length || h.hash != self.prev => Err(fail(format!(
                "the head says {} records ending at seq {}, the log holds {} ending at seq {} (records were removed from or added to the end)",
                h.length, h.last_seq, self.length, self.last_seq
            ))),
            Some(_) => Ok(self.length),
        }
    }
}
