-- Connection health and the due queue (SQLite's 0004). A column-level CHECK is part of
-- the column definition in MariaDB: redefining the column drops it.

ALTER TABLE connections MODIFY status VARCHAR(16) NOT NULL;
ALTER TABLE connections
    ADD CONSTRAINT connections_status CHECK (status IN ('active', 'failing', 'needs_reauth', 'expired', 'revoked')),
    ADD COLUMN status_reason TEXT,
    ADD COLUMN next_refresh_at BIGINT,
    ADD COLUMN due_at BIGINT,
    ADD COLUMN failures BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN expiring_notified_at BIGINT,
    ADD KEY connections_due (due_at),
    ADD KEY connections_vault_refresh (vault_id, next_refresh_at);
UPDATE connections SET status_reason = 'the provider refused the refresh token' WHERE status = 'needs_reauth';
UPDATE connections SET next_refresh_at = expires_at, due_at = updated_at WHERE status = 'active';
