"""Structured logs and security events (issue 14 item 2)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from referral_api.access_log import AccessLogger
from referral_api.config import SettingsError
from referral_api.store.sqlite.keys import SQLiteKeyStore as KeyStore
from tests.factories import lumbar_request

PATIENT = "MRN-LOGS-31"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wrong_secret(token: str) -> str:
    return token[:-1] + ("B" if token[-1] == "A" else "A")


def json_lines(text: str) -> list[dict]:
    """Every line parsed as JSON (fails the test when one is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def events(lines: list[dict], name: str) -> list[dict]:
    return [line for line in lines if line.get("event") == name]


def test_every_line_is_json_and_security_events_are_events(app, client, keys, capsys) -> None:
    capsys.readouterr()
    store: KeyStore = app.extensions["referral_api"].keys
    revoked_key, revoked_token = store.create(["evaluator"], "old-ehr")
    store.revoke(revoked_key.key_id)
    evaluator = keys["evaluator"]
    client.get("/v1/rulesets")  # no credential
    client.get("/v1/rulesets", headers=bearer(wrong_secret(evaluator)))
    client.get("/v1/rulesets", headers=bearer(revoked_token))
    client.post("/cds-services/spine-mri-appropriateness", json={},
                headers=bearer("eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2ln"))
    client.get(f"/v1/decisions?patient={PATIENT}", headers=bearer(keys["clinician"]))
    client.post("/sign-in", data={"key": keys["clinician"], "csrf_token": "forged"})
    assert client.post("/v1/decisions", headers=bearer(evaluator),
                       json=lumbar_request(patient={"age": 40, "reference": PATIENT})
                       ).status_code == 201
    app.extensions["referral_api"].limiter.limit = 1
    client.get("/v1/rulesets", headers=bearer("rk_x"))
    client.get("/v1/rulesets", headers=bearer("rk_x"))

    err = capsys.readouterr().err
    lines = json_lines(err)
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    missing, wrong, invalid_jwt = (events(lines, "auth_failed")[0],
                                   events(lines, "auth_failed")[1],
                                   events(lines, "jwt_refused")[0])
    assert missing["reason"] == "missing_credential" and missing["route"] == "/v1/rulesets"
    assert missing["request_id"] and missing["client"] == "127.0.0.1"
    assert wrong["reason"] == "wrong_secret"
    assert wrong["presented_key_id"] == evaluator.split("_")[1]
    (revoked,) = events(lines, "revoked_key_used")
    assert revoked["presented_key_id"] == revoked_key.key_id
    assert invalid_jwt["reason"] == "jwt_refused" and "detail" in invalid_jwt
    (role,) = events(lines, "role_refused")
    assert role["key_id"] == keys["clinician"].split("_")[1]
    assert role["required"] == ["auditor"] and role["route"] == "/v1/decisions"
    (csrf,) = events(lines, "csrf_refused")
    assert csrf["route"] == "/sign-in"
    throttled = events(lines, "auth_throttled")  # this address is already over a limit of 1
    assert [t["reason"] for t in throttled] == ["malformed_key"] * 2
    assert throttled[0]["retry_after"] >= 1
    assert all(line["level"] == "warning" for line in lines if "event" in line)
    # Never a secret, a key, a patient reference or a query string.
    for needle in (PATIENT, evaluator, wrong_secret(evaluator), revoked_token,
                   evaluator.split("_", 2)[2], "patient="):
        assert needle not in err


def test_a_web_page_refusing_a_role_is_a_security_event(app, client, keys, capsys) -> None:
    page = client.get("/sign-in").get_data(as_text=True)
    client.post("/sign-in", data={"key": keys["clinician"],
                                  "csrf_token": CSRF_RE.search(page)[1]})
    capsys.readouterr()
    assert client.get("/audit").status_code == 403
    (role,) = events(json_lines(capsys.readouterr().err), "role_refused")
    assert role["key_id"] == keys["clinician"].split("_")[1] and role["route"] == "/audit"


def test_text_format_for_development(make_app, capsys) -> None:
    app = make_app(LOG_FORMAT="text", LOG_LEVEL="debug")
    capsys.readouterr()
    app.test_client().get("/v1/rulesets")
    err = capsys.readouterr().err.strip()
    assert not err.startswith("{")
    assert "warning" in err and "authentication failed" in err
    assert "event=auth_failed" in err and "reason=missing_credential" in err
    assert logging.getLogger("referral_api").level == logging.DEBUG


@pytest.mark.parametrize(("name", "value"), [("LOG_FORMAT", "xml"), ("LOG_LEVEL", "loud"),
                                             ("TRUSTED_PROXIES", "two")])
def test_an_unusable_setting_names_the_variable(make_app, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"REFERRAL_API_{name}"):
        make_app(**{name: value})


def _access_line(log_format: str, monkeypatch, capsys) -> str:
    monkeypatch.setenv("REFERRAL_API_LOG_FORMAT", log_format)
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = AccessLogger(cfg)
    capsys.readouterr()
    resp = SimpleNamespace(status="201 Created", sent=2012, headers=[("X-Request-ID", "r-1")])
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/decisions",
               "QUERY_STRING": f"patient={PATIENT}", "RAW_URI": f"/v1/decisions?patient={PATIENT}",
               "REMOTE_ADDR": "10.0.0.1", "HTTP_AUTHORIZATION": "Bearer rk_secret",
               "referral_api.route": "/v1/decisions", "referral_api.key_id": "0123456789ab",
               "referral_api.client": "203.0.113.5", "referral_api.request_id": "r-1"}
    logger.access(resp, SimpleNamespace(headers=[]), environ, dt.timedelta(microseconds=3456))
    return capsys.readouterr().out.strip()


def test_the_access_line_holds_only_what_it_should(monkeypatch, capsys) -> None:
    line = _access_line("json", monkeypatch, capsys)
    fields = json.loads(line)
    assert fields == {**fields, "logger": "gunicorn.access", "level": "info",
                      "request_id": "r-1", "method": "POST", "route": "/v1/decisions",
                      "status": 201, "latency_ms": 3.456, "bytes": 2012,
                      "key_id": "0123456789ab", "client": "203.0.113.5"}
    assert set(fields) == {"time", "level", "logger", "request_id", "method", "route",
                           "status", "latency_ms", "bytes", "key_id", "client"}
    assert PATIENT not in line and "rk_secret" not in line
    text = _access_line("text", monkeypatch, capsys)
    assert '203.0.113.5 "POST /v1/decisions" 201 2012 3.456ms rid=r-1 key=0123456789ab' in text
    assert PATIENT not in text


def test_a_session_of_a_revoked_key_ends_with_an_event(app, client, keys, capsys) -> None:
    page = client.get("/sign-in").get_data(as_text=True)
    client.post("/sign-in", data={"key": keys["clinician"],
                                  "csrf_token": CSRF_RE.search(page)[1]})
    key_id = keys["clinician"].split("_")[1]
    store = app.extensions["referral_api"].keys
    store.revoke(key_id)
    capsys.readouterr()
    page = client.get("/").get_data(as_text=True)
    assert 'name="key"' in page  # signed out: the sign-in page
    (event,) = events(json_lines(capsys.readouterr().err), "revoked_key_used")
    assert event["credential"] == "session" and event["presented_key_id"] == key_id
