"""CDS Hooks under rule set 2026.2.0, through the endpoint: criteria §13 T38-T40, the
conformance requests, orders that never trigger, and the two FHIR defects end to end.

The decision clock is pinned to 2026-12-01 12:00 UTC (2026.2.0's first day), and every date in
the requests is written relative to it, so these tests mean the same on any day they run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from referral_api.cds.cards import PAMA_CONSULT_ID, PAMA_EXTENSION
from tests.cds.builders import (
    ICD10CM,
    LOINC,
    PUBLIC_URL,
    bundle,
    condition,
    conformance,
    count_decisions,
    hook_request,
    patient,
    service_request,
    walk_for_empty,
)

SELECT = "/cds-services/spine-mri-appropriateness"
V2_TIME = "2026-12-01T12:00:00+00:00"
DAY = date(2026, 12, 1)
UCUM = "http://unitsofmeasure.org"
T38_SUMMARY = ("MRI lumbar spine without contrast: usually not appropriate on recorded data — "
               "confirm red flags")
FIRST_SIX = ["bilateral_radiculopathy", "progressive_neurologic_deficit",
             "severe_motor_deficit", "bilateral_leg_weakness", "myelopathy_signs",
             "saddle_anesthesia"]


def ago(days: int) -> str:
    return (DAY - timedelta(days=days)).isoformat()


@pytest.fixture
def app(build_cds_app: Callable[..., Any], clients_file: Path) -> Any:
    return build_cds_app(PUBLIC_URL=PUBLIC_URL, CDS_CLIENTS=str(clients_file),
                         EVALUATION_TIME=V2_TIME)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def headers(app: Any) -> dict[str, str]:
    store = app.extensions["referral_api"].keys
    return {"Authorization": f"Bearer {store.create(['evaluator'], 'cds-v2')[1]}"}


@pytest.fixture
def auditor(app: Any) -> dict[str, str]:
    store = app.extensions["referral_api"].keys
    return {"Authorization": f"Bearer {store.create(['auditor'], 'cds-v2-audit')[1]}"}


def call(client, body, headers) -> dict[str, Any]:
    response = client.post(SELECT, json=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    # "cards" is required by CDS Hooks (an empty list is the answer "no card").
    assert walk_for_empty({k: v for k, v in data.items() if k != "cards"}) == []
    assert walk_for_empty(data["cards"]) == []
    for card in data["cards"]:
        assert len(card["summary"]) < 140
    return data


def rating(action: dict[str, Any]) -> str:
    ext = {e["url"]: e for e in action["resource"]["extension"]}
    return ext[PAMA_EXTENSION]["valueCodeableConcept"]["coding"][0]["code"]


def record_of(client, auditor, decision_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/decisions/{decision_id}", headers=auditor)
    assert response.status_code == 200
    return response.get_json()


def t38_prefetch(*extra: dict[str, Any]) -> dict[str, Any]:
    """T38: a 40-year-old, M54.50 with onset 10 days ago, nothing else."""
    return {"patient": patient("1986-06-15", "male"),
            "conditions": bundle(condition("M54.50", onset=ago(10)), *extra),
            "egfr": bundle()}


def confirm_codes(card: dict[str, Any]) -> list[str]:
    params = dict(parse_qsl(urlsplit(card["links"][0]["url"]).query))
    return params["confirm"].split(",") if "confirm" in params else []


def not_assessed(record: dict[str, Any]) -> dict[str, str]:
    return {a["field"].split(".", 1)[1]: a["message"] for a in record["assumptions"]
            if a["assumed"] == "not_assessed"}


# --- T38-T40 (criteria 2026.2.0 §13) ----------------------------------------------------------


def test_t38_una_on_recorded_data(app, client, headers, auditor):
    data = call(client, hook_request(service_request("72148"), prefetch=t38_prefetch()),
                headers)
    [card] = data["cards"]
    record = record_of(client, auditor, card["uuid"])
    assert record["ruleset"]["version"] == "2026.2.0"
    assert record["scenario"]["id"] == "lumbar.uncomplicated"
    assert record["urgency"] == "none"
    assert record["appropriateness"] == "usually_not_appropriate"  # the computed rating kept
    assert record["recommended_procedures"] == []

    assert card["indicator"] == "warning"
    assert card["summary"] == T38_SUMMARY
    codes = confirm_codes(card)
    assert codes[:6] == FIRST_SIX
    assert "urinary_retention" in codes and "radiculopathy" not in codes
    first = card["detail"].split("\n")[0]
    more = f", and {len(codes) - 6} more" if len(codes) > 6 else ""
    assert first.startswith(
        "**Confirm red flags before relying on this.** Not assessed from the record: "
        "Radicular symptoms in both legs, progressive neurological deficit, severe motor "
        f"deficit, weakness of both legs, signs of myelopathy, saddle anaesthesia{more}. "
        "[Record them in the form](https://cds.example.org/?")
    assert first.endswith(" — the answer may change to urgent or emergency imaging.")
    assert "suggestions" not in card
    assert card["overrideReasons"][0]["code"] == "red-flag-not-in-record"
    assert card["overrideReasons"][0]["system"] == "https://example.org/cds/override-reasons"

    # every red flag is listed as not assessed, in vocabulary order
    vocabulary = app.extensions["referral_api"].registry.vocabulary_for("2026.2.0")
    flags = [f.code for f in vocabulary.red_flags()]
    assert list(not_assessed(record)) == flags
    assert not_assessed(record)["saddle_anesthesia"].endswith(
        ": no code for it in the record. Treated as absent for this rating; confirm.")
    assert "not among the active coded conditions" in not_assessed(record)["urinary_retention"]

    # the PAMA rating still rates the order as documented
    for actions in (data["systemActions"], data["extension"]["systemActions"]):
        assert rating(actions[0]) == "not-appropriate"

    params = parse_qsl(urlsplit(card["links"][0]["url"]).query)
    assert ("cds_decision", card["uuid"]) in params
    assert ("age", "40") in params and ("findings", "radiculopathy") not in params


def test_t39_skin_cancer_is_not_a_history_of_cancer(client, headers, auditor):
    body = hook_request(service_request("72148"),
                        prefetch=t38_prefetch(condition("C44.91", onset=ago(200))))
    [card] = call(client, body, headers)["cards"]
    record = record_of(client, auditor, card["uuid"])
    assert record["input"]["findings"] == []
    assert record["scenario"]["id"] == "lumbar.uncomplicated"
    assert record["appropriateness"] == "usually_not_appropriate"
    assert "not among the active coded conditions" in not_assessed(record)["history_of_cancer"]
    assert "history_of_cancer" in confirm_codes(card)
    assert card["summary"] == T38_SUMMARY


def test_t40_recent_fracture_derives_days_since_injury(client, headers, auditor):
    body = hook_request(service_request("72148"),
                        prefetch=t38_prefetch(condition("S32.010A", recorded=ago(3))))
    data = call(client, body, headers)
    [card] = data["cards"]
    record = record_of(client, auditor, card["uuid"])
    assert record["input"]["days_since_injury"] == 3
    assert "significant_trauma" in record["input"]["findings"]
    assert record["scenario"]["id"] == "lumbar.trauma_high_risk"
    assert record["urgency"] == "emergent"
    assert record["appropriateness"] == "usually_not_appropriate"
    assert [p["code"] for p in record["recommended_procedures"]] == ["ct_lumbar_without_contrast"]
    assert not [a for a in record["assumptions"] if a["field"] == "days_since_injury"]
    # emergent: the v1 card (critical), the red flags under the assumptions
    assert card["indicator"] == "critical"
    assert not card["summary"].endswith(("confirm red flags", "(on recorded data)"))
    assert "**Assumed: red flags not assessed**" in card["detail"]
    assert "suggestions" not in card
    assert rating(data["systemActions"][0]) == "not-appropriate"
    params = parse_qsl(urlsplit(card["links"][0]["url"]).query)
    assert ("days_since_injury", "3") in params and ("findings", "significant_trauma") in params


def test_urgent_appropriate_answer_on_recorded_data(client, headers, auditor):
    # T24-like: a history of cancer (C50.9) → suspected malignancy, urgent, MRI UA. Red flags
    # that would make it emergent (e.g. a deficit: suspected MSCC) are not in the record.
    body = hook_request(service_request("72158"), prefetch={
        "patient": patient("1966-06-15"), "egfr": bundle(),
        "conditions": bundle(condition("M54.50", onset=ago(21)),
                             condition("C50.9", onset=ago(400)))})
    [card] = call(client, body, headers)["cards"]
    record = record_of(client, auditor, card["uuid"])
    assert record["scenario"]["id"] == "lumbar.suspected_malignancy"
    assert (record["urgency"], record["appropriateness"]) == ("urgent", "usually_appropriate")
    assert card["summary"].endswith(" (on recorded data)")
    assert card["summary"].startswith("MRI lumbar spine without and with contrast: usually "
                                      "appropriate")
    assert card["indicator"] == "info"
    first = card["detail"].split("\n")[0]
    assert first.startswith("Not assessed from the record: ")
    assert "[confirm in the form](https://cds.example.org/?" in first
    assert "radiculopathy" in confirm_codes(card)  # with cancer: suspected MSCC, emergent
    assert "overrideReasons" not in card and "suggestions" not in card


def test_t40_the_same_code_400_days_ago_is_ignored(client, headers, auditor):
    body = hook_request(service_request("72148"),
                        prefetch=t38_prefetch(condition("S32.010A", recorded=ago(400))))
    [card] = call(client, body, headers)["cards"]
    record = record_of(client, auditor, card["uuid"])
    assert "days_since_injury" not in record["input"]
    assert record["input"]["findings"] == []
    assert record["scenario"]["id"] == "lumbar.uncomplicated"
    assert card["summary"] == T38_SUMMARY


# --- conformance requests (../shared/conformance, replayed as published) ----------------------


@pytest.mark.parametrize("name", ["sandbox-pama-s1r1-ct-lumbar-low-back-pain.request.json",
                                  "argonaut-pama-scenario-01.request.json"])
def test_pama_scenario_1_under_2026_2_0(client, headers, auditor, name):
    data = call(client, conformance(name), headers)
    [card] = data["cards"]
    for actions in (data["systemActions"], data["extension"]["systemActions"]):
        assert rating(actions[0]) == "not-appropriate"
        ext = {e["url"]: e for e in actions[0]["resource"]["extension"]}
        assert ext[PAMA_CONSULT_ID]["valueUri"] == f"urn:uuid:{card['uuid']}"
    assert card["indicator"] == "warning"
    assert card["summary"].endswith(
        ": usually not appropriate on recorded data — confirm red flags")
    record = record_of(client, auditor, card["uuid"])
    assert record["appropriateness"] == "usually_not_appropriate"
    listed = not_assessed(record)
    assert "conditions were not available to the service" in listed["urinary_retention"]
    assert {"patient.age", "symptom_duration_weeks"} <= {a["field"]
                                                         for a in record["assumptions"]}
    first = card["detail"].split("\n")[0]
    assert first.startswith("**Confirm red flags before relying on this.**")
    assert "suggestions" not in card
    assert card["overrideReasons"][0]["code"] == "red-flag-not-in-record"


def test_non_spine_and_non_imaging_conformance_unchanged(app, client, headers):
    data = call(client, conformance("sandbox-pama-s1r3-mra-head-toothache.request.json"),
                headers)
    assert data["cards"] == [] and rating(data["systemActions"][0]) == "no-criteria-apply"
    response = client.post(SELECT, headers=headers,
                           json=conformance("inferno-crd-order-select-nonimaging.request.json"))
    assert response.get_json() == {"cards": []}
    assert count_decisions(app) == 0


# --- orders that never trigger (delta §8.5) ---------------------------------------------------


@pytest.mark.parametrize("cpt", ["72195", "72200", "72202"])
def test_si_joint_orders_get_no_card_and_no_action(app, client, headers, cpt):
    data = call(client, hook_request(service_request(cpt), prefetch=t38_prefetch()), headers)
    assert data == {"cards": []}
    assert count_decisions(app) == 0


def test_si_joint_order_next_to_a_spine_order(app, client, headers):
    body = hook_request(service_request("72195", rid="si"), service_request("72148", rid="l"),
                        hook="order-sign", prefetch=t38_prefetch())
    response = client.post("/cds-services/spine-mri-appropriateness-sign", json=body,
                           headers=headers)
    data = response.get_json()
    assert len(data["cards"]) == 1
    assert [a["resource"]["id"] for a in data["systemActions"]] == ["l"]
    assert count_decisions(app) == 1


# --- the two FHIR defects, end to end ---------------------------------------------------------


def test_onset_age_counts_in_the_duration_end_to_end(client, headers, auditor):
    # The onsetAge shape of HL7 FHIR R4 Condition/f202 on a back-pain Condition: a patient
    # born 52 years and 70 days before the decision, pain "at 52 years" = up to 10 weeks.
    birth = (DAY - timedelta(days=70)).replace(year=DAY.year - 52)
    pain = condition("M54.50", recorded=ago(2))
    pain["onsetAge"] = {"value": 52, "unit": "years", "system": UCUM, "code": "a"}
    body = hook_request(service_request("72148"), prefetch={
        "patient": patient(birth.isoformat()), "conditions": bundle(pain), "egfr": bundle()})
    [card] = call(client, body, headers)["cards"]
    record = record_of(client, auditor, card["uuid"])
    assert record["input"]["symptom_duration_weeks"] == 10.0  # not 0.3 from recordedDate


def si_egfr(value: float, unit: str | None, code: str | None) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if unit:
        quantity["unit"] = unit
    if code:
        quantity.update(system=UCUM, code=code)
    return {"resourceType": "Observation", "id": "egfr-1", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "62238-1"}]},
            "effectiveDateTime": ago(1), "valueQuantity": quantity}


def test_egfr_in_ml_per_second_reaches_the_renal_alert(client, headers, auditor):
    # T33-like: urinary retention, lumbar MRI with gadolinium, eGFR 0.42 mL/s/1.73 m² = 25.2.
    prefetch = {"patient": patient("1966-06-15"),
                "conditions": bundle(condition("R33.9", ICD10CM, onset=ago(1))),
                "egfr": bundle(si_egfr(0.42, "mL/s/1.73m2", "mL/s/{1.73_m2}"))}
    [card] = call(client, hook_request(service_request("72158"), prefetch=prefetch),
                  headers)["cards"]
    record = record_of(client, auditor, card["uuid"])
    assert record["input"]["egfr"] == 25.2
    assert "renal_gadolinium" in {a["code"] for a in record["safety"]["alerts"]}
    assert "converted from mL/s/{1.73_m2}" in card["detail"]


def test_egfr_in_an_unknown_unit_is_not_used_and_the_card_says_so(client, headers, auditor):
    prefetch = {"patient": patient("1966-06-15"),
                "conditions": bundle(condition("R33.9", ICD10CM, onset=ago(1))),
                "egfr": bundle(si_egfr(84, "mg/ml/1, 73m2", None))}  # Estonian example unit
    [card] = call(client, hook_request(service_request("72158"), prefetch=prefetch),
                  headers)["cards"]
    record = record_of(client, auditor, card["uuid"])
    assert "egfr" not in record["input"]
    assert "'mg/ml/1, 73m2' cannot be read as mL/min/1.73 m²" in card["detail"]


def test_t29_injured_child_is_not_covered(client, headers, auditor):
    # T29 over CDS Hooks: a 10-year-old after a fall yesterday (W19, onset 1 day ago).
    body = hook_request(service_request("72148"), prefetch={
        "patient": patient("2016-06-15"), "egfr": bundle(),
        "conditions": bundle(condition("W19.XXXA", onset=ago(1)))})
    data = call(client, body, headers)
    [card] = data["cards"]
    record = record_of(client, auditor, card["uuid"])
    assert record["input"]["days_since_injury"] == 1
    assert record["scenario"]["id"] == "lumbar.child_trauma_under_16"
    assert record["appropriateness"] == "not_covered"
    assert rating(data["systemActions"][0]) == "no-criteria-apply"
    [recommended] = [line for line in card["detail"].split("\n")
                     if line.startswith("**Recommended**")]
    assert "conservative care" not in recommended and "assessment" in recommended
