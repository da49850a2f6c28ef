-- 0002_audit_stats: the covering index for audit statistics and the latest feedback outcome
-- per decision (the same meaning as the SQLite migration of the same number).
-- PostgreSQL can carry the grouped columns as INCLUDE payload: the B-tree stays ordered by
-- (created_at, seq) and statistics are index-only scans once the visibility map is set
-- (autovacuum does that for insert-only tables since PostgreSQL 13).
CREATE INDEX decisions_stats ON decisions (created_at, seq) INCLUDE (
    appropriateness, urgency, scenario, ruleset_version, channel, region,
    ordering_clinician, client
);
DROP INDEX decisions_created_at;

CREATE TABLE feedback_latest (
    decision_seq BIGINT PRIMARY KEY REFERENCES decisions (seq),
    created_at   TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden'))
);
INSERT INTO feedback_latest (decision_seq, created_at, outcome)
    SELECT DISTINCT ON (d.seq) d.seq, d.created_at, f.outcome
    FROM feedback f JOIN decisions d ON d.decision_id = f.decision_id
    ORDER BY d.seq, f.seq DESC;
