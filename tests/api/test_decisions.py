"""POST /v1/decisions and GET /v1/decisions/{id}: the contract's fields and status codes."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.factories import auth, lumbar_request

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body


def test_cauda_equina_is_emergent_mri(post_decision) -> None:
    response = post_decision(lumbar_request(findings=["urinary_retention"]))
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/v1/decisions/{body['decision_id']}"
    assert body["channel"] == "api"
    assert body["scenario"]["id"] == "lumbar.cauda_equina"
    assert body["appropriateness"] == "usually_appropriate"
    assert body["urgency"] == "emergent"
    assert body["requested_procedure"] == {"code": "mri_lumbar_without_contrast",
                                           "cpt": ["72148"], "rating": "usually_appropriate"}
    assert body["ruleset"]["id"] == "spine-imaging"
    assert len(body["ruleset"]["sha256"]) == 64
    assert body["assumptions"] == []
    assert body["created_at"].endswith("Z")
    assert list(body) == ["decision_id", "created_at", "channel", "region",
                          "requested_procedure", "appropriateness", "urgency", "scenario",
                          "also_matched", "recommended_procedures", "reasons", "safety",
                          "would_change_if", "assumptions", "ruleset",
                          "contributing_scenarios", "patient_information"]
    assert body["ruleset"]["version"] == "2026.2.0"
    assert body["recommended_procedures"][0]["step"] == 1


def test_2026_1_0_decisions_keep_their_shape(app_2026_1_0) -> None:
    from referral_api.store.interface import KeyStore

    store: KeyStore = app_2026_1_0.extensions["referral_api"].keys
    key = store.create(["evaluator"], "pinned")[1]
    response = app_2026_1_0.test_client().post(
        "/v1/decisions", json=lumbar_request(findings=["urinary_retention"]), headers=auth(key))
    body = response.get_json()
    assert body["ruleset"]["version"] == "2026.1.0"
    assert list(body) == ["decision_id", "created_at", "channel", "region",
                          "requested_procedure", "appropriateness", "urgency", "scenario",
                          "also_matched", "recommended_procedures", "reasons", "safety",
                          "would_change_if", "assumptions", "ruleset"]
    assert "step" not in body["recommended_procedures"][0]


def test_uncomplicated_low_back_pain_is_not_appropriate(post_decision) -> None:
    body = post_decision(lumbar_request()).get_json()
    assert body["scenario"]["id"] == "lumbar.uncomplicated"
    assert body["appropriateness"] == "usually_not_appropriate"
    assert body["urgency"] == "none"
    assert body["recommended_procedures"] == []
    assert any(item["finding"] == "urinary_retention" for item in body["would_change_if"])


def test_record_is_logged_with_hashed_patient(client, post_decision, auditor_headers) -> None:
    created = post_decision(lumbar_request(ordering_clinician="dr-who")).get_json()
    response = client.get(f"/v1/decisions/{created['decision_id']}", headers=auditor_headers)
    assert response.status_code == 200
    record = response.get_json()
    for name, value in created.items():
        assert record[name] == value
    assert record["client"] == "test-evaluator"
    assert record["ordering_clinician"] == "dr-who"
    assert record["engine_version"]
    assert record["latency_ms"] >= 0
    assert record["feedback"] == []
    assert set(record["chain"]) == {"seq", "prev_hash", "hash"}
    reference = record["input"]["patient"]["reference"]
    assert "MRN-0001" not in json.dumps(record)
    assert reference.startswith("hmac-sha256:")


def test_unknown_decision_is_404(client, auditor_headers) -> None:
    assert_problem(client.get(f"/v1/decisions/{uuid.uuid4()}", headers=auditor_headers), 404)
    assert_problem(client.get("/v1/decisions/not-a-uuid", headers=auditor_headers), 404)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"patient": {"age": 130}}, "patient.age"),
        ({"patient": {"age": "45"}}, "patient.age"),
        ({"patient": {"age": 45, "sex": "x"}}, "patient.sex"),
        ({"region": "sacral"}, "region"),
        ({"symptom_duration_weeks": -1}, "symptom_duration_weeks"),
        ({"symptom_duration_weeks": "two"}, "symptom_duration_weeks"),
        ({"findings": ["urinary_retention", "dragon_bite"]}, "findings.1"),
        ({"contraindications": ["nope"]}, "contraindications.0"),
        ({"findings": ["fever"] * 65}, "findings"),
        ({"requested_procedure": "mri_cervical_without_contrast"}, "requested_procedure"),
        ({"requested_procedure": "pet_scan"}, "requested_procedure"),
        ({"egfr": 500}, "egfr"),
        ({"intervention_candidate": "yes"}, "intervention_candidate"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_values_are_422_naming_the_field(post_decision, changes, field) -> None:
    body = assert_problem(post_decision(lumbar_request(**changes)), 422)
    assert field in body["errors"], body


def test_missing_required_fields(post_decision) -> None:
    body = assert_problem(post_decision({"findings": []}), 422)
    assert {"patient", "region", "symptom_duration_weeks"} <= body["errors"].keys()


def test_unknown_code_is_named_and_nothing_logged(app, post_decision) -> None:
    body = assert_problem(post_decision(lumbar_request(findings=["dragon_bite"])), 422)
    assert "dragon_bite" in json.dumps(body["errors"])
    assert app.extensions["referral_api"].log.verify()["decisions"]["checked"] == 0


def test_malformed_json_is_400(client, evaluator_headers) -> None:
    response = client.post("/v1/decisions", data="{not json", headers={
        **evaluator_headers, "Content-Type": "application/json"})
    assert_problem(response, 400)


def test_json_array_body_is_422(client, evaluator_headers) -> None:
    assert_problem(client.post("/v1/decisions", json=[1, 2], headers=evaluator_headers), 422)


def test_not_json_is_415(client, evaluator_headers) -> None:
    response = client.post("/v1/decisions", data="age=4", headers={
        **evaluator_headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(response, 415)


def test_body_over_64_kib_is_413(client, evaluator_headers) -> None:
    big = json.dumps(lumbar_request(ordering_clinician="x" * (70 * 1024)))
    response = client.post("/v1/decisions", data=big, headers={
        **evaluator_headers, "Content-Type": "application/json"})
    assert_problem(response, 413)


def test_deeply_nested_json_is_400(client, evaluator_headers) -> None:
    nested = "[" * 200 + "]" * 200
    response = client.post("/v1/decisions", data=nested, headers={
        **evaluator_headers, "Content-Type": "application/json"})
    assert_problem(response, 400)


def test_missing_credential_is_401(client) -> None:
    body = assert_problem(client.post("/v1/decisions", json=lumbar_request()), 401)
    assert "detail" in body


def test_unknown_key_is_401(client) -> None:
    assert_problem(client.post("/v1/decisions", json=lumbar_request(),
                               headers=auth("rk_000000000000_nope")), 401)


def test_x_api_key_header_is_accepted(client, keys) -> None:
    response = client.post("/v1/decisions", json=lumbar_request(),
                           headers={"X-API-Key": keys["evaluator"]})
    assert response.status_code == 201


def test_wrong_role_is_403(client, keys) -> None:
    assert_problem(client.post("/v1/decisions", json=lumbar_request(),
                               headers=auth(keys["auditor"])), 403)
    assert_problem(client.get(f"/v1/decisions/{uuid.uuid4()}",
                              headers=auth(keys["evaluator"])), 403)


def test_admin_may_do_everything(client, keys) -> None:
    response = client.post("/v1/decisions", json=lumbar_request(), headers=auth(keys["admin"]))
    assert response.status_code == 201


def test_revoked_key_is_401(app, client, keys) -> None:
    store = app.extensions["referral_api"].keys
    key_id = next(k.key_id for k in store.list_keys() if k.label == "test-evaluator")
    assert store.revoke(key_id)  # revoke() drops this process's cached row at once
    assert_problem(client.post("/v1/decisions", json=lumbar_request(),
                               headers=auth(keys["evaluator"])), 401)


def test_idempotency_key_replays_original(app, post_decision) -> None:
    first = post_decision(lumbar_request(), **{"Idempotency-Key": "abc-1"})
    again = post_decision(lumbar_request(), **{"Idempotency-Key": "abc-1"})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.get_json() == first.get_json()
    assert app.extensions["referral_api"].log.verify()["decisions"]["checked"] == 1
    conflict = post_decision(lumbar_request(symptom_duration_weeks=9),
                             **{"Idempotency-Key": "abc-1"})
    assert_problem(conflict, 422)
    assert app.extensions["referral_api"].log.verify()["decisions"]["checked"] == 1


def test_request_id_echoed_or_created(client, evaluator_headers) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert given.headers["X-Request-ID"] == "req-123"
    made = client.post("/v1/decisions", json={}, headers=evaluator_headers)
    assert uuid.UUID(made.headers["X-Request-ID"])


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_decisions_cannot_be_changed(client, post_decision, admin_headers, method) -> None:
    created = post_decision(lumbar_request()).get_json()
    call = getattr(client, method)
    assert_problem(call(f"/v1/decisions/{created['decision_id']}", headers=admin_headers), 405)
    assert_problem(call("/v1/decisions", headers=admin_headers), 405)


def test_unknown_path_is_problem_404(client) -> None:
    assert_problem(client.get("/v2/nothing"), 404)


def test_log_unavailable_is_503_and_nothing_returned(app, post_decision, monkeypatch) -> None:
    from referral_api.store.interface import LogUnavailable

    log = app.extensions["referral_api"].log

    def refuse(*_, **__):
        raise LogUnavailable("disk full")

    monkeypatch.setattr(log, "append_many", refuse)
    response = post_decision(lumbar_request(findings=["urinary_retention"]))
    body = assert_problem(response, 503)
    assert "decision_id" not in body
    assert "urinary" not in response.get_data(as_text=True)


def test_idempotency_keys_belong_to_one_credential(app, client) -> None:
    store = app.extensions["referral_api"].keys
    first = store.create(["evaluator"], "shared-label")[1]
    second = store.create(["evaluator"], "shared-label")[1]
    one = client.post("/v1/decisions", json=lumbar_request(),
                      headers={**auth(first), "Idempotency-Key": "order-1"})
    other = client.post("/v1/decisions", json=lumbar_request(),
                        headers={**auth(second), "Idempotency-Key": "order-1"})
    assert one.status_code == other.status_code == 201
    assert one.get_json()["decision_id"] != other.get_json()["decision_id"]
