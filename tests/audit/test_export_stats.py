"""GET /v1/decisions/export (CSV, NDJSON, constant memory) and GET /v1/decisions/stats."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc

import pytest

from referral_api.audit.export import CSV_COLUMNS, csv_row, iter_export
from referral_api.store.interface import NewFeedback


def export(client, headers, **params):
    response = client.get("/v1/decisions/export", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response


def test_csv_has_the_documented_columns_one_row_per_decision(client, auditor_headers,
                                                             varied) -> None:
    response = export(client, auditor_headers, format="csv")
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0]) == CSV_COLUMNS
    body = rows[1:]
    assert [row[0] for row in body] == [r["decision_id"] for r in varied]  # oldest first
    by_name = dict(zip(CSV_COLUMNS, body[1], strict=True))
    cauda = varied[1]
    assert by_name["appropriateness"] == cauda["appropriateness"]
    assert by_name["urgency"] == "emergent"
    assert by_name["scenario"] == "lumbar.cauda_equina"
    assert by_name["findings"] == "urinary_retention"
    assert by_name["ordering_clinician"] == "dr-house"
    assert by_name["chain_hash"] == cauda["chain"]["hash"]
    assert by_name["feedback"] == "none" and by_name["feedback_count"] == "0"
    assert by_name["patient_hash"] == cauda["input"]["patient"]["reference"]
    assert "MRN-0001" not in response.get_data(as_text=True)


def test_ndjson_holds_the_whole_records(client, auditor_headers, varied) -> None:
    response = export(client, auditor_headers, format="ndjson")
    assert response.mimetype == "application/x-ndjson"
    lines = response.get_data(as_text=True).splitlines()
    records = [json.loads(line) for line in lines]
    single = client.get(f"/v1/decisions/{varied[3]['decision_id']}", headers=auditor_headers)
    assert records[3] == single.get_json()
    assert len(records) == len(varied)


def test_export_applies_filters(client, auditor_headers, varied) -> None:
    response = export(client, auditor_headers, format="ndjson", channel="cds-hooks",
                      urgency="emergent")
    records = [json.loads(x) for x in response.get_data(as_text=True).splitlines()]
    assert [r["decision_id"] for r in records] == [varied[4]["decision_id"]]
    empty = export(client, auditor_headers, format="csv", region="cervical",
                   since="2999-01-01")
    assert empty.get_data(as_text=True).splitlines() == [",".join(CSV_COLUMNS)]


@pytest.mark.parametrize(("query", "field"), [("", "format"), ("format=xml", "format"),
                                              ("format=csv&urgency=soon", "urgency")])
def test_export_validation(client, auditor_headers, query, field) -> None:
    response = client.get(f"/v1/decisions/export?{query}", headers=auditor_headers)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_export_is_recorded_in_the_access_log(client, svc, auditor_headers, varied) -> None:
    export(client, auditor_headers, format="csv", region="lumbar")
    entry = svc.log.access_log(limit=1)[0]
    assert entry["action"] == "export_decisions"
    assert entry["actor"] == "test-auditor"
    assert entry["target"] == {"filters": {"region": "lumbar"}, "format": "csv"}


def test_csv_neutralises_spreadsheet_formulas(decide) -> None:
    record = decide(ordering_clinician="=HYPERLINK(\"http://x\")")
    row = dict(zip(CSV_COLUMNS, csv_row(record), strict=True))
    assert row["ordering_clinician"].startswith("'=")


def _peak_while_exporting(svc, fmt: str) -> int:
    tracemalloc.start()
    try:
        size = sum(len(chunk) for chunk in iter_export(fmt, svc.log.iter_records({})))
        assert size > 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


#: Log sizes compared, and how much more the larger export's peak memory may be: a constant
#: amount would be flat; 10x the records may cost at most half again plus allocator slack.
SMALL_LOG, LARGE_LOG = 1_000, 10_000
PEAK_GROWTH_FACTOR = 1.5
PEAK_GROWTH_SLACK_BYTES = 256 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_export_memory_does_not_grow_with_the_log(svc, fmt, bulk_append) -> None:
    """Peak memory exporting 10 000 decisions stays that of exporting 1 000 (chunked reads,
    one record at a time); the 1 000 000-row figure is in docs/audit.md (scripts/bench_audit)."""
    bulk_append(SMALL_LOG)
    small = _peak_while_exporting(svc, fmt)
    bulk_append(LARGE_LOG - SMALL_LOG)
    large = _peak_while_exporting(svc, fmt)
    assert large < small * PEAK_GROWTH_FACTOR + PEAK_GROWTH_SLACK_BYTES, (small, large)


# -- stats ---------------------------------------------------------------------------------


def stats(client, headers, **params):
    response = client.get("/v1/decisions/stats", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_stats_counts_by_field(client, auditor_headers, varied) -> None:
    body = stats(client, auditor_headers, group_by="urgency")
    assert body["total"] == len(varied)
    counts = {g["urgency"]: g["count"] for g in body["groups"]}
    expected: dict[str, int] = {}
    for r in varied:
        expected[r["urgency"]] = expected.get(r["urgency"], 0) + 1
    assert counts == expected
    assert all(g["override_rate"] is None for g in body["groups"])  # no feedback yet
    assert set(body["groups"][0]) == {"urgency", "count", "override_rate"}


def test_stats_override_rate_and_feedback_group(client, svc, auditor_headers, varied) -> None:
    first, second = varied[4]["decision_id"], varied[7]["decision_id"]
    svc.log.append_feedback(first, NewFeedback("overridden"), "ehr")
    svc.log.append_feedback(second, NewFeedback("accepted"), "ehr")
    body = stats(client, auditor_headers, group_by="channel", channel="cds-hooks")
    assert body == {"total": 2, "groups": [{"channel": "cds-hooks", "count": 2,
                                            "override_rate": 0.5}]}
    by_feedback = stats(client, auditor_headers, group_by="feedback")
    counts = {g["feedback"]: g["count"] for g in by_feedback["groups"]}
    assert counts == {"accepted": 1, "none": len(varied) - 2, "overridden": 1}


def test_stats_by_day_and_month_utc(client, auditor_headers, varied) -> None:
    day = varied[0]["created_at"][:10]
    body = stats(client, auditor_headers, group_by="month,day", region="lumbar")
    lumbar = sum(r["region"] == "lumbar" for r in varied)
    assert body["groups"] == [{"month": day[:7], "day": day, "count": lumbar,
                               "override_rate": None}]


def test_stats_without_group_by_gives_the_total(client, auditor_headers, varied) -> None:
    body = stats(client, auditor_headers)
    assert body["total"] == len(varied)
    assert body["groups"] == [{"count": len(varied), "override_rate": None}]


def test_every_contract_group_field_is_accepted(client, auditor_headers, varied) -> None:
    fields = ["appropriateness", "urgency", "scenario", "ruleset_version", "channel", "region",
              "ordering_clinician", "feedback", "day", "month"]
    for name in fields:
        body = stats(client, auditor_headers, group_by=name)
        assert sum(g["count"] for g in body["groups"]) == len(varied)
        assert all(name in g for g in body["groups"])


@pytest.mark.parametrize("group_by", ["colour", "day,day", "client"])
def test_stats_bad_group_by_is_422(client, auditor_headers, group_by) -> None:
    response = client.get("/v1/decisions/stats", query_string={"group_by": group_by},
                          headers=auditor_headers)
    assert response.status_code == 422
    assert "group_by" in response.get_json()["errors"]


def test_stats_read_is_recorded(client, svc, auditor_headers, varied, access_actions) -> None:
    stats(client, auditor_headers, group_by="day")
    assert access_actions()[-1] == "decision_stats"
    assert svc.log.access_log(limit=1)[0]["target"]["group_by"] == ["day"]
