-- Times are milliseconds since the Unix epoch (same representation on both backends).
CREATE TABLE orgs (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    balance         INTEGER NOT NULL CHECK (balance >= 0),
    rate_per_second REAL,
    rate_burst      INTEGER,
    created_at_ms   INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    prefix          TEXT NOT NULL UNIQUE,
    secret_hash     BLOB NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    last_used_at_ms INTEGER,
    revoked_at_ms   INTEGER
);
CREATE INDEX api_keys_org ON api_keys (org_id);

CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('debit', 'credit', 'refund')),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    balance_after INTEGER NOT NULL,
    request_id    TEXT,
    endpoint      TEXT,
    note          TEXT,
    at_ms         INTEGER NOT NULL
);
CREATE INDEX ledger_org ON ledger (org_id, id);
CREATE INDEX ledger_request ON ledger (org_id, request_id);

CREATE TABLE idempotency (
    org_id        TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    idem_key      TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('in_progress', 'done')),
    status        INTEGER,
    content_type  TEXT,
    body          BLOB,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (org_id, idem_key)
);
CREATE INDEX idempotency_expiry ON idempotency (expires_at_ms);
