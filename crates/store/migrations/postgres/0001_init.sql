-- Times are milliseconds since the Unix epoch (same representation on both backends).
CREATE TABLE orgs (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    balance         BIGINT NOT NULL CHECK (balance >= 0),
    rate_per_second DOUBLE PRECISION,
    rate_burst      BIGINT,
    created_at_ms   BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    prefix          TEXT NOT NULL UNIQUE,
    secret_hash     BYTEA NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    last_used_at_ms BIGINT,
    revoked_at_ms   BIGINT
);
CREATE INDEX api_keys_org ON api_keys (org_id);

CREATE TABLE ledger (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('debit', 'credit', 'refund')),
    amount        BIGINT NOT NULL CHECK (amount > 0),
    balance_after BIGINT NOT NULL,
    request_id    TEXT,
    endpoint      TEXT,
    note          TEXT,
    at_ms         BIGINT NOT NULL
);
CREATE INDEX ledger_org ON ledger (org_id, id);
CREATE INDEX ledger_request ON ledger (org_id, request_id);

CREATE TABLE idempotency (
    org_id        TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    idem_key      TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('in_progress', 'done')),
    status        BIGINT,
    content_type  TEXT,
    body          BYTEA,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (org_id, idem_key)
);
CREATE INDEX idempotency_expiry ON idempotency (expires_at_ms);

-- Token buckets shared by every replica; one row per org, updated by a single atomic upsert.
CREATE TABLE rate_buckets (
    org_id        TEXT PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    tokens        DOUBLE PRECISION NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    per_second    DOUBLE PRECISION NOT NULL,
    burst         BIGINT NOT NULL,
    allowed       BOOLEAN NOT NULL
);
