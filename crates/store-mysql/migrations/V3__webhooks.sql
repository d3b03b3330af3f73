-- Webhook endpoints, events and their durable outbox (SQLite's 0005).

CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id              VARCHAR(64) NOT NULL PRIMARY KEY,
    vault_id        VARCHAR(64) NOT NULL,
    url             TEXT NOT NULL,
    description     TEXT,
    all_events      TINYINT NOT NULL CHECK (all_events IN (0, 1)),
    enabled         TINYINT NOT NULL CHECK (enabled IN (0, 1)),
    disabled_reason TEXT,
    secret          BLOB NOT NULL,
    previous_secret BLOB,
    previous_until  BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    KEY webhook_endpoints_vault (vault_id, created_at),
    CONSTRAINT webhook_endpoints_vault_fk FOREIGN KEY (vault_id) REFERENCES vaults (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS webhook_endpoint_events (
    endpoint_id VARCHAR(64) NOT NULL,
    type        VARCHAR(64) NOT NULL,
    PRIMARY KEY (endpoint_id, type),
    CONSTRAINT webhook_endpoint_events_fk FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS webhook_events (
    id         VARCHAR(64) NOT NULL PRIMARY KEY,
    vault_id   VARCHAR(64) NOT NULL,
    type       VARCHAR(64) NOT NULL,
    payload    MEDIUMTEXT NOT NULL,
    created_at BIGINT NOT NULL,
    KEY webhook_events_created (created_at),
    CONSTRAINT webhook_events_vault_fk FOREIGN KEY (vault_id) REFERENCES vaults (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    event_id        VARCHAR(64) NOT NULL,
    endpoint_id     VARCHAR(64) NOT NULL,
    state           VARCHAR(16) NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT,
    claim_owner     VARCHAR(64),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (event_id, endpoint_id),
    KEY webhook_deliveries_due (next_attempt_at),
    KEY webhook_deliveries_endpoint (endpoint_id),
    CONSTRAINT webhook_deliveries_event_fk FOREIGN KEY (event_id) REFERENCES webhook_events (id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_endpoint_fk FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE IF NOT EXISTS webhook_attempts (
    id              VARCHAR(64) NOT NULL PRIMARY KEY,
    endpoint_id     VARCHAR(64) NOT NULL,
    event_id        VARCHAR(64) NOT NULL,
    type            VARCHAR(64) NOT NULL,
    attempt         BIGINT NOT NULL,
    status_code     BIGINT,
    error           TEXT,
    at              BIGINT NOT NULL,
    next_attempt_at BIGINT,
    KEY webhook_attempts_endpoint (endpoint_id, at),
    CONSTRAINT webhook_attempts_endpoint_fk FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
