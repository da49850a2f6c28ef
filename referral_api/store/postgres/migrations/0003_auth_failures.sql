-- 0003_auth_failures: failed authentications per client address, shared by every app host
-- (PostgreSQL only: a SQLite log serves one host, whose limiter counts in memory).  Not
-- evidence: rows older than the limiter's window are deleted as new ones arrive.
CREATE TABLE auth_failures (
    client TEXT NOT NULL,
    at     DOUBLE PRECISION NOT NULL
);
CREATE INDEX auth_failures_client ON auth_failures (client, at);
CREATE INDEX auth_failures_at ON auth_failures (at);
