"""Database schema, created and evolved only through recorded migrations.

Each migration is applied once, inside the transaction that records it in
``_sqlite_migrations`` (sqlite-utils ``Migrations``).  :func:`migrate` runs the whole set
under ``BEGIN IMMEDIATE`` so two concurrent ``init-db`` runs cannot both apply a migration.
A published migration is never edited: schema changes are new migrations.
See ``db/README.md`` for the meaning of every table, index and trigger.
"""

from __future__ import annotations

import sqlite_utils

from referral_api.store.sqlite.db import write_transaction

MIGRATION_SET = "referral_api"

migrations = sqlite_utils.Migrations(MIGRATION_SET)

# The append-only tables.  Triggers make the database itself refuse to rewrite history, so a
# bug or a stray `sqlite3` session cannot silently edit a decision (tampering would then need
# dropping the triggers first, which the hash chain still detects).
APPEND_ONLY_TABLES = ("decisions", "feedback", "access_log")

_INITIAL_SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE decisions (
    seq                INTEGER PRIMARY KEY,
    decision_id        TEXT NOT NULL UNIQUE,
    created_at         TEXT NOT NULL,
    channel            TEXT NOT NULL CHECK (channel IN ('api', 'cds-hooks', 'form')),
    client             TEXT NOT NULL,
    ordering_clinician TEXT,
    patient_hash       TEXT,
    region             TEXT,
    appropriateness    TEXT,
    urgency            TEXT,
    scenario           TEXT,
    ruleset_version    TEXT NOT NULL,
    ruleset_sha256     TEXT NOT NULL,
    engine_version     TEXT NOT NULL,
    latency_ms         REAL NOT NULL,
    hook_instance      TEXT,
    order_ref          TEXT,
    input_json         TEXT NOT NULL,
    output_json        TEXT NOT NULL,
    prev_hash          TEXT NOT NULL,
    hash               TEXT NOT NULL
);

-- Time range filters (since/until) and the day/month statistics.
CREATE INDEX decisions_created_at ON decisions (created_at);
-- Selective audit filters.  A secondary index implicitly ends with the rowid (= seq), so each
-- of these also serves "newest first" (ORDER BY seq DESC) and keyset pagination on seq.
CREATE INDEX decisions_scenario ON decisions (scenario);
CREATE INDEX decisions_patient_hash ON decisions (patient_hash)
    WHERE patient_hash IS NOT NULL;
CREATE INDEX decisions_ordering_clinician ON decisions (ordering_clinician)
    WHERE ordering_clinician IS NOT NULL;
-- CDS Hooks dedupe: one decision per (hookInstance, ServiceRequest).
CREATE UNIQUE INDEX decisions_order ON decisions (hook_instance, order_ref)
    WHERE hook_instance IS NOT NULL AND order_ref IS NOT NULL;

CREATE TABLE feedback (
    seq                       INTEGER PRIMARY KEY,
    decision_id               TEXT NOT NULL REFERENCES decisions (decision_id),
    outcome                   TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    override_reason_json      TEXT,
    accepted_suggestions_json TEXT,
    outcome_timestamp         TEXT,
    received_at               TEXT NOT NULL,
    client                    TEXT NOT NULL,
    prev_hash                 TEXT NOT NULL,
    hash                      TEXT NOT NULL
);
CREATE INDEX feedback_decision ON feedback (decision_id);

CREATE TABLE idempotency (
    client      TEXT NOT NULL,
    key         TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    decision_id TEXT NOT NULL REFERENCES decisions (decision_id),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (client, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_created_at ON idempotency (created_at);

CREATE TABLE api_keys (
    key_id        TEXT PRIMARY KEY,
    label         TEXT NOT NULL,
    roles_json    TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);

CREATE TABLE jwt_seen (
    iss TEXT NOT NULL,
    jti TEXT NOT NULL,
    exp INTEGER NOT NULL,
    PRIMARY KEY (iss, jti)
) WITHOUT ROWID;
CREATE INDEX jwt_seen_exp ON jwt_seen (exp);

CREATE TABLE access_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_json TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
"""


def _append_only_triggers(table: str) -> str:
    return f"""
CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN
    SELECT RAISE(ABORT, '{table} is append-only: UPDATE refused');
END;
CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
BEGIN
    SELECT RAISE(ABORT, '{table} is append-only: DELETE refused');
END;
"""


@migrations(name="0001_initial")
def m0001_initial(db: sqlite_utils.Database) -> None:
    """Tables, indexes and append-only triggers of API v1."""
    db.executescript(_INITIAL_SCHEMA)
    for table in APPEND_ONLY_TABLES:
        db.executescript(_append_only_triggers(table))


_AUDIT_STATS_SCHEMA = """
-- Statistics read this narrow covering index (~140 bytes an entry) instead of the ~4.7 KB
-- decision rows.  It replaces decisions_created_at: it leads with the same column and then
-- seq, so it serves since/until exactly as before, and appends still update the same number
-- of B-trees (a wider entry, not another index).  Created before the old index is dropped,
-- so its pages come from the end of the file, in order (not from the freed pages scattered
-- through it): a cold scan then reads the disk sequentially.
CREATE INDEX IF NOT EXISTS decisions_stats ON decisions (
    created_at, seq, appropriateness, urgency, scenario, ruleset_version, channel, region,
    ordering_clinician, client
);
DROP INDEX IF EXISTS decisions_created_at;

-- The latest feedback outcome of each decision that has feedback, kept by append_feedback in
-- the transaction that appends the feedback.  Derived data (rebuildable from `feedback`), so
-- it is neither hash-chained nor append-only; created_at is the decision's, so statistics
-- join it to decisions_stats by (created_at, seq) without reading decision rows.
CREATE TABLE IF NOT EXISTS feedback_latest (
    decision_seq INTEGER PRIMARY KEY REFERENCES decisions (seq),
    created_at   TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden'))
);
-- Backfill in feedback order, so the last feedback of each decision wins.
INSERT INTO feedback_latest (decision_seq, created_at, outcome)
    SELECT d.seq, d.created_at, f.outcome
    FROM feedback f JOIN decisions d ON d.decision_id = f.decision_id
    WHERE true
    ORDER BY f.seq
    ON CONFLICT (decision_seq) DO UPDATE SET outcome = excluded.outcome;
"""


@migrations(name="0002_audit_stats")
def m0002_audit_stats(db: sqlite_utils.Database) -> None:
    """Covering index for audit statistics and the per-decision latest feedback outcome."""
    db.executescript(_AUDIT_STATS_SCHEMA)


_OPERATIONS_SCHEMA = """
-- Failed authentications per client address, shared by every worker of the host (the
-- throttle, referral_api/throttle.py). One row per failure; rows older than the window are
-- purged by the writer, and no row is written once a client is over the limit, so the table
-- holds at most limit x clients rows. Not audit data: neither chained nor append-only.
CREATE TABLE IF NOT EXISTS auth_failures (
    client TEXT NOT NULL,
    at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS auth_failures_client ON auth_failures (client, at);
CREATE INDEX IF NOT EXISTS auth_failures_at ON auth_failures (at);

-- The secret keys the service has used (never their values). Every keyed patient hash names
-- the key that made it (`hmac-sha256:<hex>` = k1, `hmac-sha256:<key_id>:<hex>` after a
-- rotation); `check_hmac` is an HMAC of the key id under a key derived from that secret, so a
-- keyring whose secret for an id differs from the one that made the stored hashes is refused
-- instead of silently making old records unfindable. Retired keys are kept for lookup only.
CREATE TABLE IF NOT EXISTS secret_keys (
    key_id     TEXT PRIMARY KEY,
    check_hmac TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT
);
"""


@migrations(name="0003_operations")
def m0003_operations(db: sqlite_utils.Database) -> None:
    """Cross-worker failed-authentication counters and the registry of secret key ids."""
    db.executescript(_OPERATIONS_SCHEMA)


def schema_version(db: sqlite_utils.Database) -> int:
    """Number of migrations of this set applied to ``db`` (0 for an empty database)."""
    return len(migrations.applied(db))


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations; return the names applied now (empty when up to date).

    Idempotent, and safe against a concurrent run: everything happens under one
    ``BEGIN IMMEDIATE`` (sqlite-utils nests each migration in a savepoint), so the second run
    waits, then finds nothing pending.  Records the schema version in ``meta``.
    """
    with write_transaction(db):
        pending = [m.name for m in migrations.pending(db)]
        if pending:
            migrations.apply(db)
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [str(schema_version(db))],
            )
    return pending


def is_migrated(db: sqlite_utils.Database) -> bool:
    """True when every known migration has been applied."""
    return not migrations.pending(db)
