-- The whole schema, equivalent to SQLite's 0001 + 0002 + 0003.
-- Times are Unix milliseconds (UTC) in BIGINT, as on SQLite, so a copy between backends
-- is byte-exact and audit hashes match. Every identifier column is utf8mb4_bin, so keys
-- compare case-sensitively as on SQLite and PostgreSQL ('Foo' and 'foo' differ). Key
-- columns have explicit lengths (no BLOB or TEXT in a key). DDL is not transactional on
-- MySQL: every statement is IF NOT EXISTS so a migration cut off half-way re-runs
-- cleanly (the runner holds GET_LOCK, so only one replica runs it at a time).

CREATE TABLE IF NOT EXISTS server_settings (
    name  VARCHAR(128) NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS accounts (
    id         VARCHAR(64) NOT NULL PRIMARY KEY,
    email      VARCHAR(254) NOT NULL,
    kdf_params TEXT NOT NULL,
    kdf_salt   VARBINARY(255) NOT NULL,
    verifier   BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY accounts_email (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS vaults (
    id                  VARCHAR(64) NOT NULL PRIMARY KEY,
    name                TEXT NOT NULL,
    managed             TINYINT NOT NULL CHECK (managed IN (0, 1)),
    dek_key_id          INT UNSIGNED NOT NULL,
    sealing_public_key  BLOB NOT NULL,
    sealing_private_key BLOB NOT NULL,
    master_slot         BLOB,
    created_at          BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS vault_members (
    vault_id   VARCHAR(64) NOT NULL,
    account_id VARCHAR(64) NOT NULL,
    slot       BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, account_id),
    KEY vault_members_account (account_id),
    CONSTRAINT vault_members_vault FOREIGN KEY (vault_id) REFERENCES vaults (id) ON DELETE CASCADE,
    CONSTRAINT vault_members_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS api_keys (
    id           VARCHAR(64) NOT NULL PRIMARY KEY,
    vault_id     VARCHAR(64) NOT NULL,
    name         TEXT NOT NULL,
    roles        TEXT NOT NULL,
    scope        TEXT NOT NULL,
    lookup_hash  VARBINARY(255),
    slot         BLOB,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT,
    created_by   VARCHAR(255) NOT NULL,
    KEY api_keys_vault (vault_id, created_at),
    CONSTRAINT api_keys_vault_fk FOREIGN KEY (vault_id) REFERENCES vaults (id) ON DELETE CASCADE,
    -- A revoked key keeps its row for the listing but loses what could open the vault.
    CONSTRAINT api_keys_revoked CHECK ((revoked_at IS NULL) = (slot IS NOT NULL AND lookup_hash IS NOT NULL))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- SQLite identifies an attempt by its rowid; here the id column plays that part.
CREATE TABLE IF NOT EXISTS login_failures (
    id      BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    subject VARBINARY(255) NOT NULL,
    at      BIGINT NOT NULL,
    KEY login_failures_subject (subject, at),
    KEY login_failures_at (at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Each record's hash covers the previous record's hash in its chain (one chain per
-- vault, '' for records without one); seq is assigned under the chain head's row lock,
-- so it grows along each chain.
CREATE TABLE IF NOT EXISTS audit_log (
    seq        BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    id         VARCHAR(64) NOT NULL,
    vault_id   VARCHAR(64),
    at         BIGINT NOT NULL,
    key_id     VARCHAR(255),
    account_id VARCHAR(255),
    action     VARCHAR(255) NOT NULL,
    target     TEXT,
    outcome    VARCHAR(255) NOT NULL,
    ip         VARCHAR(255),
    prev_hash  VARBINARY(32) NOT NULL,
    hash       VARBINARY(32) NOT NULL,
    UNIQUE KEY audit_log_id (id),
    KEY audit_log_vault (vault_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS audit_heads (
    chain    VARCHAR(64) NOT NULL PRIMARY KEY,
    length   BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    hash     VARBINARY(32) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS providers (
    vault_id   VARCHAR(64) NOT NULL,
    `key`      VARCHAR(128) NOT NULL,
    spec       MEDIUMTEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (vault_id, `key`),
    CONSTRAINT providers_vault FOREIGN KEY (vault_id) REFERENCES vaults (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS apps (
    id            VARCHAR(64) NOT NULL PRIMARY KEY,
    vault_id      VARCHAR(64) NOT NULL,
    `key`         VARCHAR(64) NOT NULL,
    provider_key  VARCHAR(128) NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret BLOB NOT NULL,   -- under the vault DEK, bound to the app id
    scopes        TEXT NOT NULL,   -- JSON array
    status        VARCHAR(16) NOT NULL CHECK (status IN ('active', 'blocked')),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE KEY apps_vault_key (vault_id, `key`),
    CONSTRAINT apps_vault FOREIGN KEY (vault_id) REFERENCES vaults (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS connect_sessions (
    id              VARCHAR(64) NOT NULL PRIMARY KEY,
    vault_id        VARCHAR(64) NOT NULL,
    app_id          VARCHAR(64) NOT NULL,
    connection_id   VARCHAR(128) NOT NULL,
    state_hash      VARBINARY(64) NOT NULL,
    secrets         BLOB NOT NULL,   -- client secret, PKCE verifier, nonce: under a key derived from the state
    scopes          TEXT NOT NULL,
    return_to       TEXT,
    status          VARCHAR(16) NOT NULL CHECK (status IN ('pending', 'exchanging', 'completed', 'failed')),
    error           TEXT,
    created_by      VARCHAR(255) NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    -- A session's one-time link: the hash of the link token, the authorization URL under
    -- a key derived from that token, the link's expiry, when it was spent, and the hash
    -- of the browser-binding cookie set when it was spent.
    link_hash       VARBINARY(64),
    link_secret     BLOB,
    link_expires_at BIGINT,
    link_spent_at   BIGINT,
    binding_hash    VARBINARY(64),
    UNIQUE KEY connect_sessions_state (state_hash),
    UNIQUE KEY connect_sessions_link (link_hash),
    KEY connect_sessions_vault (vault_id, created_at),
    CONSTRAINT connect_sessions_vault_fk FOREIGN KEY (vault_id) REFERENCES vaults (id) ON DELETE CASCADE,
    CONSTRAINT connect_sessions_app FOREIGN KEY (app_id) REFERENCES apps (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS connections (
    vault_id     VARCHAR(64) NOT NULL,
    id           VARCHAR(128) NOT NULL,
    app_id       VARCHAR(64) NOT NULL,
    status       VARCHAR(16) NOT NULL CHECK (status IN ('active', 'needs_reauth')),
    scopes       TEXT NOT NULL,
    token_set    MEDIUMBLOB NOT NULL,  -- under the DEK (format 1) or sealed to the vault key (format 2)
    token_format TINYINT NOT NULL CHECK (token_format IN (1, 2)),
    expires_at   BIGINT,               -- of the access token
    has_refresh  TINYINT NOT NULL CHECK (has_refresh IN (0, 1)),
    version      BIGINT NOT NULL,      -- bumped on every token change: the refresh fence
    lease_owner  VARCHAR(255),         -- who is refreshing, until lease_until
    lease_until  BIGINT,
    created_at   BIGINT NOT NULL,
    refreshed_at BIGINT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (vault_id, id),
    KEY connections_app (app_id),
    CONSTRAINT connections_vault FOREIGN KEY (vault_id) REFERENCES vaults (id) ON DELETE CASCADE,
    CONSTRAINT connections_app_fk FOREIGN KEY (app_id) REFERENCES apps (id) ON DELETE RESTRICT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
