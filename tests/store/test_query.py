"""Audit reads: filtered newest-first pages with cursors, streamed export, statistics."""

from __future__ import annotations

import datetime as dt

import pytest

from referral_api.store.interface import NewFeedback
from referral_api.store.sqlite import queries as audit_query
from referral_api.store.sqlite.log import SQLiteDecisionLog
from tests.factories import make_new, sample_output

DAY1 = dt.datetime(2026, 10, 31, 23, 59, 0, tzinfo=dt.UTC)
DAY2 = dt.datetime(2026, 11, 1, 8, 0, 0, tzinfo=dt.UTC)
DAY3 = dt.datetime(2026, 11, 2, 8, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def corpus(log: SQLiteDecisionLog, clock) -> dict[str, dict]:
    """Seven decisions over three days with varied fields and feedback."""
    routine = sample_output(
        appropriateness="usually_not_appropriate",
        urgency="none",
        scenario={"id": "lumbar.uncomplicated_acute", "title": "t", "sources": []},
    )
    cervical = sample_output(
        region="cervical",
        urgency="urgent",
        scenario={"id": "cervical.myelopathy", "title": "t", "sources": []},
    )
    made: dict[str, dict] = {}
    plan = [
        ("a", DAY1, {}),
        ("b", DAY1, {"output": routine, "client": "ehr"}),
        ("c", DAY2, {"output": cervical, "channel": "cds-hooks", "client": "ehr"}),
        ("d", DAY2, {"output": routine, "ordering_clinician": "dr-x"}),
        ("e", DAY2, {"patient_hash": "hmac-sha256:" + "ee" * 32, "ruleset_version": "2026.2.0"}),
        ("f", DAY3, {"output": routine, "channel": "form"}),
        ("g", DAY3, {"output": cervical}),
    ]
    for name, moment, overrides in plan:
        clock.now = moment
        made[name] = log.append(make_new(**overrides))[0]
    log.append_feedback(made["b"]["decision_id"], NewFeedback("overridden"), "ehr")
    log.append_feedback(made["d"]["decision_id"], NewFeedback("overridden"), "ehr")
    log.append_feedback(made["d"]["decision_id"], NewFeedback("accepted"), "ehr")  # latest
    log.append_feedback(made["f"]["decision_id"], NewFeedback("overridden"), "ehr")
    return made


def names(records: list[dict], corpus: dict[str, dict]) -> list[str]:
    by_id = {r["decision_id"]: n for n, r in corpus.items()}
    return [by_id[r["decision_id"]] for r in records]


def test_pages_newest_first_with_cursor(log: SQLiteDecisionLog, corpus) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        items, cursor = log.query({}, 3, cursor)
        seen += names(items, corpus)
        pages += 1
        if cursor is None:
            break
        assert all(c.isalnum() or c in "-_" for c in cursor)  # URL-safe
    assert seen == list("gfedcba")
    assert pages == 3
    full, _ = log.query({}, 50)
    assert full[0] == log.get(corpus["g"]["decision_id"])  # records are complete
    assert [f["outcome"] for f in full[3]["feedback"]] == ["overridden", "accepted"]
    assert log.query({}, 7) == (full, None)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"region": "cervical"}, "gc"),
        ({"appropriateness": "usually_not_appropriate"}, "fdb"),
        ({"urgency": "urgent"}, "gc"),
        ({"scenario": "lumbar.uncomplicated_acute"}, "fdb"),
        ({"ruleset_version": "2026.2.0"}, "e"),
        ({"channel": "cds-hooks"}, "c"),
        ({"channel": "api"}, "gedba"),
        ({"client": "ehr"}, "cb"),
        ({"ordering_clinician": "dr-x"}, "d"),
        ({"patient_hash": "hmac-sha256:" + "ee" * 32}, "e"),
        ({"feedback": "overridden"}, "fb"),
        ({"feedback": "accepted"}, "d"),
        ({"feedback": "none"}, "gec a".replace(" ", "")),
        ({"since": "2026-11-01T00:00:00Z"}, "gfedc"),
        ({"until": "2026-11-01T00:00:00Z"}, "ba"),
        ({"since": "2026-11-01", "until": "2026-11-02T07:59:59.999Z"}, "edc"),
        ({"since": "2026-11-01", "until": "2026-11-02T08:00:00.000Z"}, "gfedc"),  # inclusive
        ({"since": "2026-10-31T23:59:00.001Z"}, "gfedc"),
        ({"since": "2026-11-01T10:00:00+02:00", "until": "2026-11-01T09:00:00"}, "edc"),
        ({"since": DAY3, "region": "lumbar"}, "f"),
        ({"since": "2027-01-01T00:00:00Z"}, ""),
        ({"until": "2020-01-01T00:00:00Z"}, ""),
        ({"region": "thoracic"}, ""),
        ({"region": None, "feedback": None}, "gfedcba"),
    ],
)
def test_filters(log: SQLiteDecisionLog, corpus, filters, expected: str) -> None:
    items, cursor = log.query(filters, 50)
    assert "".join(names(items, corpus)) == expected
    assert cursor is None


def test_filtered_pagination(log: SQLiteDecisionLog, corpus) -> None:
    first, cursor = log.query({"region": "lumbar"}, 2)
    assert names(first, corpus) == ["f", "e"]
    second, cursor = log.query({"region": "lumbar"}, 2, cursor)
    assert names(second, corpus) == ["d", "b"]
    third, cursor = log.query({"region": "lumbar"}, 2, cursor)
    assert names(third, corpus) == ["a"] and cursor is None


def test_invalid_requests_raise_value_error(log: SQLiteDecisionLog, corpus) -> None:
    _, cursor = log.query({"region": "lumbar"}, 2)
    bad_calls = [
        lambda: log.query({"region": "cervical"}, 2, cursor),  # cursor from other filters
        lambda: log.query({}, 2, "not-a-cursor"),
        lambda: log.query({}, 2, "eyJ2IjoxLCJzIjotMSwiZiI6IngifQ"),
        lambda: log.query({}, 0),
        lambda: log.query({}, 501),
        lambda: log.query({}, True),
        lambda: log.query({"colour": "red"}, 5),
        lambda: log.query({"feedback": "maybe"}, 5),
        lambda: log.query({"since": "yesterday"}, 5),
        lambda: log.query({"since": 17}, 5),
        lambda: log.query({"region": 3}, 5),
        lambda: log.stats({}, ["colour"]),
        lambda: log.stats({}, ["day", "day"]),
        lambda: log.iter_records({"feedback": "sometimes"}),
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()


def test_iter_records_streams_oldest_first_in_short_reads(log: SQLiteDecisionLog, corpus) -> None:
    assert names(list(log.iter_records({})), corpus) == list("abcdefg")
    assert names(list(log.iter_records({"region": "lumbar"})), corpus) == list("abdef")
    conn = log.db().conn
    stream = audit_query.iter_records(lambda read: read(conn), {"region": "lumbar"}, chunk=2)
    got = []
    for record in stream:
        assert not conn.in_transaction  # no read transaction held while the consumer works
        got.append(record)
    assert names(got, corpus) == list("abdef")
    assert list(log.iter_records({"since": "2030-01-01"})) == []


def test_stats(log: SQLiteDecisionLog, corpus) -> None:
    by_day = log.stats({}, ["day"])
    assert by_day == {
        "total": 7,
        "groups": [
            {"day": "2026-10-31", "count": 2, "override_rate": 1.0},
            {"day": "2026-11-01", "count": 3, "override_rate": 0.0},
            {"day": "2026-11-02", "count": 2, "override_rate": 1.0},
        ],
    }
    by_month = log.stats({"region": "lumbar"}, ["month", "feedback"])
    assert by_month["total"] == 5
    assert by_month["groups"] == [
        {"month": "2026-10", "feedback": "none", "count": 1, "override_rate": None},
        {"month": "2026-10", "feedback": "overridden", "count": 1, "override_rate": 1.0},
        {"month": "2026-11", "feedback": "accepted", "count": 1, "override_rate": 0.0},
        {"month": "2026-11", "feedback": "none", "count": 1, "override_rate": None},
        {"month": "2026-11", "feedback": "overridden", "count": 1, "override_rate": 1.0},
    ]
    overall = log.stats({}, [])
    assert overall == {"total": 7, "groups": [{"count": 7, "override_rate": 2 / 3}]}
    scen = log.stats({"since": "2026-11-01"}, ["scenario", "channel"])
    assert sum(g["count"] for g in scen["groups"]) == scen["total"] == 5
    assert {"scenario": "cervical.myelopathy", "channel": "cds-hooks", "count": 1,
            "override_rate": None} in scen["groups"]  # fmt: skip
    assert log.stats({"since": "2030-01-01"}, ["day"]) == {"total": 0, "groups": []}
    assert log.stats({"region": "thoracic"}, []) == {"total": 0, "groups": []}


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"scenario": "x"}, "decisions_scenario"),
        ({"patient_hash": "x"}, "decisions_patient_hash"),
        ({"ordering_clinician": "x"}, "decisions_ordering_clinician"),
    ],
)
def test_selective_filters_use_their_index_without_sorting(
    log: SQLiteDecisionLog, corpus, filters, index: str
) -> None:
    where, params = audit_query._where(filters, (1, 2**63 - 1))
    plan = " | ".join(
        row[3]
        for row in log.db().conn.execute(
            f"EXPLAIN QUERY PLAN SELECT d.* FROM decisions d WHERE {where} "  # noqa: S608
            "ORDER BY d.seq DESC LIMIT 51",
            params,
        )
    )
    assert index in plan
    assert "TEMP B-TREE" not in plan


@pytest.mark.parametrize(
    "filters",
    [{"client": "x"}, {"region": "lumbar", "since": "2026-11-01"},
     {"urgency": "emergent", "feedback": "none"}],
)
def test_pages_with_filters_only_the_covering_index_holds_walk_it_without_sorting(
    log: SQLiteDecisionLog, corpus, filters: dict
) -> None:
    """A filter without an index of its own: the page's seqs come from decisions_stats
    (covering, no sort), then only the page's rows are read."""
    statements: list[str] = []
    conn = log.db().conn
    conn.set_trace_callback(statements.append)
    try:
        log.query(filters, limit=2)
    finally:
        conn.set_trace_callback(None)
    walks = [s for s in statements if "INDEXED BY decisions_stats" in s]
    assert len(walks) == 1
    plan = " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {walks[0]}"))
    assert "COVERING INDEX decisions_stats" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("field", ["region", "client", "urgency", "channel"])
def test_pages_and_exports_through_the_covering_index_equal_a_full_scan(
    log: SQLiteDecisionLog, corpus, field: str
) -> None:
    """Through the covering index, the same records in the same order, page by page."""
    conn = log.db().conn
    values = [r[0] for r in conn.execute(f"SELECT DISTINCT {field} FROM decisions")]  # noqa: S608
    for value in [v for v in values if v is not None]:
        expected = [r[0] for r in conn.execute(
            f"SELECT seq FROM decisions NOT INDEXED WHERE {field} = ? ORDER BY seq DESC",  # noqa: S608
            [value])]
        seen, cursor = [], None
        while True:
            page, cursor = log.query({field: value}, limit=2, cursor=cursor)
            seen += [r["chain"]["seq"] for r in page]
            if cursor is None:
                break
        assert seen == expected
        exported = [r["chain"]["seq"] for r in log.iter_records({field: value})]
        assert exported == expected[::-1]


def test_time_bounds_use_the_created_at_index(log: SQLiteDecisionLog, corpus) -> None:
    plan = " ".join(
        row[3]
        for row in log.db().conn.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM decisions WHERE created_at >= ? "
            "ORDER BY created_at, seq LIMIT 1",
            ["2026-11-01"],
        )
    )
    assert "decisions_stats" in plan and "TEMP B-TREE" not in plan


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"region": "lumbar"},
        {"scenario": "x", "since": "2026-11-01"},
        {"client": "ehr"},
        {"ordering_clinician": "dr-x", "until": "2026-11-01"},
    ],
)
def test_stats_read_the_covering_index_not_the_decision_rows(
    log: SQLiteDecisionLog, corpus, filters: dict
) -> None:
    """Statistics never touch the wide rows: every read is on decisions_stats (covering)
    or feedback_latest, whatever the filters (the planner would pick decisions_scenario)."""
    statements: list[str] = []
    conn = log.db().conn
    conn.set_trace_callback(statements.append)
    try:
        log.stats(filters, ["scenario", "feedback"])
    finally:
        conn.set_trace_callback(None)
    selects = [s for s in statements if s.startswith("SELECT")]
    assert len(selects) == 2
    for sql in selects:  # traced with the parameters already bound
        plan = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        on_decisions = [step for step in plan if " d " in f" {step} "]
        assert on_decisions and all(
            "COVERING INDEX decisions_stats" in step for step in on_decisions
        ), plan


def test_stats_match_a_direct_count(log: SQLiteDecisionLog, corpus) -> None:
    """Counts and override rates equal a plain SQL computation from the feedback table,
    for every single field and filter shape (the merge of index counts and feedback_latest)."""
    conn = log.db().conn
    latest = dict(
        conn.execute(
            "SELECT decision_id, outcome FROM feedback WHERE seq IN "
            "(SELECT max(seq) FROM feedback GROUP BY decision_id)"
        ).fetchall()
    )
    rows = conn.execute("SELECT decision_id, region, scenario, channel FROM decisions").fetchall()
    for feedback_filter in (None, "none", "accepted", "overridden"):
        for field, column in (("scenario", 2), ("channel", 3), ("feedback", None)):
            expected: dict = {}
            for row in rows:
                outcome = latest.get(row[0])
                if feedback_filter and (outcome or "none") != feedback_filter:
                    continue
                if row[1] != "lumbar":
                    continue
                value = (outcome or "none") if column is None else row[column]
                n, over, answered = expected.get(value, (0, 0, 0))
                over += outcome == "overridden"
                expected[value] = (n + 1, over, answered + bool(outcome))
            got = log.stats({"region": "lumbar", "feedback": feedback_filter}, [field])
            assert got["groups"] == [
                {field: v, "count": n, "override_rate": (o / a) if a else None}
                for v, (n, o, a) in sorted(expected.items())
            ], (feedback_filter, field)
            assert got["total"] == sum(n for n, _, _ in expected.values())
