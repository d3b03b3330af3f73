-- Connection health and the due queue (SQLite's 0004).

ALTER TABLE connections DROP CONSTRAINT connections_status_check;
ALTER TABLE connections ADD CONSTRAINT connections_status_check
    CHECK (status IN ('active', 'failing', 'needs_reauth', 'expired', 'revoked'));
ALTER TABLE connections ADD COLUMN status_reason TEXT COLLATE "C";
ALTER TABLE connections ADD COLUMN next_refresh_at BIGINT;
ALTER TABLE connections ADD COLUMN due_at BIGINT;
ALTER TABLE connections ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN expiring_notified_at BIGINT;
UPDATE connections SET status_reason = 'the provider refused the refresh token' WHERE status = 'needs_reauth';
-- Existing connections are looked at once by the worker, which plans them.
UPDATE connections SET next_refresh_at = expires_at, due_at = updated_at WHERE status = 'active';
CREATE INDEX connections_due ON connections (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX connections_vault_refresh ON connections (vault_id, next_refresh_at);
