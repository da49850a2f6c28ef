"""GET /metrics (issue 14 item 1): every family moves, nothing private in a label."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from referral_api.store.sqlite.log import LogUnavailable
from tests.factories import lumbar_request

PATIENT = "MRN-METRICS-5"
BAD_KEY = "rk_000000000000_" + "A" * 43


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """``(sample name, sorted labels) -> value`` of an exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(found: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= set(ls))


def test_every_family_moves_after_a_few_requests(app, client, keys, monkeypatch) -> None:
    created = client.post("/v1/decisions", headers=bearer(keys["evaluator"]),
                          json=lumbar_request(patient={"age": 61, "reference": PATIENT}))
    assert created.status_code == 201
    decision_id = created.get_json()["decision_id"]
    assert client.get(f"/v1/decisions/{decision_id}",
                      headers=bearer(keys["auditor"])).status_code == 200
    svc = app.extensions["referral_api"]
    svc.limiter.limit = 2
    assert [client.get("/v1/rulesets", headers=bearer(BAD_KEY)).status_code
            for _ in range(3)] == [401, 401, 429]

    def down(*_: Any, **__: Any) -> Any:
        raise LogUnavailable("disk I/O error")

    monkeypatch.setattr(svc.log, "append_many", down)
    assert client.post("/v1/decisions", headers=bearer(keys["evaluator"]),
                       json=lumbar_request()).status_code == 503
    monkeypatch.undo()

    response = client.get("/metrics", headers=bearer(keys["admin"]))
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    text = response.get_data(as_text=True)
    found = samples(text)
    assert total(found, "referral_http_requests_total", route="/v1/decisions",
                 method="POST", status="201") == 1
    assert total(found, "referral_http_requests_total",
                 route="/v1/decisions/<decision_id>", status="200") == 1
    assert total(found, "referral_http_request_duration_seconds_count",
                 route="/v1/rulesets", status="429") == 1
    assert total(found, "referral_decisions_total", channel="api", appropriateness=created
                 .get_json()["appropriateness"], safety_status="clear") == 1
    assert total(found, "referral_decision_log_append_seconds_count") == 1
    assert total(found, "referral_decision_log_batch_size_sum") == 1
    assert total(found, "referral_decision_log_unavailable_total") == 1
    assert total(found, "referral_auth_failures_total", reason="unknown_key") == 2
    assert total(found, "referral_auth_throttled_total", reason="unknown_key") == 1
    in_force = svc.registry.in_force(svc.settings.clock())
    assert total(found, "referral_ruleset_info", version=in_force.version,
                 sha256=in_force.sha256) == 1
    assert total(found, "referral_chain_head_seq", chain="decisions") == 1
    assert total(found, "referral_decision_log_up") == 1
    # No patient data, record id or credential in any label value.
    for secret in (PATIENT, decision_id, BAD_KEY, *keys.values()):
        assert secret not in text


def test_metrics_need_the_admin_key_unless_public(client, keys, make_app) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer(keys["auditor"])).status_code == 403
    assert client.get("/metrics", headers=bearer(keys["admin"])).status_code == 200
    public = make_app(METRICS_PUBLIC="1")
    assert public.test_client().get("/metrics").status_code == 200


def test_an_unmatched_path_is_not_a_label(app, client, keys) -> None:
    assert client.get(f"/v1/{PATIENT}").status_code == 404
    text = client.get("/metrics", headers=bearer(keys["admin"])).get_data(as_text=True)
    assert PATIENT not in text
    assert total(samples(text), "referral_http_requests_total", route="unmatched",
                 status="404") == 1


def test_the_log_being_down_still_answers_the_scrape(app, client, keys, monkeypatch) -> None:
    svc = app.extensions["referral_api"]
    key = keys["admin"]
    assert client.get("/metrics", headers=bearer(key)).status_code == 200  # key cached

    def down() -> dict:
        raise LogUnavailable("disk I/O error")

    monkeypatch.setattr(svc.log, "head", down)
    response = client.get("/metrics", headers=bearer(key))
    assert response.status_code == 200
    assert total(samples(response.get_data(as_text=True)), "referral_decision_log_up") == 0
