-- The decision database schema, as `referral-api init-db` builds it from
-- referral_api/store/sqlite/migrations.py. Generated: do not edit (tests/store/test_schema_file.py;
-- regenerate with `python -m tests.store.test_schema_file`).

CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);

CREATE TABLE access_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_json TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE TABLE api_keys (
    key_id        TEXT PRIMARY KEY,
    label         TEXT NOT NULL,
    roles_json    TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);

CREATE TABLE auth_failures (
    client TEXT NOT NULL,
    at     REAL NOT NULL
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

CREATE TABLE feedback_latest (
    decision_seq INTEGER PRIMARY KEY REFERENCES decisions (seq),
    created_at   TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden'))
);

CREATE TABLE idempotency (
    client      TEXT NOT NULL,
    key         TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    decision_id TEXT NOT NULL REFERENCES decisions (decision_id),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (client, key)
) WITHOUT ROWID;

CREATE TABLE jwt_seen (
    iss TEXT NOT NULL,
    jti TEXT NOT NULL,
    exp INTEGER NOT NULL,
    PRIMARY KEY (iss, jti)
) WITHOUT ROWID;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE secret_keys (
    key_id     TEXT PRIMARY KEY,
    check_hmac TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT
);

CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name");

CREATE INDEX auth_failures_at ON auth_failures (at);

CREATE INDEX auth_failures_client ON auth_failures (client, at);

CREATE UNIQUE INDEX decisions_order ON decisions (hook_instance, order_ref)
    WHERE hook_instance IS NOT NULL AND order_ref IS NOT NULL;

CREATE INDEX decisions_ordering_clinician ON decisions (ordering_clinician)
    WHERE ordering_clinician IS NOT NULL;

CREATE INDEX decisions_patient_hash ON decisions (patient_hash)
    WHERE patient_hash IS NOT NULL;

CREATE INDEX decisions_scenario ON decisions (scenario);

CREATE INDEX decisions_stats ON decisions (
    created_at, seq, appropriateness, urgency, scenario, ruleset_version, channel, region,
    ordering_clinician, client
);

CREATE INDEX feedback_decision ON feedback (decision_id);

CREATE INDEX idempotency_created_at ON idempotency (created_at);

CREATE INDEX jwt_seen_exp ON jwt_seen (exp);

CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'access_log is append-only: DELETE refused');
END;

CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'access_log is append-only: UPDATE refused');
END;

CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN
    SELECT RAISE(ABORT, 'decisions is append-only: DELETE refused');
END;

CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN
    SELECT RAISE(ABORT, 'decisions is append-only: UPDATE refused');
END;

CREATE TRIGGER feedback_no_delete BEFORE DELETE ON feedback
BEGIN
    SELECT RAISE(ABORT, 'feedback is append-only: DELETE refused');
END;

CREATE TRIGGER feedback_no_update BEFORE UPDATE ON feedback
BEGIN
    SELECT RAISE(ABORT, 'feedback is append-only: UPDATE refused');
END;

