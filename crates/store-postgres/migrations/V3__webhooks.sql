-- Webhook endpoints, events and their durable outbox (SQLite's 0005).

CREATE TABLE webhook_endpoints (
    id              TEXT COLLATE "C" PRIMARY KEY,
    vault_id        TEXT COLLATE "C" NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    url             TEXT COLLATE "C" NOT NULL,
    description     TEXT COLLATE "C",
    all_events      BOOLEAN NOT NULL,
    enabled         BOOLEAN NOT NULL,
    disabled_reason TEXT COLLATE "C",
    secret          BYTEA NOT NULL,
    previous_secret BYTEA,
    previous_until  BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_vault ON webhook_endpoints (vault_id, created_at);

CREATE TABLE webhook_endpoint_events (
    endpoint_id TEXT COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    type        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (endpoint_id, type)
);

CREATE TABLE webhook_events (
    id         TEXT COLLATE "C" PRIMARY KEY,
    vault_id   TEXT COLLATE "C" NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    type       TEXT COLLATE "C" NOT NULL,
    payload    TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    event_id        TEXT COLLATE "C" NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id     TEXT COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state           TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT,
    claim_owner     TEXT COLLATE "C",
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id);

CREATE TABLE webhook_attempts (
    id              TEXT COLLATE "C" PRIMARY KEY,
    endpoint_id     TEXT COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        TEXT COLLATE "C" NOT NULL,
    type            TEXT COLLATE "C" NOT NULL,
    attempt         BIGINT NOT NULL,
    status_code     BIGINT,
    error           TEXT COLLATE "C",
    at              BIGINT NOT NULL,
    next_attempt_at BIGINT
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, at);
