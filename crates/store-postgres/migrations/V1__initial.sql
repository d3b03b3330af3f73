-- The whole schema as of SQLite's 0001 + 0002 + 0003, in one step (PostgreSQL has no
-- legacy rows to chain). Times are Unix milliseconds (UTC) as BIGINT, as on SQLite, so
-- `copy` between backends is byte-exact and audit hashes are the same. Every secret
-- column holds a ciphertext or a hash. Text compares and sorts by its bytes
-- (COLLATE "C") as on SQLite, whatever the database's locale.

CREATE TABLE server_settings (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE accounts (
    id         TEXT COLLATE "C" PRIMARY KEY,
    email      TEXT COLLATE "C" NOT NULL UNIQUE,
    kdf_params TEXT COLLATE "C" NOT NULL,
    kdf_salt   BYTEA NOT NULL,
    verifier   BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE vaults (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    name                TEXT COLLATE "C" NOT NULL,
    managed             BOOLEAN NOT NULL,
    dek_key_id          BIGINT NOT NULL CHECK (dek_key_id BETWEEN 0 AND 4294967295),
    sealing_public_key  BYTEA NOT NULL,
    sealing_private_key BYTEA NOT NULL,
    master_slot         BYTEA,
    created_at          BIGINT NOT NULL
);

CREATE TABLE vault_members (
    vault_id   TEXT COLLATE "C" NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    slot       BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, account_id)
);
CREATE INDEX vault_members_account ON vault_members (account_id);

CREATE TABLE api_keys (
    id           TEXT COLLATE "C" PRIMARY KEY,
    vault_id     TEXT COLLATE "C" NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    name         TEXT COLLATE "C" NOT NULL,
    roles        TEXT COLLATE "C" NOT NULL,
    scope        TEXT COLLATE "C" NOT NULL,
    lookup_hash  BYTEA,
    slot         BYTEA,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT,
    created_by   TEXT COLLATE "C" NOT NULL,
    -- A revoked key keeps its row for the listing but loses what could open the vault.
    CHECK ((revoked_at IS NULL) = (slot IS NOT NULL AND lookup_hash IS NOT NULL))
);
CREATE INDEX api_keys_vault ON api_keys (vault_id, created_at);

-- `id` is what begin_login_attempt hands back to clear a successful attempt (SQLite
-- uses its rowid).
CREATE TABLE login_failures (
    id      BIGSERIAL PRIMARY KEY,
    subject BYTEA NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX login_failures_subject ON login_failures (subject, at);
CREATE INDEX login_failures_at ON login_failures (at);

-- `seq` is drawn while the chain's head row is locked, so it grows along each chain.
-- Each record's hash covers the previous record's hash in its chain (one chain per
-- vault, '' for records without one).
CREATE TABLE audit_log (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT COLLATE "C" NOT NULL UNIQUE,
    vault_id   TEXT COLLATE "C",
    at         BIGINT NOT NULL,
    key_id     TEXT COLLATE "C",
    account_id TEXT COLLATE "C",
    action     TEXT COLLATE "C" NOT NULL,
    target     TEXT COLLATE "C",
    outcome    TEXT COLLATE "C" NOT NULL,
    ip         TEXT COLLATE "C",
    prev_hash  BYTEA,
    hash       BYTEA
);
CREATE INDEX audit_log_vault ON audit_log (vault_id, seq);
-- The server chain (records without a vault) walked in order.
CREATE INDEX audit_log_server ON audit_log (seq) WHERE vault_id IS NULL;

CREATE TABLE audit_heads (
    chain    TEXT COLLATE "C" PRIMARY KEY,
    length   BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    hash     BYTEA NOT NULL
);

CREATE TABLE providers (
    vault_id   TEXT COLLATE "C" NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    key        TEXT COLLATE "C" NOT NULL,
    spec       TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, key)
);

CREATE TABLE apps (
    id            TEXT COLLATE "C" PRIMARY KEY,
    vault_id      TEXT COLLATE "C" NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    key           TEXT COLLATE "C" NOT NULL,
    provider_key  TEXT COLLATE "C" NOT NULL,
    client_id     TEXT COLLATE "C" NOT NULL,
    client_secret BYTEA NOT NULL,  -- under the vault DEK, bound to the app id
    scopes        TEXT COLLATE "C" NOT NULL,   -- JSON array
    status        TEXT COLLATE "C" NOT NULL CHECK (status IN ('active', 'blocked')),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (vault_id, key)
);

CREATE TABLE connect_sessions (
    id              TEXT COLLATE "C" PRIMARY KEY,
    vault_id        TEXT COLLATE "C" NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    app_id          TEXT COLLATE "C" NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    connection_id   TEXT COLLATE "C" NOT NULL,
    state_hash      BYTEA NOT NULL UNIQUE,
    secrets         BYTEA NOT NULL, -- client secret, PKCE verifier, nonce: under a key derived from the state
    scopes          TEXT COLLATE "C" NOT NULL,
    return_to       TEXT COLLATE "C",
    status          TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'exchanging', 'completed', 'failed')),
    error           TEXT COLLATE "C",
    created_by      TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    -- The one-time link: its token's hash, the authorization URL under a key derived
    -- from that token, its expiry, when it was spent, and the hash of the
    -- browser-binding cookie set when it was spent.
    link_hash       BYTEA UNIQUE,
    link_secret     BYTEA,
    link_expires_at BIGINT,
    link_spent_at   BIGINT,
    binding_hash    BYTEA
);
CREATE INDEX connect_sessions_vault ON connect_sessions (vault_id, created_at);
CREATE INDEX connect_sessions_app ON connect_sessions (app_id);

CREATE TABLE connections (
    vault_id     TEXT COLLATE "C" NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    id           TEXT COLLATE "C" NOT NULL,
    app_id       TEXT COLLATE "C" NOT NULL REFERENCES apps (id) ON DELETE RESTRICT,
    status       TEXT COLLATE "C" NOT NULL CHECK (status IN ('active', 'needs_reauth')),
    scopes       TEXT COLLATE "C" NOT NULL,
    token_set    BYTEA NOT NULL,   -- under the DEK (format 1) or sealed to the vault key (format 2)
    token_format BIGINT NOT NULL CHECK (token_format IN (1, 2)),
    expires_at   BIGINT,           -- of the access token
    has_refresh  BOOLEAN NOT NULL,
    version      BIGINT NOT NULL,  -- bumped on every token change: the refresh fence
    lease_owner  TEXT COLLATE "C",             -- who is refreshing, until lease_until
    lease_until  BIGINT,
    created_at   BIGINT NOT NULL,
    refreshed_at BIGINT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (vault_id, id)
);
CREATE INDEX connections_app ON connections (app_id);
