-- Connect links and the audit hash chain.

-- A session's one-time link: the hash of the link token, the authorization URL under a
-- key derived from that token, the link's expiry, when it was spent, and the hash of the
-- browser-binding cookie set when it was spent.
ALTER TABLE connect_sessions ADD COLUMN link_hash BLOB;
ALTER TABLE connect_sessions ADD COLUMN link_secret BLOB;
ALTER TABLE connect_sessions ADD COLUMN link_expires_at INTEGER;
ALTER TABLE connect_sessions ADD COLUMN link_spent_at INTEGER;
ALTER TABLE connect_sessions ADD COLUMN binding_hash BLOB;
CREATE UNIQUE INDEX connect_sessions_link ON connect_sessions (link_hash);

-- Each record's hash covers the previous record's hash in its chain (one chain per
-- vault, '' for records without one). The migration's hook chains the rows written
-- before this version.
ALTER TABLE audit_log ADD COLUMN prev_hash BLOB;
ALTER TABLE audit_log ADD COLUMN hash BLOB;

CREATE TABLE audit_heads (
    chain    TEXT PRIMARY KEY,
    length   INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    hash     BLOB NOT NULL
) STRICT;
