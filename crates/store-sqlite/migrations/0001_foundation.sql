-- Accounts, vaults, key slots, API keys, login failures, audit log.
-- Times are Unix milliseconds (UTC). Every secret column holds a ciphertext or a hash.

CREATE TABLE server_settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    kdf_params TEXT NOT NULL,
    kdf_salt   BLOB NOT NULL,
    verifier   BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE vaults (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    managed             INTEGER NOT NULL CHECK (managed IN (0, 1)),
    dek_key_id          INTEGER NOT NULL,
    sealing_public_key  BLOB NOT NULL,
    sealing_private_key BLOB NOT NULL,
    master_slot         BLOB,
    created_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE vault_members (
    vault_id   TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    slot       BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (vault_id, account_id)
) STRICT;
CREATE INDEX vault_members_account ON vault_members (account_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    vault_id     TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    roles        TEXT NOT NULL,
    scope        TEXT NOT NULL,
    lookup_hash  BLOB,
    slot         BLOB,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER,
    created_by   TEXT NOT NULL,
    -- A revoked key keeps its row for the listing but loses what could open the vault.
    CHECK ((revoked_at IS NULL) = (slot IS NOT NULL AND lookup_hash IS NOT NULL))
) STRICT;
CREATE INDEX api_keys_vault ON api_keys (vault_id, created_at);

CREATE TABLE login_failures (
    subject BLOB NOT NULL,
    at      INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_subject ON login_failures (subject, at);

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    vault_id   TEXT,
    at         INTEGER NOT NULL,
    key_id     TEXT,
    account_id TEXT,
    action     TEXT NOT NULL,
    target     TEXT,
    outcome    TEXT NOT NULL,
    ip         TEXT
) STRICT;
CREATE INDEX audit_log_vault ON audit_log (vault_id, seq);
