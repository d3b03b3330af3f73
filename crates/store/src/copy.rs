//! Copying a whole database between backends (`tokenwarden copy`), row by row and byte
//! for byte: ciphertexts, hashes and the audit chain move as they are, nothing is
//! decrypted. Every backend names its tables and columns as below and stores times as
//! Unix milliseconds, so a row read from one backend can be written to another.

use async_trait::async_trait;

use crate::error::StoreResult;

/// What `tokenwarden copy` needs of a backend, beside the audit chain it verifies.
#[async_trait]
pub trait CopyStore: Send + Sync {
    /// Whether the database holds no account, vault or audit record yet.
    async fn is_empty(&self) -> StoreResult<bool>;
    /// Up to `limit` rows of `table` in key order, after the row whose key is `after`.
    async fn copy_page(
        &self,
        table: &'static CopyTable,
        after: Option<RawRow>,
        limit: u32,
    ) -> StoreResult<Vec<RawRow>>;
    /// Inserts rows as they are (in one transaction).
    async fn copy_insert(&self, table: &'static CopyTable, rows: Vec<RawRow>) -> StoreResult<()>;
    /// After the last insert: whatever the backend needs to go on from the copied rows
    /// (PostgreSQL moves its sequences past them).
    async fn copy_finish(&self) -> StoreResult<()>;
}

/// One column value as the copy moves it.
#[derive(Clone, PartialEq, Eq)]
pub enum RawValue {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl std::fmt::Debug for RawValue {
    // Rows hold ciphertexts and hashes; a debug print says only what kind each is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawValue::Null => f.write_str("Null"),
            RawValue::Int(_) => f.write_str("Int(..)"),
            RawValue::Text(t) => write!(f, "Text({} chars)", t.len()),
            RawValue::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

pub type RawRow = Vec<RawValue>;

/// A table the copy moves: its columns, the first `key` of which are its primary key
/// (pages are read in key order, after the last key of the previous page).
#[derive(Debug)]
pub struct CopyTable {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub key: usize,
}

/// Every table worth copying, parents before children. Login attempts are left out:
/// they only matter for fifteen minutes.
pub const COPY_TABLES: &[CopyTable] = &[
    CopyTable {
        name: "server_settings",
        columns: &["name", "value"],
        key: 1,
    },
    CopyTable {
        name: "accounts",
        columns: &[
            "id",
            "email",
            "kdf_params",
            "kdf_salt",
            "verifier",
            "created_at",
        ],
        key: 1,
    },
    CopyTable {
        name: "vaults",
        columns: &[
            "id",
            "name",
            "managed",
            "dek_key_id",
            "sealing_public_key",
            "sealing_private_key",
            "master_slot",
            "created_at",
        ],
        key: 1,
    },
    CopyTable {
        name: "vault_members",
        columns: &["vault_id", "account_id", "slot", "created_at"],
        key: 2,
    },
    CopyTable {
        name: "api_keys",
        columns: &[
            "id",
            "vault_id",
            "name",
            "roles",
            "scope",
            "lookup_hash",
            "slot",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "created_by",
        ],
        key: 1,
    },
    CopyTable {
        name: "providers",
        columns: &["vault_id", "key", "spec", "created_at"],
        key: 2,
    },
    CopyTable {
        name: "apps",
        columns: &[
            "id",
            "vault_id",
            "key",
            "provider_key",
            "client_id",
            "client_secret",
            "scopes",
            "status",
            "created_at",
            "updated_at",
        ],
        key: 1,
    },
    CopyTable {
        name: "connect_sessions",
        columns: &[
            "id",
            "vault_id",
            "app_id",
            "connection_id",
            "state_hash",
            "secrets",
            "scopes",
            "return_to",
            "status",
            "error",
            "created_by",
            "created_at",
            "expires_at",
            "finished_at",
            "link_hash",
            "link_secret",
            "link_expires_at",
            "link_spent_at",
            "binding_hash",
        ],
        key: 1,
    },
    CopyTable {
        name: "connections",
        columns: &[
            "vault_id",
            "id",
            "app_id",
            "status",
            "scopes",
            "token_set",
            "token_format",
            "expires_at",
            "has_refresh",
            "version",
            "lease_owner",
            "lease_until",
            "created_at",
            "refreshed_at",
            "updated_at",
            "status_reason",
            "next_refresh_at",
            "due_at",
            "failures",
            "expiring_notified_at",
        ],
        key: 2,
    },
    CopyTable {
        name: "webhook_endpoints",
        columns: &[
            "id",
            "vault_id",
            "url",
            "description",
            "all_events",
            "enabled",
            "disabled_reason",
            "secret",
            "previous_secret",
            "previous_until",
            "created_at",
            "updated_at",
        ],
        key: 1,
    },
    CopyTable {
        name: "webhook_endpoint_events",
        columns: &["endpoint_id", "type"],
        key: 2,
    },
    CopyTable {
        name: "webhook_events",
        columns: &["id", "vault_id", "type", "payload", "created_at"],
        key: 1,
    },
    CopyTable {
        name: "webhook_deliveries",
        columns: &[
            "event_id",
            "endpoint_id",
            "state",
            "attempts",
            "next_attempt_at",
            "claim_owner",
            "created_at",
            "updated_at",
        ],
        key: 2,
    },
    CopyTable {
        name: "webhook_attempts",
        columns: &[
            "id",
            "endpoint_id",
            "event_id",
            "type",
            "attempt",
            "status_code",
            "error",
            "at",
            "next_attempt_at",
        ],
        key: 1,
    },
    CopyTable {
        name: "audit_log",
        columns: &[
            "seq",
            "id",
            "vault_id",
            "at",
            "key_id",
            "account_id",
            "action",
            "target",
            "outcome",
            "ip",
            "prev_hash",
            "hash",
        ],
        key: 1,
    },
    CopyTable {
        name: "audit_heads",
        columns: &["chain", "length", "last_seq", "hash"],
        key: 1,
    },
];

/// A `SELECT` of one page in key order, with `?`-style placeholders (`$n` when
/// `numbered`): the key values after which to start, then the limit.
pub fn page_sql(table: &CopyTable, first_page: bool, numbered: bool, quote: char) -> String {
    let q = |c: &str| format!("{quote}{c}{quote}");
    let cols: Vec<String> = table.columns.iter().map(|c| q(c)).collect();
    let keys: Vec<String> = table.columns[..table.key].iter().map(|c| q(c)).collect();
    let mut n = 0;
    let mut ph = || {
        n += 1;
        if numbered {
            format!("${n}")
        } else {
            "?".to_owned()
        }
    };
    let filter = if first_page {
        String::new()
    } else {
        let values: Vec<String> = (0..table.key).map(|_| ph()).collect();
        format!("WHERE ({}) > ({}) ", keys.join(", "), values.join(", "))
    };
    format!(
        "SELECT {} FROM {} {filter}ORDER BY {} LIMIT {}",
        cols.join(", "),
        table.name,
        keys.join(", "),
        ph()
    )
}

/// An `INSERT` of one row, placeholders as in [`page_sql`].
pub fn insert_sql(table: &CopyTable, numbered: bool, quote: char) -> String {
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("{quote}{c}{quote}"))
        .collect();
    let ph: Vec<String> = (1..=table.columns.len())
        .map(|n| {
            if numbered {
                format!("${n}")
            } else {
                "?".to_owned()
            }
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.name,
        cols.join(", "),
        ph.join(", ")
    )
}
