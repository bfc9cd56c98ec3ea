-- A charge is a reservation until its request is answered (captured: the row is deleted) or
-- refunded (the row is deleted with the refund). A row left by a replica that died is refunded by
-- any live replica's sweep once it is older than the sweep bound.
CREATE TABLE reservations (
    org_id        TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    request_id    TEXT NOT NULL,
    endpoint      TEXT NOT NULL,
    amount        INTEGER NOT NULL CHECK (amount > 0),
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (org_id, request_id)
);
CREATE INDEX reservations_age ON reservations (created_at_ms);
