-- Connection health and the due queue. SQLite cannot change a CHECK constraint in
-- place, so the table is rebuilt with the new statuses and columns (nothing references
-- `connections`, so dropping the old table cascades nowhere).

CREATE TABLE connections_new (
    vault_id      TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    app_id        TEXT NOT NULL REFERENCES apps (id) ON DELETE RESTRICT,
    status        TEXT NOT NULL CHECK (status IN ('active', 'failing', 'needs_reauth', 'expired', 'revoked')),
    status_reason TEXT,             -- why, in words; never a secret
    scopes        TEXT NOT NULL,
    token_set     BLOB NOT NULL,    -- under the DEK (format 1) or sealed to the vault key (format 2)
    token_format  INTEGER NOT NULL CHECK (token_format IN (1, 2)),
    expires_at    INTEGER,          -- of the access token
    has_refresh   INTEGER NOT NULL CHECK (has_refresh IN (0, 1)),
    version       INTEGER NOT NULL, -- bumped on every token change: the refresh fence
    lease_owner   TEXT,             -- who is refreshing, until lease_until
    lease_until   INTEGER,
    created_at    INTEGER NOT NULL,
    refreshed_at  INTEGER,
    updated_at    INTEGER NOT NULL,
    next_refresh_at INTEGER,        -- when a refresh is due (ahead of expiry or of the refresh token's idle death)
    due_at        INTEGER,          -- when the server's lifecycle worker must look at it next (NULL: never)
    failures      INTEGER NOT NULL DEFAULT 0, -- transient refresh failures in a row (the backoff)
    expiring_notified_at INTEGER,   -- when connection.expiring was sent for the current tokens
    PRIMARY KEY (vault_id, id)
) STRICT;

INSERT INTO connections_new (vault_id, id, app_id, status, status_reason, scopes, token_set,
        token_format, expires_at, has_refresh, version, lease_owner, lease_until, created_at,
        refreshed_at, updated_at, next_refresh_at, due_at, failures, expiring_notified_at)
    SELECT vault_id, id, app_id, status,
           CASE status WHEN 'needs_reauth' THEN 'the provider refused the refresh token' END,
           scopes, token_set, token_format, expires_at, has_refresh, version, lease_owner,
           lease_until, created_at, refreshed_at, updated_at,
           -- Existing connections are looked at once by the worker, which plans them.
           CASE WHEN status = 'active' THEN expires_at END,
           CASE WHEN status = 'active' THEN updated_at END,
           0, NULL
    FROM connections;

DROP TABLE connections;
ALTER TABLE connections_new RENAME TO connections;
CREATE INDEX connections_app ON connections (app_id);
-- The worker's queue: a range scan from the oldest due row, never the whole table.
CREATE INDEX connections_due ON connections (due_at) WHERE due_at IS NOT NULL;
-- `?expiring_within=` of one vault (a zero-knowledge vault's refresher).
CREATE INDEX connections_vault_refresh ON connections (vault_id, next_refresh_at);
