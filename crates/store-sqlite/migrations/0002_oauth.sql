-- Custom providers, OAuth apps, connect sessions and connections.

CREATE TABLE providers (
    vault_id   TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    spec       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (vault_id, key)
) STRICT;

CREATE TABLE apps (
    id            TEXT PRIMARY KEY,
    vault_id      TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    provider_key  TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret BLOB NOT NULL,   -- under the vault DEK, bound to the app id
    scopes        TEXT NOT NULL,   -- JSON array
    status        TEXT NOT NULL CHECK (status IN ('active', 'blocked')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (vault_id, key)
) STRICT;

CREATE TABLE connect_sessions (
    id            TEXT PRIMARY KEY,
    vault_id      TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    app_id        TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL,
    state_hash    BLOB NOT NULL UNIQUE,
    secrets       BLOB NOT NULL,   -- client secret, PKCE verifier, nonce: under a key derived from the state
    scopes        TEXT NOT NULL,
    return_to     TEXT,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'exchanging', 'completed', 'failed')),
    error         TEXT,
    created_by    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    finished_at   INTEGER
) STRICT;
CREATE INDEX connect_sessions_vault ON connect_sessions (vault_id, created_at);

CREATE TABLE connections (
    vault_id     TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    app_id       TEXT NOT NULL REFERENCES apps (id) ON DELETE RESTRICT,
    status       TEXT NOT NULL CHECK (status IN ('active', 'needs_reauth')),
    scopes       TEXT NOT NULL,
    token_set    BLOB NOT NULL,    -- under the DEK (format 1) or sealed to the vault key (format 2)
    token_format INTEGER NOT NULL CHECK (token_format IN (1, 2)),
    expires_at   INTEGER,          -- of the access token
    has_refresh  INTEGER NOT NULL CHECK (has_refresh IN (0, 1)),
    version      INTEGER NOT NULL, -- bumped on every token change: the refresh fence
    lease_owner  TEXT,             -- who is refreshing, until lease_until
    lease_until  INTEGER,
    created_at   INTEGER NOT NULL,
    refreshed_at INTEGER,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (vault_id, id)
) STRICT;
CREATE INDEX connections_app ON connections (app_id);
