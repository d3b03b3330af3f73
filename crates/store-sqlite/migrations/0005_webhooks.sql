-- Webhook endpoints, events and their durable outbox (Standard Webhooks deliveries).

CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    vault_id        TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    description     TEXT,
    all_events      INTEGER NOT NULL CHECK (all_events IN (0, 1)),
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    disabled_reason TEXT,           -- why the server disabled it (a 410), in words
    secret          BLOB NOT NULL,  -- the signing secret under the server key (not in the database)
    previous_secret BLOB,           -- the secret before the last rotation, under the server key
    previous_until  INTEGER,        -- until when deliveries are also signed with it
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_vault ON webhook_endpoints (vault_id, created_at);

-- The event types an endpoint subscribed to (none when all_events).
CREATE TABLE webhook_endpoint_events (
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, type)
) STRICT;

-- One row per event: its id is the `webhook-id` of every delivery and retry.
CREATE TABLE webhook_events (
    id         TEXT PRIMARY KEY,
    vault_id   TEXT NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    payload    TEXT NOT NULL,       -- the JSON body exactly as signed; ids and words, never a secret
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX webhook_events_created ON webhook_events (created_at);

-- The outbox: one row per event and endpoint. A claim moves next_attempt_at forward
-- (the claim's lease): a process killed mid-delivery leaves the row due again.
CREATE TABLE webhook_deliveries (
    event_id        TEXT NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER,        -- NULL once delivered or given up
    claim_owner     TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id);

-- The delivery log: one row per attempt.
CREATE TABLE webhook_attempts (
    id              TEXT PRIMARY KEY,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    type            TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    status_code     INTEGER,
    error           TEXT,
    at              INTEGER NOT NULL,
    next_attempt_at INTEGER
) STRICT;
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, at);
