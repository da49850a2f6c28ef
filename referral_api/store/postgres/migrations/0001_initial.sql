-- 0001_initial: tables, indexes and append-only triggers of API v1 (the same content as the
-- SQLite migration of the same number).  Timestamps stay ISO 8601 TEXT (fixed width, UTC, ms)
-- and JSON stays TEXT: the chain hashes cover the stored values, so both backends must store
-- exactly the same strings and numbers (see db/README.md).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE decisions (
    seq                BIGINT PRIMARY KEY,
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
    latency_ms         DOUBLE PRECISION NOT NULL,
    hook_instance      TEXT,
    order_ref          TEXT,
    input_json         TEXT NOT NULL,
    output_json        TEXT NOT NULL,
    prev_hash          TEXT NOT NULL,
    hash               TEXT NOT NULL,
    -- seq starts at 1; with the primary key, two writers that read the same head cannot both
    -- commit (the second insert of seq n fails): the chain cannot fork even if a writer
    -- bypassed the chain lock.
    CHECK (seq >= 1)
);

CREATE INDEX decisions_created_at ON decisions (created_at, seq);
-- PostgreSQL indexes do not end with the row id as SQLite's do: seq is named explicitly so
-- that each filter index also serves "newest first" keyset pagination on seq.
CREATE INDEX decisions_scenario ON decisions (scenario, seq);
CREATE INDEX decisions_patient_hash ON decisions (patient_hash, seq)
    WHERE patient_hash IS NOT NULL;
CREATE INDEX decisions_ordering_clinician ON decisions (ordering_clinician, seq)
    WHERE ordering_clinician IS NOT NULL;
CREATE UNIQUE INDEX decisions_order ON decisions (hook_instance, order_ref)
    WHERE hook_instance IS NOT NULL AND order_ref IS NOT NULL;

CREATE TABLE feedback (
    seq                       BIGINT PRIMARY KEY CHECK (seq >= 1),
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
CREATE INDEX feedback_decision ON feedback (decision_id, seq);

CREATE TABLE idempotency (
    client      TEXT NOT NULL,
    key         TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    decision_id TEXT NOT NULL REFERENCES decisions (decision_id),
    created_at  TEXT NOT NULL,
    PRIMARY KEY (client, key)
);
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
    exp BIGINT NOT NULL,
    PRIMARY KEY (iss, jti)
);
CREATE INDEX jwt_seen_exp ON jwt_seen (exp);

CREATE TABLE access_log (
    seq         BIGINT PRIMARY KEY CHECK (seq >= 1),
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_json TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

-- Append-only: UPDATE, DELETE and TRUNCATE are refused by the database itself, for every
-- role including the owner (the application role cannot even try: it has no such privilege).
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER feedback_no_update BEFORE UPDATE ON feedback
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER feedback_no_delete BEFORE DELETE ON feedback
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER feedback_no_truncate BEFORE TRUNCATE ON feedback
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER access_log_no_update BEFORE UPDATE ON access_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER access_log_no_delete BEFORE DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
