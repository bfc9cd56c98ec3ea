-- The x-request-id of the request whose answer is stored, sent again with every replay.
ALTER TABLE idempotency ADD COLUMN request_id TEXT;
