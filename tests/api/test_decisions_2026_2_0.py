"""API additions of rule set 2026.2.0 (vocabulary-2026.2.0-delta §6-7)."""

from __future__ import annotations

import pytest

from tests.factories import auth, lumbar_request

PROBLEM = "application/problem+json"


def _key(app, role: str = "evaluator") -> dict[str, str]:
    return auth(app.extensions["referral_api"].keys.create([role], f"t-{role}")[1])


def test_care_longer_than_symptoms_is_422_naming_the_field(client, evaluator_headers,
                                                           app_2026_1_0) -> None:
    body = lumbar_request(symptom_duration_weeks=4, conservative_care_weeks=6)
    response = client.post("/v1/decisions", json=body, headers=evaluator_headers)
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert "conservative_care_weeks" in response.get_json()["errors"]
    pinned = app_2026_1_0.test_client().post("/v1/decisions", json=body,
                                             headers=_key(app_2026_1_0))
    assert pinned.status_code == 422  # validation, not a rule: every version
    assert "conservative_care_weeks" in pinned.get_json()["errors"]
    equal = client.post("/v1/decisions", json=lumbar_request(
        symptom_duration_weeks=6, conservative_care_weeks=6), headers=evaluator_headers)
    assert equal.status_code == 201


@pytest.mark.parametrize("value", [-1, 3651, 2.5, "3", True, None])
def test_days_since_injury_must_be_an_integer_0_to_3650(value, client,
                                                         evaluator_headers) -> None:
    response = client.post("/v1/decisions", json=lumbar_request(days_since_injury=value),
                           headers=evaluator_headers)
    assert response.status_code == 422, value
    assert "days_since_injury" in response.get_json()["errors"]


def test_days_since_injury_alone_asserts_an_injury(post_decision) -> None:
    body = post_decision(lumbar_request(days_since_injury=3, symptom_duration_weeks=0.5))
    got = body.get_json()
    assert got["scenario"]["id"] == "lumbar.low_velocity_trauma"
    assert got["assumptions"] == []
    assert "Injury 3 days ago." in got["reasons"]


def test_undated_injury_is_assumed_recent_and_listed(post_decision) -> None:
    got = post_decision(lumbar_request(findings=["minor_trauma"])).get_json()
    assert got["assumptions"] == [{
        "field": "days_since_injury", "assumed": "0-7",
        "message": "Injury date not given: treated as an injury in the last 7 days."}]


def test_v2_codes_follow_the_version_in_force(post_decision, app_2026_1_0) -> None:
    body = lumbar_request(findings=["bilateral_radiculopathy"],
                          contraindications=["metformin"])
    assert post_decision(body).status_code == 201
    old = app_2026_1_0.test_client().post("/v1/decisions", json=body,
                                          headers=_key(app_2026_1_0))
    assert old.status_code == 422
    errors = old.get_json()["errors"]
    assert "findings" in str(errors) and "contraindications" in str(errors)


def test_si_procedure_may_be_requested_for_lumbar_only(post_decision) -> None:
    ok = post_decision(lumbar_request(requested_procedure="xray_sacroiliac_joints",
                                      findings=["inflammatory_back_pain"],
                                      symptom_duration_weeks=20))
    assert ok.status_code == 201
    assert ok.get_json()["appropriateness"] == "usually_appropriate"
    bad = post_decision(lumbar_request(region="cervical",
                                       requested_procedure="xray_sacroiliac_joints"))
    assert bad.status_code == 422


def test_new_fields_are_stored_and_chain_hashed(client, post_decision, auditor_headers) -> None:
    created = post_decision(lumbar_request(
        findings=["myelopathy_signs", "urinary_retention"], egfr=25,
        requested_procedure="mri_lumbar_without_and_with_contrast")).get_json()
    assert created["contributing_scenarios"] == ["lumbar.cauda_equina",
                                                 "lumbar.cord_compression"]
    record = client.get(f"/v1/decisions/{created['decision_id']}",
                        headers=auditor_headers).get_json()
    for name in ("contributing_scenarios", "patient_information", "recommended_procedures",
                 "safety"):
        assert record[name] == created[name]
    assert record["safety"]["alerts"][0]["level"] == "caution"
    verify = client.get("/v1/decisions/verify", headers=auditor_headers).get_json()
    assert verify["ok"] is True


def test_union_merges_come_back_if_emergency_first(post_decision) -> None:
    got = post_decision(lumbar_request(findings=["myelopathy_signs", "urinary_retention"]))
    info = got.get_json()["patient_information"]
    levels = [item["level"] for item in info["come_back_if"]]
    assert levels == sorted(levels, key=["emergency", "today", "week"].index)
    signs = [item["sign"] for item in info["come_back_if"]]
    assert len(signs) == len(set(signs))
    assert set(info) == {"locale", "headline", "what_is_happening", "why_this_decision",
                         "about_the_scan", "meanwhile", "come_back_if", "questions_to_ask",
                         "if_scan_booked"}


def test_placeholders_come_from_configuration(make_app) -> None:
    app = make_app(EMERGENCY_NUMBER="112", FEVER_THRESHOLD="38 °C")
    response = app.test_client().post(
        "/v1/decisions", json=lumbar_request(findings=["fever"]), headers=_key(app))
    text = str(response.get_json()["patient_information"])
    assert "112" in text and "{emergency_number}" not in text
    assert "38 °C" in text and "{fever_threshold}" not in text


def test_vocabulary_endpoint_serves_the_version_in_force_or_the_one_asked(
        client, evaluator_headers, app_2026_1_0) -> None:
    now = client.get("/v1/vocabulary", headers=evaluator_headers).get_json()
    assert now["ruleset_version"] == "2026.2.0" and now["format"] == 2
    codes = [f["code"] for f in now["findings"]]
    assert "bilateral_radiculopathy" in codes and "midline_cervical_tenderness" in codes
    old = client.get("/v1/vocabulary?ruleset_version=2026.1.0",
                     headers=evaluator_headers).get_json()
    assert old["ruleset_version"] == "2026.1.0" and "format" not in old
    assert "bilateral_radiculopathy" not in [f["code"] for f in old["findings"]]
    missing = client.get("/v1/vocabulary?ruleset_version=9.9.9", headers=evaluator_headers)
    assert missing.status_code == 404 and missing.mimetype == PROBLEM
    pinned = app_2026_1_0.test_client().get("/v1/vocabulary",
                                            headers=_key(app_2026_1_0)).get_json()
    assert pinned["ruleset_version"] == "2026.1.0"


def test_ruleset_document_lists_cells_to_check(client, evaluator_headers) -> None:
    doc = client.get("/v1/rulesets/2026.2.0", headers=evaluator_headers).get_json()
    assert doc["language"] == 2 and doc["effective_from"] == "2026-12-01"
    assert doc["to_check"], "S2/D/M cells must be listed"
    assert all(set(c["evidence"]) & {"S2", "D", "M"} for c in doc["to_check"])
    scenarios = {s["id"]: s for region in doc["regions"].values() for s in region}
    assert len(scenarios) == 79
    assert scenarios["thoracic.failed_conservative_care"]["may_be_appropriate"] == [
        {"procedure": "xray_thoracic", "recommend": True}]
    cited = {c["scenario"] for c in doc["to_check"] if "scenario" in c}
    assert "cervical.neck_pain" in cited  # Cervical 2024 cells are [S2]
    assert "lumbar.uncomplicated" not in cited  # all [S]
    assert [r["id"] for r in doc["safety_rows"]][:2] == ["mr_unsafe_implant",
                                                          "orbital_metal_foreign_body"]


def test_response_and_openapi_document_cover_the_new_fields(client, post_decision,
                                                           app_2026_1_0) -> None:
    from referral_api.schemas import DecisionSchema

    body = post_decision(lumbar_request(findings=["myelopathy_signs", "urinary_retention"],
                                        contraindications=["breastfeeding"],
                                        requested_procedure="mri_lumbar_without_and_with_contrast"))
    assert DecisionSchema().validate(body.get_json()) == {}
    old = app_2026_1_0.test_client().post("/v1/decisions", json=lumbar_request(),
                                          headers=_key(app_2026_1_0)).get_json()
    assert DecisionSchema().validate(old) == {}
    doc = client.get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    assert "days_since_injury" in schemas["DecisionRequest"]["properties"]
    decision = schemas["Decision"]["properties"]
    assert {"contributing_scenarios", "patient_information"} <= set(decision)
    params = doc["paths"]["/v1/vocabulary"]["get"]["parameters"]
    assert params[0]["name"] == "ruleset_version"
    assert "REFERRAL_API_EMERGENCY_NUMBER" in str(schemas)


def test_replay_of_a_2026_2_0_union_under_its_own_version_has_no_differences(
        client, post_decision, auditor_headers) -> None:
    created = post_decision(lumbar_request(
        findings=["myelopathy_signs", "urinary_retention", "minor_trauma"],
        contraindications=["mr_unsafe_implant"])).get_json()
    replay = client.post(f"/v1/decisions/{created['decision_id']}/replay",
                         json={"ruleset_version": "2026.2.0"}, headers=auditor_headers)
    assert replay.status_code == 200
    assert replay.get_json()["differences"] == []
    older = client.post(f"/v1/decisions/{created['decision_id']}/replay",
                        json={"ruleset_version": "2026.1.0"}, headers=auditor_headers)
    fields = {d["field"] for d in older.get_json()["differences"]}
    assert {"contributing_scenarios", "recommended_procedures"} <= fields
