"""The CDS Hooks service over HTTP: discovery, service calls, cards, PAMA actions, repeats."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from referral_api.cds.cards import (
    PAMA_AUC_APPLIED,
    PAMA_CONSULT_ID,
    PAMA_EXTENSION,
    PAMA_QCDSM,
)
from tests.cds.builders import (
    CPT,
    PUBLIC_URL,
    SNOMED,
    bundle,
    condition,
    conformance,
    count_decisions,
    days_ago,
    egfr_observation,
    hook_request,
    patient,
    service_request,
    walk_for_empty,
)

SELECT = "/cds-services/spine-mri-appropriateness"
SIGN = "/cds-services/spine-mri-appropriateness-sign"


def call(client, body: dict[str, Any], headers: dict[str, str], path: str = SELECT):
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    assert walk_for_empty({k: v for k, v in data.items() if k != "cards"}) == []
    assert walk_for_empty(data["cards"]) == []
    return data


def extensions(action: dict[str, Any]) -> dict[str, Any]:
    return {e["url"]: e for e in action["resource"].get("extension", [])}


def rating(action: dict[str, Any]) -> str:
    return extensions(action)[PAMA_EXTENSION]["valueCodeableConcept"]["coding"][0]["code"]


def full_prefetch(*conditions: dict[str, Any], birth: str = "1980-06-15",
                  egfr: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"patient": patient(birth), "conditions": bundle(*conditions),
            "egfr": bundle(*(egfr or []))}


def record_of(client, auditor, decision_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/decisions/{decision_id}", headers=auditor)
    assert response.status_code == 200
    return response.get_json()


# --- discovery -----------------------------------------------------------------------------------


def test_discovery_is_public_and_names_both_services(cds_client):
    response = cds_client.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.get_json()["services"]}
    assert services["spine-mri-appropriateness"]["hook"] == "order-select"
    assert services["spine-mri-appropriateness-sign"]["hook"] == "order-sign"
    for service in services.values():
        assert service["title"] and service["description"] and service["usageRequirements"]
        assert service["prefetch"] == {
            "patient": "Patient/{{context.patientId}}",
            "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
            "egfr": "Observation?patient={{context.patientId}}&code=http://loinc.org|33914-3,"
                    "http://loinc.org|62238-1,http://loinc.org|98979-8,"
                    "http://loinc.org|77147-7,http://loinc.org|76633-7&_sort=-date&_count=1",
        }
    assert walk_for_empty(response.get_json()) == []


# --- conformance files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sandbox-pama-s1r1-ct-lumbar-low-back-pain.request.json",
                                  "argonaut-pama-scenario-01.request.json"])
def test_pama_ct_lumbar_low_back_pain_is_not_appropriate(cds_app, cds_client, evaluator,
                                                         auditor, name):
    body = conformance(name)
    data = call(cds_client, body, evaluator)
    assert len(data["cards"]) == 1
    card = data["cards"][0]
    for actions in (data["systemActions"], data["extension"]["systemActions"]):
        assert len(actions) == 1
        assert actions[0]["type"] == "update"
        assert rating(actions[0]) == "not-appropriate"
        assert extensions(actions[0])[PAMA_CONSULT_ID]["valueUri"] == f"urn:uuid:{card['uuid']}"
    record = record_of(cds_client, auditor, card["uuid"])
    assert record["appropriateness"] == "usually_not_appropriate"
    assert record["channel"] == "cds-hooks"
    assert record["hook_instance"] == body["hookInstance"]
    assert record["ordering_clinician"] == "Practitioner/123"
    assumed = {a["field"] for a in record["assumptions"]}
    assert {"patient.age", "symptom_duration_weeks", "findings"} <= assumed
    assert "**Assumed**" in card["detail"]
    assert card["indicator"] == "warning"
    assert "overrideReasons" in card
    assert "suggestions" not in card  # findings were assumed (no prefetch)


def test_pama_response_shape_matches_the_argonaut_example(tmp_path, clients_file, build_cds_app):
    app = build_cds_app(PUBLIC_URL=PUBLIC_URL, CDS_CLIENTS=str(clients_file),
                        PAMA_GCODE="G1011")
    client = app.test_client()
    key = app.extensions["referral_api"].keys.create(["evaluator"], "pama")[1]
    body = conformance("argonaut-pama-scenario-01.request.json")
    data = call(client, body, {"Authorization": f"Bearer {key}"})
    shape = conformance("argonaut-pama-scenario-01.response-shape.json")
    expected = shape["extension"]["systemActions"][0]
    got = data["extension"]["systemActions"][0]
    assert got["type"] == expected["type"] == "update"
    # The resource is the original ServiceRequest plus the extensions.
    original = body["context"]["draftOrders"]["entry"][0]["resource"]
    assert {k: v for k, v in got["resource"].items() if k != "extension"} == original
    assert {e["url"] for e in expected["resource"]["extension"]} <= set(extensions(got))
    assert extensions(got)[PAMA_QCDSM] == {"url": PAMA_QCDSM, "valueString": "G1011"}
    assert extensions(got)[PAMA_AUC_APPLIED]["valueUri"].startswith(
        f"{PUBLIC_URL}/v1/rulesets/")
    assert data["systemActions"] == data["extension"]["systemActions"]
    app.extensions["referral_api"].log.close()


def test_no_gcode_means_no_qcdsm_extension(cds_client, evaluator):
    data = call(cds_client, conformance("argonaut-pama-scenario-01.request.json"), evaluator)
    assert PAMA_QCDSM not in extensions(data["systemActions"][0])


def test_non_spine_imaging_gets_no_criteria_apply_and_no_card(cds_app, cds_client, evaluator):
    data = call(cds_client, conformance("sandbox-pama-s1r3-mra-head-toothache.request.json"),
                evaluator)
    assert data["cards"] == []
    action = data["systemActions"][0]
    assert rating(action) == "no-criteria-apply"
    assert extensions(action)[PAMA_CONSULT_ID]["valueUri"].startswith("urn:uuid:")
    assert count_decisions(cds_app) == 0


def test_non_imaging_order_select_gets_nothing(cds_app, cds_client, evaluator):
    body = conformance("inferno-crd-order-select-nonimaging.request.json")
    response = cds_client.post(SELECT, json=body, headers=evaluator)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}
    assert count_decisions(cds_app) == 0


# --- cards ----------------------------------------------------------------------------------------


def test_cauda_equina_mri_lumbar_is_critical_and_logged(cds_app, cds_client, evaluator, auditor):
    body = hook_request(service_request("72148"),
                        prefetch=full_prefetch(condition("G83.4", onset=days_ago(2))))
    data = call(cds_client, body, evaluator)
    card = data["cards"][0]
    assert card["indicator"] == "critical"
    assert len(card["summary"]) < 140
    assert "MRI lumbar spine without contrast" in card["summary"]
    assert "usually appropriate" in card["summary"]
    record = record_of(cds_client, auditor, card["uuid"])
    assert record["urgency"] == "emergent"
    assert record["scenario"]["id"] == "lumbar.cauda_equina"
    assert record["ordering_clinician"] == "Practitioner/dr-1"
    assert record["input"]["patient"]["reference"] != "pat-1"  # stored only as a keyed hash
    # The cauda equina diagnosis maps to the CES findings of the vocabulary in force (2026.2.0
    # adds altered bladder or bowel sensation, delta §3).
    assert set(record["input"]["findings"]) == {
        "saddle_anesthesia", "urinary_retention", "bowel_or_bladder_incontinence",
        "altered_bladder_or_bowel_sensation"}
    assert rating(data["systemActions"][0]) == "appropriate"
    assert card["source"]["label"] == f"spine-imaging {record['ruleset']['version']}"
    assert card["source"]["url"] == f"{PUBLIC_URL}/v1/rulesets/{record['ruleset']['version']}"
    assert card["source"]["topic"]["code"] == "lumbar.cauda_equina"


def test_repeat_hook_instance_returns_the_same_card_without_logging(cds_app, cds_client,
                                                                   evaluator):
    body = hook_request(service_request("72148"),
                        prefetch=full_prefetch(condition("M54.16", onset=days_ago(20))))
    first = call(cds_client, body, evaluator)
    assert count_decisions(cds_app) == 1
    second = call(cds_client, copy.deepcopy(body), evaluator, path=SELECT)
    assert second == first
    assert count_decisions(cds_app) == 1
    # The same order under a new hookInstance is a new decision.
    body["hookInstance"] = "another-instance"
    third = call(cds_client, body, evaluator)
    assert third["cards"][0]["uuid"] != first["cards"][0]["uuid"]
    assert count_decisions(cds_app) == 2


def test_link_prefills_the_form_with_derived_facts_only(cds_client, evaluator):
    body = hook_request(service_request("72148"), prefetch=full_prefetch(
        condition("M54.16", onset=days_ago(70)), egfr=[egfr_observation(45, days_ago(3))]))
    card = call(cds_client, body, evaluator)["cards"][0]
    link = card["links"][0]
    assert link["type"] == "absolute"
    parts = urlsplit(link["url"])
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL and parts.path == "/"
    params = parse_qsl(parts.query)
    assert ("region", "lumbar") in params
    assert ("requested_procedure", "mri_lumbar_without_contrast") in params
    assert ("findings", "radiculopathy") in params
    assert ("symptom_duration_weeks", "10") in params
    assert ("egfr", "45") in params
    assert ("sex", "female") in params
    assert any(k == "age" for k, _ in params)
    assert not any(v == "pat-1" for _, v in params)

    bare = call(cds_client, hook_request(service_request("72148")), evaluator)["cards"][0]
    bare_params = dict(parse_qsl(urlsplit(bare["links"][0]["url"]).query))
    assert "age" not in bare_params and "symptom_duration_weeks" not in bare_params


def test_link_uses_the_request_host_without_public_url(tmp_path, build_cds_app):
    app = build_cds_app()
    key = app.extensions["referral_api"].keys.create(["evaluator"], "host")[1]
    data = call(app.test_client(), hook_request(service_request("72148")),
                {"Authorization": f"Bearer {key}"})
    assert data["cards"][0]["links"][0]["url"].startswith("http://localhost/?")
    app.extensions["referral_api"].log.close()


@pytest.mark.ruleset_2026_1_0  # 2026.2.0 offers no suggestion while red flags are unassessed
def test_suggestion_replaces_order_only_when_findings_were_derived(cds_client, evaluator):
    cancer = condition("C50.911", onset=days_ago(400))
    body = hook_request(service_request("72131"), prefetch=full_prefetch(cancer))  # CT w/o
    card = call(cds_client, body, evaluator)["cards"][0]
    suggestion = card["suggestions"][0]
    assert card["selectionBehavior"] == "at-most-one"
    action = suggestion["actions"][0]
    assert action["type"] == "update"
    assert action["resource"]["id"] == "sr-1"
    assert action["resource"]["code"]["coding"][0] == {"system": CPT, "code": "72158"}
    assert "MRI lumbar spine without and with contrast" in suggestion["label"]

    no_conditions = hook_request(service_request("72131"), prefetch={"patient": patient()})
    card = call(cds_client, no_conditions, evaluator)["cards"][0]
    assert "suggestions" not in card and "selectionBehavior" not in card


def test_indicator_rule_across_outcomes(cds_client, evaluator, auditor):
    cases = [
        (service_request("72148"), [condition("G83.4", onset=days_ago(1))], "critical"),
        (service_request("72148"), [condition("M54.5", onset=days_ago(7))], "warning"),
        (service_request("72158"), [condition("C50.9", onset=days_ago(400))], "info"),
    ]
    for order, conditions, expected in cases:
        data = call(cds_client, hook_request(order, prefetch=full_prefetch(*conditions)),
                    evaluator)
        card = data["cards"][0]
        record = record_of(cds_client, auditor, card["uuid"])
        assert card["indicator"] == expected, record["appropriateness"]
        assert len(card["summary"]) < 140
        assert ("overrideReasons" in card) == (
            record["appropriateness"] == "usually_not_appropriate")


def test_pregnancy_and_dialysis_reach_the_safety_alerts(cds_client, evaluator, auditor):
    prefetch = full_prefetch(condition("C50.9", onset=days_ago(400)), condition("Z33.1"),
                             condition("46177005", SNOMED))
    card = call(cds_client, hook_request(service_request("72158"), prefetch=prefetch),
                evaluator)["cards"][0]
    record = record_of(cds_client, auditor, card["uuid"])
    assert set(record["input"]["contraindications"]) == {"pregnancy", "dialysis"}
    assert record["safety"]["status"] == "caution"
    assert "**Safety**" in card["detail"]


def test_several_orders_each_get_a_decision(cds_app, cds_client, evaluator):
    body = hook_request(service_request("72148", rid="a"), service_request("72141", rid="b"),
                        service_request("70544", rid="c"), hook="order-sign",
                        prefetch=full_prefetch(condition("M54.2", onset=days_ago(3))))
    data = call(cds_client, body, evaluator, path=SIGN)
    assert len(data["cards"]) == 2
    assert [a["resource"]["id"] for a in data["systemActions"]] == ["a", "b", "c"]
    assert count_decisions(cds_app) == 2


@pytest.mark.parametrize("prefetch", [
    None,
    {"patient": None, "conditions": None, "egfr": None},
    {"patient": {"resourceType": "Bundle"}, "conditions": {"resourceType": "Bundle",
                                                           "entry": []},
     "egfr": {"resourceType": "Bundle", "type": "searchset", "total": 0}},
    {"patient": {"resourceType": "OperationOutcome", "issue": []},
     "conditions": {"resourceType": "OperationOutcome"},
     "egfr": {"resourceType": "OperationOutcome"}},
], ids=["missing", "null", "empty-bundle", "operation-outcome"])
def test_prefetch_degradations_are_evaluated_with_assumptions(cds_client, evaluator, auditor,
                                                              prefetch):
    body = hook_request(service_request("72148"), prefetch=prefetch)
    if prefetch is None:
        body.pop("prefetch", None)
    card = call(cds_client, body, evaluator)["cards"][0]
    record = record_of(cds_client, auditor, card["uuid"])
    assumed = {a["field"] for a in record["assumptions"]}
    assert {"patient.age", "symptom_duration_weeks", "findings", "egfr"} <= assumed
    assert "screen" in card["detail"]


def test_prefetch_itself_null(cds_client, evaluator):
    body = hook_request(service_request("72148"))
    body["prefetch"] = None
    assert call(cds_client, body, evaluator)["cards"]


# --- request validation -------------------------------------------------------------------------


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda b: b.pop("hook"), "hook"),
    (lambda b: b.update(hook="order-sign"), "hook"),
    (lambda b: b.pop("hookInstance"), "hookInstance"),
    (lambda b: b.update(context="x"), "context"),
    (lambda b: b["context"].pop("draftOrders"), "context.draftOrders"),
    (lambda b: b["context"].update(draftOrders={"resourceType": "ServiceRequest"}),
     "context.draftOrders"),
    (lambda b: b["context"].update(draftOrders={"resourceType": "Bundle", "entry": {}}),
     "context.draftOrders.entry"),
    (lambda b: b["context"].pop("patientId"), "context.patientId"),
    (lambda b: b["context"].update(userId=7), "context.userId"),
    (lambda b: b["context"].update(selections="ServiceRequest/sr-1"), "context.selections"),
])
def test_malformed_requests_are_400_with_a_reason(cds_client, evaluator, mutate, field):
    body = hook_request(service_request("72148"))
    mutate(body)
    response = cds_client.post(SELECT, json=body, headers=evaluator)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert field in problem["errors"]
    assert field.split(".")[-1] in problem["detail"]


def test_order_select_request_on_the_sign_service_is_400(cds_client, evaluator):
    response = cds_client.post(SIGN, json=hook_request(service_request()), headers=evaluator)
    assert response.status_code == 400
    assert "order-sign" in response.get_json()["errors"]["hook"][0]


def test_unknown_service_is_404(cds_client, evaluator):
    response = cds_client.post("/cds-services/nope", json=hook_request(service_request()),
                               headers=evaluator)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_body_must_be_json(cds_client, evaluator):
    response = cds_client.post(SELECT, data="hook=order-select", headers=evaluator,
                               content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    response = cds_client.post(SELECT, data="{not json", headers=evaluator,
                               content_type="application/json")
    assert response.status_code == 400
    response = cds_client.post(SELECT, data="[]", headers=evaluator,
                               content_type="application/json")
    assert response.status_code == 400


def test_errors_do_not_echo_patient_data(cds_client, evaluator):
    body = hook_request(service_request("72148"))
    body["context"]["patientId"] = "MRN-SECRET-" + "9" * 200
    response = cds_client.post(SELECT, json=body, headers=evaluator)
    assert response.status_code == 400
    assert "MRN-SECRET" not in response.get_data(as_text=True)


def test_response_is_json_and_not_cached(cds_client, evaluator):
    response = cds_client.post(SELECT, json=hook_request(service_request()), headers=evaluator)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    json.loads(response.get_data(as_text=True))


@pytest.mark.ruleset_2026_1_0
def test_under_2026_1_0_the_card_is_the_v1_card(cds_client, evaluator, auditor):
    # No red flag is listed as not assessed and the summary has no "on recorded data".
    data = call(cds_client, conformance("sandbox-pama-s1r1-ct-lumbar-low-back-pain.request.json"),
                evaluator)
    card = data["cards"][0]
    record = record_of(cds_client, auditor, card["uuid"])
    assert record["ruleset"]["version"] == "2026.1.0"
    assert card["summary"] == "CT lumbar spine without and with contrast: usually not appropriate"
    assert not [a for a in record["assumptions"] if a["assumed"] == "not_assessed"]
    assert all(r["code"] != "red-flag-not-in-record" for r in card["overrideReasons"])
    assert "confirm" not in card["links"][0]["url"]
    assert rating(data["systemActions"][0]) == "not-appropriate"
