"""Export and stats with rule set 2026.2.0 decisions: the appended CSV columns."""

from __future__ import annotations

import csv
import io

from referral_api.audit.export import CSV_COLUMNS, csv_row


def _rows(client, headers) -> list[dict[str, str]]:
    response = client.get("/v1/decisions/export", query_string={"format": "csv"},
                          headers=headers)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert tuple(rows[0]) == CSV_COLUMNS
    return [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]


def test_new_columns_are_appended_after_the_old_ones() -> None:
    assert CSV_COLUMNS[-4:] == ("days_since_injury", "contributing_scenarios",
                                "recommended_steps", "safety_alert_levels")
    assert CSV_COLUMNS.index("chain_hash") == len(CSV_COLUMNS) - 5


def test_union_decision_exports_its_contributing_scenarios(client, auditor_headers,
                                                           decide) -> None:
    union = decide(findings=["myelopathy_signs", "urinary_retention"], egfr=20,
                   requested_procedure="mri_lumbar_without_and_with_contrast")
    injured = decide(findings=["minor_trauma"], days_since_injury=3,
                     contraindications=["breastfeeding"])
    by_id = {row["decision_id"]: row for row in _rows(client, auditor_headers)}
    row = by_id[union["decision_id"]]
    assert row["contributing_scenarios"] == "lumbar.cauda_equina;lumbar.cord_compression"
    assert row["recommended_steps"] == "1;1;2;2;3;3"
    assert row["safety_alerts"] == "renal_gadolinium"
    assert row["safety_alert_levels"] == "caution"
    other = by_id[injured["decision_id"]]
    assert other["days_since_injury"] == "3"
    assert other["contributing_scenarios"] == ""
    assert other["scenario"] == "lumbar.low_velocity_trauma"


def test_stats_group_the_new_decisions(client, auditor_headers, decide) -> None:
    decide(findings=["myelopathy_signs", "urinary_retention"])
    decide(findings=["minor_trauma"], days_since_injury=3)
    body = client.get("/v1/decisions/stats",
                      query_string={"group_by": "scenario,ruleset_version"},
                      headers=auditor_headers).get_json()
    groups = {(g["scenario"], g["ruleset_version"]): g["count"] for g in body["groups"]}
    assert groups == {("lumbar.cauda_equina", "2026.2.0"): 1,
                      ("lumbar.low_velocity_trauma", "2026.2.0"): 1}


def test_2026_1_0_records_leave_the_new_cells_empty() -> None:
    record = {"input": {"patient": {"age": 40}}, "recommended_procedures": [
        {"code": "mri_lumbar_without_contrast", "rating": "usually_appropriate"}],
        "safety": {"status": "caution", "alerts": [{"code": "pregnancy", "message": "…"}]}}
    cells = dict(zip(CSV_COLUMNS, csv_row(record), strict=True))
    assert (cells["days_since_injury"], cells["contributing_scenarios"],
            cells["recommended_steps"], cells["safety_alert_levels"]) == (None, "", "", "")


def test_new_fields_are_covered_by_the_chain_hash(app, client, auditor_headers, decide,
                                                  tmp_path) -> None:
    from tests.audit.test_verify_replay import _tampered_client

    union = decide(findings=["myelopathy_signs", "urinary_retention"])
    decide()
    for number, sql in enumerate(("UPDATE decisions SET output_json = replace(output_json, "
                "'lumbar.cord_compression\"]', '\"]') WHERE seq = 1",
                "UPDATE decisions SET output_json = replace(output_json, '\"step\":2', "
                "'\"step\":1') WHERE seq = 1",
                "UPDATE decisions SET output_json = replace(output_json, '\"level\":\"emergency\"',"
                " '\"level\":\"week\"') WHERE seq = 1")):
        (tmp_path / str(number)).mkdir()
        copy = _tampered_client(app, tmp_path / str(number), [sql])
        body = copy.test_client().get("/v1/decisions/verify", headers=auditor_headers)
        assert body.get_json()["ok"] is False, sql
        assert body.get_json()["first_bad"] == union["decision_id"]
        copy.extensions["referral_api"].log.close()
