"""Public endpoints, rule sets, vocabulary and the OpenAPI document."""

from __future__ import annotations

from tests.factories import auth


def test_health_and_ready(client) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["status"] == "ready"
    assert body["ruleset_in_force"] == "2026.2.0"


def test_ready_follows_the_pinned_clock(app_2026_1_0) -> None:
    body = app_2026_1_0.test_client().get("/readyz").get_json()
    assert body["ruleset_in_force"] == "2026.1.0"


def test_ready_is_503_when_database_unwritable(make_app, tmp_path) -> None:
    app = make_app(DATABASE=str(tmp_path / "missing-dir" / "x.sqlite"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unavailable"


def test_security_headers(client) -> None:
    response = client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_openapi_document_is_public_and_generated(client) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    body_schema = doc["components"]["schemas"]["DecisionRequest"]
    assert {"patient", "region", "symptom_duration_weeks"} <= set(body_schema["required"])
    finding_enum = body_schema["properties"]["findings"]["items"]["enum"]
    assert "saddle_anesthesia" in finding_enum
    assert "/v1/decisions" in doc["paths"]


def test_rulesets(client, keys) -> None:
    listing = client.get("/v1/rulesets", headers=auth(keys["evaluator"])).get_json()
    assert listing["in_force"] == "2026.2.0"
    (current,) = [r for r in listing["rulesets"] if r["version"] == "2026.2.0"]
    assert current["status"] == "active"
    assert current["in_force"] is True
    assert current["effective_from"] == "2026-12-01"
    (old,) = [r for r in listing["rulesets"] if r["version"] == "2026.1.0"]
    assert old["in_force"] is False
    one = client.get("/v1/rulesets/2026.1.0", headers=auth(keys["auditor"]))
    assert one.status_code == 200
    assert client.get("/v1/rulesets/1999.0.0", headers=auth(keys["auditor"])).status_code == 404


def test_vocabulary(client, keys) -> None:
    response = client.get("/v1/vocabulary", headers=auth(keys["evaluator"]))
    assert response.status_code == 200
    assert "saddle_anesthesia" in response.get_data(as_text=True)
    assert client.get("/v1/vocabulary", headers=auth(keys["clinician"])).status_code == 403
    assert client.get("/v1/vocabulary").status_code == 401


def test_failed_authentication_is_rate_limited_not_before_20(client) -> None:
    statuses = [client.get("/v1/rulesets", headers=auth("rk_bad_bad")).status_code
                for _ in range(25)]
    assert statuses[:20] == [401] * 20
    assert 429 in statuses[20:]


def test_ready_is_503_when_the_disk_is_full(app, monkeypatch) -> None:
    """A full disk still lets a write transaction open: free space is checked as well."""
    from types import SimpleNamespace

    from referral_api.config import READY_MIN_FREE_BYTES
    from referral_api.store.sqlite import log as sqlite_log

    seen: list[str] = []

    def usage(path):
        seen.append(str(path))
        return SimpleNamespace(free=READY_MIN_FREE_BYTES - 1)

    monkeypatch.setattr(sqlite_log.shutil, "disk_usage", usage)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {
        "database": "writable", "disk": "full", "rulesets": "2 loaded"}
    # The directory holding the database is the one measured.
    assert seen == [str(app.extensions["referral_api"].log.path.parent)]
    monkeypatch.setattr(sqlite_log.shutil, "disk_usage",
                        lambda path: SimpleNamespace(free=READY_MIN_FREE_BYTES))
    assert app.test_client().get("/readyz").status_code == 200
