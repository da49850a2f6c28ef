"""CDS Hooks client authentication (API key or JWT), feedback, and CORS, over HTTP."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.cds.builders import (
    EHR_ORIGIN,
    EXAMPLE_ISSUER,
    PUBLIC_URL,
    bundle,
    condition,
    conformance,
    days_ago,
    hook_request,
    mint,
    patient,
    service_request,
)

SELECT = "/cds-services/spine-mri-appropriateness"
FEEDBACK = "/cds-services/spine-mri-appropriateness/feedback"
AUD = PUBLIC_URL + SELECT


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- authentication ------------------------------------------------------------------------------


def test_minted_example_token_is_accepted_and_named_as_client(cds_client, example_private_key,
                                                              auditor):
    response = cds_client.post(SELECT, json=hook_request(service_request()),
                               headers=bearer(mint(example_private_key, AUD)))
    assert response.status_code == 200
    card = response.get_json()["cards"][0]
    record = cds_client.get(f"/v1/decisions/{card['uuid']}", headers=auditor).get_json()
    assert record["client"] == EXAMPLE_ISSUER


def test_spec_example_token_is_401_expired(cds_client):
    response = cds_client.post(SELECT, json=hook_request(service_request()),
                               headers=bearer(conformance("cds-hooks-2.0.1-example.jwt")))
    assert_401(response)
    assert "expired" in response.get_json()["detail"]


def _alg_none(_key) -> str:
    return jwt.encode({"iss": EXAMPLE_ISSUER, "aud": AUD, "exp": int(time.time()) + 60,
                       "iat": int(time.time()), "jti": "n"}, None, algorithm="none")


def _hs256(_key) -> str:
    return jwt.encode({"iss": EXAMPLE_ISSUER, "aud": AUD, "exp": int(time.time()) + 60,
                       "iat": int(time.time()), "jti": "h"}, "s" * 48, algorithm="HS256")


@pytest.mark.parametrize("make_token", [
    _alg_none,
    _hs256,
    lambda key: mint(key, PUBLIC_URL + "/cds-services/spine-mri-appropriateness-sign"),
    lambda key: mint(key, AUD, issuer="https://unknown.example.com/"),
    lambda key: mint(ec.generate_private_key(ec.SECP384R1()), AUD),
    lambda key: mint(key, AUD, lifetime=-100, iat=int(time.time()) - 400),
], ids=["alg-none", "hs256", "wrong-aud", "unknown-issuer", "wrong-key", "expired"])
def test_bad_tokens_are_401(cds_client, example_private_key, make_token):
    response = cds_client.post(SELECT, json=hook_request(service_request()),
                               headers=bearer(make_token(example_private_key)))
    assert_401(response)


def test_replayed_jti_is_401(cds_client, example_private_key):
    token = mint(example_private_key, AUD)
    body = hook_request(service_request())
    assert cds_client.post(SELECT, json=body, headers=bearer(token)).status_code == 200
    assert_401(cds_client.post(SELECT, json=body, headers=bearer(token)))


def test_audience_is_the_url_as_received_without_public_url(tmp_path, clients_file,
                                                            example_private_key, build_cds_app):
    app = build_cds_app(CDS_CLIENTS=str(clients_file))
    client = app.test_client()
    body = hook_request(service_request())
    good = mint(example_private_key, "http://localhost" + SELECT)
    assert client.post(SELECT, json=body, headers=bearer(good)).status_code == 200
    assert_401(client.post(SELECT, json=body, headers=bearer(mint(example_private_key, AUD))))
    app.extensions["referral_api"].log.close()


def test_jwt_refused_when_no_clients_file(tmp_path, example_private_key, build_cds_app):
    app = build_cds_app(PUBLIC_URL=PUBLIC_URL)
    response = app.test_client().post(SELECT, json=hook_request(service_request()),
                                      headers=bearer(mint(example_private_key, AUD)))
    assert_401(response)
    app.extensions["referral_api"].log.close()


def test_api_keys(cds_client, cds_keys):
    body = hook_request(service_request())
    assert_401(cds_client.post(SELECT, json=body))
    assert_401(cds_client.post(SELECT, json=body, headers=bearer("rk_nope_nope")))
    assert cds_client.post(SELECT, json=body, headers=cds_keys["auditor"]).status_code == 403
    assert cds_client.post(SELECT, json=body, headers=cds_keys["evaluator"]).status_code == 200
    key = cds_keys["evaluator"]["Authorization"][7:]
    assert cds_client.post(SELECT, json=body, headers={"X-API-Key": key}).status_code == 200


def test_feedback_needs_a_credential(cds_client, example_private_key):
    body = {"feedback": [{"card": "x", "outcome": "accepted",
                          "outcomeTimestamp": "2026-11-23T18:00:00Z"}]}
    assert_401(cds_client.post(FEEDBACK, json=body))
    token = mint(example_private_key, PUBLIC_URL + FEEDBACK)
    # Past authentication, the unknown card is what fails.
    assert cds_client.post(FEEDBACK, json=body, headers=bearer(token)).status_code == 404
    # A token minted for the service URL is not valid for the feedback URL.
    assert_401(cds_client.post(FEEDBACK, json=body,
                               headers=bearer(mint(example_private_key, AUD))))


# --- feedback -------------------------------------------------------------------------------------


def _card(client, headers, **prefetch) -> dict:
    body = hook_request(service_request("72131"), prefetch=prefetch or {
        "patient": patient(), "conditions": bundle(condition("C50.9", onset=days_ago(400)))})
    return client.post(SELECT, json=body, headers=headers).get_json()["cards"][0]


@pytest.mark.ruleset_2026_1_0  # a card with a suggestion: 2026.2.0 rarely offers one (§10.5)
def test_feedback_round_trip(cds_client, evaluator, auditor):
    card = _card(cds_client, evaluator)
    suggestion_id = card["suggestions"][0]["uuid"]
    accepted = {"card": card["uuid"], "outcome": "accepted",
                "acceptedSuggestions": [{"id": suggestion_id}],
                "outcomeTimestamp": "2026-11-23T18:00:00Z"}
    response = cds_client.post(FEEDBACK, json={"feedback": [accepted]}, headers=evaluator)
    assert response.status_code == 200
    overridden = {"card": card["uuid"], "outcome": "overridden",
                  "overrideReason": {"reason": {"system": "urn:referral-api:cds:override-reason",
                                                "code": "specialist-request"},
                                     "userComment": "Spine surgeon asked"},
                  "outcomeTimestamp": "2026-11-23T18:05:00+01:00"}
    response = cds_client.post(FEEDBACK, json={"feedback": [overridden]}, headers=evaluator)
    assert response.status_code == 200
    record = cds_client.get(f"/v1/decisions/{card['uuid']}", headers=auditor).get_json()
    assert [f["outcome"] for f in record["feedback"]] == ["accepted", "overridden"]
    assert record["feedback"][0]["accepted_suggestions"] == [{"id": suggestion_id}]
    assert record["feedback"][1]["override_reason"]["userComment"] == "Spine surgeon asked"
    assert record["feedback"][1]["outcome_timestamp"] == "2026-11-23T17:05:00.000Z"


def test_feedback_unknown_card_is_404_and_nothing_is_appended(cds_client, evaluator, auditor):
    card = _card(cds_client, evaluator)
    stamp = "2026-11-23T18:00:00Z"
    body = {"feedback": [
        {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": stamp},
        {"card": "00000000-0000-4000-8000-000000000000", "outcome": "accepted",
         "outcomeTimestamp": stamp}]}
    response = cds_client.post(FEEDBACK, json=body, headers=evaluator)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    record = cds_client.get(f"/v1/decisions/{card['uuid']}", headers=auditor).get_json()
    assert record["feedback"] == []
    response = cds_client.post(FEEDBACK, json={"feedback": [
        {"card": "not-a-uuid", "outcome": "accepted", "outcomeTimestamp": stamp}]},
        headers=evaluator)
    assert response.status_code == 404


def test_feedback_on_an_api_decision_is_404(cds_client, evaluator):
    api = cds_client.post("/v1/decisions", headers=evaluator, json={
        "patient": {"age": 40}, "region": "lumbar", "symptom_duration_weeks": 2})
    assert api.status_code == 201
    response = cds_client.post(FEEDBACK, headers=evaluator, json={"feedback": [
        {"card": api.get_json()["decision_id"], "outcome": "accepted",
         "outcomeTimestamp": "2026-11-23T18:00:00Z"}]})
    assert response.status_code == 404


@pytest.mark.parametrize("item", [
    {"outcome": "accepted", "outcomeTimestamp": "2026-11-23T18:00:00Z"},
    {"card": "c", "outcome": "ignored", "outcomeTimestamp": "2026-11-23T18:00:00Z"},
    {"card": "c", "outcome": "accepted"},
    {"card": "c", "outcome": "accepted", "outcomeTimestamp": "yesterday"},
    {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-23T18:00:00Z",
     "overrideReason": {"userComment": "x"}},
    {"card": "c", "outcome": "overridden", "outcomeTimestamp": "2026-11-23T18:00:00Z",
     "overrideReason": {"reason": "specialist"}},
    {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-23T18:00:00Z",
     "acceptedSuggestions": ["s"]},
])
def test_malformed_feedback_is_400(cds_client, evaluator, item):
    response = cds_client.post(FEEDBACK, json={"feedback": [item]}, headers=evaluator)
    assert response.status_code == 400
    assert response.get_json()["errors"]


def test_feedback_body_must_hold_a_list(cds_client, evaluator):
    for body in ({}, {"feedback": []}, {"feedback": {}}, []):
        assert cds_client.post(FEEDBACK, json=body, headers=evaluator).status_code == 400


def test_feedback_unknown_service_is_404(cds_client, evaluator):
    response = cds_client.post("/cds-services/nope/feedback", json={"feedback": []},
                               headers=evaluator)
    assert response.status_code == 404


# --- CORS -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/cds-services", SELECT, FEEDBACK])
def test_preflight_is_public_and_allows_the_configured_origin(cds_client, path):
    response = cds_client.options(path, headers={
        "Origin": EHR_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == EHR_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "Origin" in response.headers["Vary"]


def test_cors_headers_on_responses_and_errors(cds_client, evaluator):
    headers = {"Origin": EHR_ORIGIN}
    assert cds_client.get("/cds-services", headers=headers).headers[
        "Access-Control-Allow-Origin"] == EHR_ORIGIN
    ok = cds_client.post(SELECT, json=hook_request(service_request()),
                         headers={**headers, **evaluator})
    assert ok.headers["Access-Control-Allow-Origin"] == EHR_ORIGIN
    denied = cds_client.post(SELECT, json=hook_request(service_request()), headers=headers)
    assert denied.status_code == 401
    assert denied.headers["Access-Control-Allow-Origin"] == EHR_ORIGIN


def test_other_origins_get_no_cors_grant(cds_client):
    response = cds_client.options(SELECT, headers={"Origin": "https://evil.example.com",
                                                   "Access-Control-Request-Method": "POST"})
    assert response.status_code == 204
    assert "Access-Control-Allow-Origin" not in response.headers
    response = cds_client.get("/cds-services", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_cors_origins_configured_means_no_grant(tmp_path, build_cds_app):
    app = build_cds_app()
    response = app.test_client().get("/cds-services", headers={"Origin": EHR_ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers
    app.extensions["referral_api"].log.close()


def test_repeated_jwt_failures_are_throttled_only_after_20(cds_client):
    body = hook_request(service_request())
    expired = bearer(conformance("cds-hooks-2.0.1-example.jwt"))
    for _ in range(20):
        assert_401(cds_client.post(SELECT, json=body, headers=expired))
    response = cds_client.post(SELECT, json=body, headers=expired)
    assert response.status_code == 429
    assert response.headers["Retry-After"]
