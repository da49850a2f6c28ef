"""Idempotency keys are handled once, in the decision path: every channel gets the same body
hash, and a reused key with another body has one answer (422) wherever it is raised."""

from __future__ import annotations

import inspect
import json

import pytest

from referral_api.decide import DecisionService
from referral_api.store.interface import IdempotencyConflict
from tests.factories import lumbar_request

PROBLEM = "application/problem+json"
KEY = "Idempotency-Key"


@pytest.fixture
def svc(app):
    return app.extensions["referral_api"]


def test_the_decision_path_hashes_the_body_itself(svc) -> None:
    """No channel passes a body hash: decide() derives it from the validated request."""
    request = svc.request_schema.load(lumbar_request())
    first, created = svc.decisions.decide(request, channel="form", client="c",
                                          idempotency_key="k", idempotency_scope="s")
    again, created_again = svc.decisions.decide(dict(request), channel="form", client="c",
                                                idempotency_key="k", idempotency_scope="s")
    assert created and not created_again
    assert again["decision_id"] == first["decision_id"]
    other = svc.request_schema.load(lumbar_request(symptom_duration_weeks=3))
    with pytest.raises(IdempotencyConflict):
        svc.decisions.decide(other, channel="form", client="c", idempotency_key="k",
                             idempotency_scope="s")
    assert "body_sha256" not in inspect.signature(DecisionService.decide).parameters


def test_the_same_body_written_differently_is_the_same_request(client, evaluator_headers) -> None:
    """Key order and spacing are not part of the body's identity (it is hashed once, after
    validation, in canonical form)."""
    body = lumbar_request()
    compact = json.dumps(body, separators=(",", ":"))
    spaced = json.dumps(dict(reversed(list(body.items()))), indent=2)
    headers = {**evaluator_headers, KEY: "same-1", "Content-Type": "application/json"}
    first = client.post("/v1/decisions", data=compact, headers=headers)
    again = client.post("/v1/decisions", data=spaced, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["decision_id"] == first.get_json()["decision_id"]


def test_a_reused_key_has_one_answer_wherever_it_is_raised(app, client, post_decision) -> None:
    """Before, create_decision and the app each turned the conflict into a 422, with two
    different bodies."""

    def elsewhere() -> None:
        raise IdempotencyConflict("raised outside POST /v1/decisions")

    app.add_url_rule("/raise-idempotency-conflict", "raise_conflict", elsewhere)
    assert post_decision(lumbar_request(), **{KEY: "k-1"}).status_code == 201
    from_api = post_decision(lumbar_request(symptom_duration_weeks=9), **{KEY: "k-1"})
    from_elsewhere = client.get("/raise-idempotency-conflict")
    for response in (from_api, from_elsewhere):
        assert response.status_code == 422
        assert response.mimetype == PROBLEM
    body = from_api.get_json()
    assert body == from_elsewhere.get_json()
    assert body["errors"] == {KEY: ["already used with a different body"]}
