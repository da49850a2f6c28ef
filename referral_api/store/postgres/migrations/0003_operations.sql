-- 0003_operations: failed-authentication counters shared by every worker and host (the
-- throttle, referral_api/throttle.py) and the registry of secret key ids; the same tables as
-- the SQLite migration of the same number. Neither is audit data: not chained, not
-- append-only; expired failures are deleted by the writer.
CREATE TABLE auth_failures (
    client TEXT NOT NULL,
    at     DOUBLE PRECISION NOT NULL
);
CREATE INDEX auth_failures_client ON auth_failures (client, at);
CREATE INDEX auth_failures_at ON auth_failures (at);

CREATE TABLE secret_keys (
    key_id     TEXT PRIMARY KEY,
    check_hmac TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT
);
