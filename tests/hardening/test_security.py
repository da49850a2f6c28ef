"""Security (issue 6 item 7): headers, body limits, key checks, throttling, and no leaks.

Complements tests/api/test_public.py and tests/api/test_decisions.py (headers on /healthz, 413,
depth 400, 429 after 20 failures), which are not repeated here. Covered below:

- security headers on every kind of response (problem+json errors, HTML, CDS discovery, 500)
  and no ``Server`` banner under the real gunicorn (gunicorn.conf.py);
- body limits the test client cannot exercise: a chunked body without Content-Length under
  gunicorn, JSON nested deep enough to exhaust the parser's recursion within 64 KiB;
- API keys compared with ``hmac.compare_digest`` and stored only as a hash;
- the failed-authentication limiter: per client address, window expiry, the contract's floor
  of 20 failures a minute, valid keys never counted;
- no traceback, exception text, secret or patient reference in any response or log line
  (unexpected error, bad key, 422, 400, 503, CDS Hooks JWT refusals, gunicorn's log).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.test import EnvironBuilder

from referral_api import SECURITY_HEADERS
from referral_api.config import (
    DEFAULT_AUTH_FAILURE_LIMIT,
    DEFAULT_AUTH_FAILURE_WINDOW_S,
    MAX_BODY_BYTES,
)
from referral_api.store.sqlite.auth_failures import SQLiteAuthFailures
from referral_api.store.sqlite.keys import SQLiteKeyStore as KeyStore
from referral_api.throttle import FailureLimiter
from scripts import gunicorn_harness as harness
from tests.cds.builders import (
    EXAMPLE_ISSUER,
    PUBLIC_URL,
    conformance,
    hook_request,
    mint,
    service_request,
)
from tests.factories import TEST_SECRET, lumbar_request

PROBLEM = "application/problem+json"
PATIENT_REF = "MRN-SECRET-42"
CDS_SELECT = "/cds-services/spine-mri-appropriateness"
# What a leaked traceback or exception looks like in a body or a log line.
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "RuntimeError")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def key_secret(token: str) -> str:
    """The secret part of an ``rk_<key_id>_<secret>`` token."""
    return token.split("_", 2)[2]


def wrong_secret_token(token: str) -> str:
    """The same key id with another well-formed secret (43 URL-safe characters)."""
    secret = key_secret(token)
    other = ("B" if secret[0] == "A" else "A") + secret[1:]
    return token[: -len(secret)] + other


# The headers every response carries (referral_api.SECURITY_HEADERS: pairs or a mapping).
EXPECTED_HEADERS = dict(SECURITY_HEADERS)
# HTML pages add exactly one thing to the policy: the site's own script file (local times, the
# Print button); still no inline script, nothing from elsewhere.
PAGE_CSP = EXPECTED_HEADERS["Content-Security-Policy"].replace(
    "default-src 'none'; ", "default-src 'none'; script-src 'self'; ")


def csp_ok(value: str | None) -> bool:
    """The app's policy, or the HTML pages' (the same plus ``script-src 'self'``)."""
    return value in (EXPECTED_HEADERS["Content-Security-Policy"], PAGE_CSP)
# Pages may choose their own referrer policy, but never one that sends the URL elsewhere.
SAFE_REFERRER_POLICIES = {"no-referrer", "same-origin"}


def assert_security_headers(response: Any) -> None:
    """Every security header, a request id, no ``Server`` banner."""
    headers = {k.lower(): v for k, v in response.headers.items()}
    for name, value in EXPECTED_HEADERS.items():
        if name == "Referrer-Policy":
            assert headers.get("referrer-policy") in SAFE_REFERRER_POLICIES
        elif name == "Content-Security-Policy":
            assert csp_ok(headers.get("content-security-policy")), response.status_code
        else:
            assert headers.get(name.lower()) == value, (name, response.status_code)
    assert headers.get("x-request-id")
    assert "server" not in headers


def assert_no_leak(text: str, *needles: str) -> None:
    """``text`` holds no traceback and none of ``needles``."""
    for marker in TRACEBACK_MARKERS:
        assert marker not in text, marker
    for needle in needles:
        assert needle not in text, needle


# --- security headers on every kind of response --------------------------------------------


def test_content_security_policy_allows_no_script_and_no_framing() -> None:
    csp = EXPECTED_HEADERS["Content-Security-Policy"]
    policy = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert policy["default-src"] == "'none'"  # and no script-src: no script runs at all
    assert "script-src" not in policy
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe-" not in csp
    assert EXPECTED_HEADERS["X-Frame-Options"] == "DENY"
    assert EXPECTED_HEADERS["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "mimetype"), [
    ("get", "/v2/nothing", {}, 404, PROBLEM),
    ("delete", "/v1/decisions", {}, 405, PROBLEM),
    ("post", "/v1/decisions", {"json": {}}, 401, PROBLEM),
    ("get", "/v1/rulesets", {"headers": bearer("rk_000000000000_" + "A" * 43)}, 401, PROBLEM),
    ("post", "/v1/decisions", {"data": "age=4", "content_type": "text/plain"}, 401, PROBLEM),
    ("post", CDS_SELECT, {"json": {}}, 401, PROBLEM),
    ("get", "/sign-in", {}, 200, "text/html"),
    ("get", "/cds-services", {}, 200, "application/json"),
    ("get", "/openapi.json", {}, 200, "application/json"),
    ("options", CDS_SELECT, {}, 204, None),
], ids=["404", "405", "401-no-key", "401-bad-key", "401-not-json", "401-cds", "sign-in-html",
        "cds-discovery", "openapi", "cds-preflight"])
def test_security_headers_on_every_kind_of_response(client, method, path, kwargs, status,
                                                    mimetype) -> None:
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    if mimetype is not None:
        assert response.mimetype == mimetype
    assert_security_headers(response)


def test_security_headers_on_413_415_and_429(app, client, keys) -> None:
    headers = bearer(keys["evaluator"])
    too_big = client.post("/v1/decisions", headers=headers, content_type="application/json",
                          data=json.dumps(lumbar_request(ordering_clinician="x" * 70_000)))
    not_json = client.post("/v1/decisions", headers=headers, data="age=4",
                           content_type="application/x-www-form-urlencoded")
    app.extensions["referral_api"].limiter.limit = 1
    client.get("/v1/rulesets", headers=bearer("rk_bad"))
    throttled = client.get("/v1/rulesets", headers=bearer("rk_bad"))
    for response, status in ((too_big, 413), (not_json, 415), (throttled, 429)):
        assert response.status_code == status and response.mimetype == PROBLEM
        assert_security_headers(response)


def test_html_pages_run_under_the_policy(client) -> None:
    # default-src 'none' blocks inline script and style: the pages must need neither. The
    # only script is the site's own file, allowed by script-src 'self'.
    response = client.get("/sign-in")
    html = response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    scripts = re.findall(r"<script[^>]*>", html.lower())
    assert scripts == ['<script src="/assets/web.js" defer>']
    assert " style=" not in html.lower() and "<style" not in html.lower()


# --- real gunicorn: no Server banner, chunked bodies, its log --------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The service under real gunicorn (one worker), a key with evaluator + auditor roles."""
    workdir = tmp_path_factory.mktemp("served")
    env = harness.service_env(workdir)
    env["REFERRAL_API_LOG_LEVEL"] = "info"  # the access log and every warning are in the log
    key = harness.prepare_database(env)
    log_path = workdir / "gunicorn.log"
    with harness.serving("wsgi:app", env, log_path, ("--workers", "1")) as server:
        yield {"server": server, "key": key, "log_path": log_path,
               "secret_file": workdir / "db" / "secret.key"}


@pytest.mark.slow
def test_no_server_banner_under_real_gunicorn(served) -> None:
    server = served["server"]
    for method, path, headers in (("GET", "/healthz", {}),
                                  ("GET", "/v2/nothing", {}),
                                  ("POST", "/v1/decisions", {}),
                                  ("GET", "/sign-in", {})):
        status, received, _ = harness.request(server, method, path,
                                              body={} if method == "POST" else None,
                                              headers=headers)
        assert status in (200, 401, 404), (path, status)
        assert "server" not in received, (path, received.get("server"))
        for name, value in EXPECTED_HEADERS.items():
            if name == "Content-Security-Policy":
                assert csp_ok(received.get(name.lower())), (path, name)
            elif name != "Referrer-Policy":
                assert received.get(name.lower()) == value, (path, name)


def over_limit_body() -> bytes:
    """72 KB whose first 64 KiB are a valid request: only a body read whole is refused."""
    valid = json.dumps(lumbar_request()).encode()
    return valid + b" " * (MAX_BODY_BYTES - len(valid)) + b"garbage" * 1000


# werkzeug stops a body without Content-Length (chunked) silently at MAX_CONTENT_LENGTH; the
# app sets it one byte above the limit so that read_json sees such a body is too large.
def test_body_without_content_length_over_the_limit_is_413(app, keys) -> None:
    # What gunicorn hands the app for a chunked request: a terminated stream, no length.
    environ = EnvironBuilder(path="/v1/decisions", method="POST",
                             content_type="application/json",
                             headers=bearer(keys["evaluator"])).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = io.BytesIO(over_limit_body())
    environ["wsgi.input_terminated"] = True
    status: list[str] = []
    body = b"".join(app.wsgi_app(environ, lambda s, _headers, _exc=None: status.append(s)))
    assert status[0].startswith("413"), body
    assert app.extensions["referral_api"].log.verify()["decisions"]["checked"] == 0


@pytest.mark.slow
def test_chunked_body_over_the_limit_is_413_under_real_gunicorn(served) -> None:
    import http.client

    server = served["server"]
    body = over_limit_body()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("POST", "/v1/decisions",
                     body=iter([body[i:i + 4096] for i in range(0, len(body), 4096)]),
                     headers={**bearer(served["key"]), "Content-Type": "application/json"},
                     encode_chunked=True)
        response = conn.getresponse()
        answer = response.read()
    finally:
        conn.close()
    assert response.status == 413, answer
    assert response.getheader("Content-Type") == PROBLEM
    assert response.getheader("Server") is None


@pytest.mark.slow
def test_gunicorn_log_holds_no_secret_or_patient_reference(served) -> None:
    server, key = served["server"], served["key"]
    created = harness.request(server, "POST", "/v1/decisions", headers=bearer(key),
                              body=lumbar_request(patient={"age": 50, "reference": PATIENT_REF}))
    assert created[0] == 201
    invalid = harness.request(server, "POST", "/v1/decisions", headers=bearer(key),
                              body=lumbar_request(patient={"age": 300, "reference": PATIENT_REF}))
    assert invalid[0] == 422
    assert PATIENT_REF.encode() not in invalid[2]
    # An audit filter on the patient travels in the query string: the access log omits it.
    listed = harness.request(server, "GET", f"/v1/decisions?patient={PATIENT_REF}",
                             headers=bearer(key))
    assert listed[0] == 200
    bad = harness.request(server, "GET", "/v1/rulesets", headers=bearer(wrong_secret_token(key)))
    assert bad[0] == 401
    text = served["log_path"].read_text(encoding="utf-8", errors="replace")
    # The access log is there to be checked: one JSON object a line, route templates.
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = {(e.get("method"), e.get("route"), e.get("status")) for e in lines
              if e.get("logger") == "gunicorn.access"}
    assert ("POST", "/v1/decisions", 201) in access
    assert ("GET", "/v1/decisions", 200) in access
    secret = served["secret_file"].read_text(encoding="utf-8").strip()
    assert_no_leak(text, PATIENT_REF, key, key_secret(key),
                   key_secret(wrong_secret_token(key)), secret)


# --- JSON depth that exhausts the parser's recursion -----------------------------------------


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_json_nested_past_the_parser_recursion_is_400(client, keys, opening) -> None:
    closing = "]" if opening == "[" else "}"
    depth = (60 * 1024) // (len(opening) + 1)  # under 64 KiB, far beyond the recursion limit
    body = opening * depth + "0" + closing * depth
    response = client.post("/v1/decisions", data=body, content_type="application/json",
                           headers=bearer(keys["evaluator"]))
    assert response.status_code == 400 and response.mimetype == PROBLEM
    assert_no_leak(response.get_data(as_text=True), "RecursionError", "recursion")


# --- API keys: constant-time comparison, stored only as a hash -------------------------------


def test_key_secret_is_compared_with_compare_digest(app, monkeypatch) -> None:
    store: KeyStore = app.extensions["referral_api"].keys
    _, token = store.create(["evaluator"], "spy")
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("referral_api.store.keys.hmac.compare_digest", spy)
    wrong = wrong_secret_token(token)
    assert store.verify(wrong) is None
    stored = hashlib.sha256(key_secret(token).encode()).hexdigest()
    assert calls == [(hashlib.sha256(key_secret(wrong).encode()).hexdigest(), stored)]
    assert store.verify(token) is not None
    assert calls[-1] == (stored, stored)


def test_key_store_holds_only_a_hash(app) -> None:
    store: KeyStore = app.extensions["referral_api"].keys
    _, token = store.create(["evaluator", "auditor"], "hash-only")
    secret = key_secret(token)
    database = Path(app.extensions["referral_api"].settings.database)
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM api_keys")]
    assert len(rows) == 1
    assert rows[0]["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    for value in rows[0].values():
        assert secret not in str(value) and token not in str(value)
    # Nor anywhere else in the database files (journal included).
    for path in database.parent.glob(database.name + "*"):
        assert secret.encode() not in path.read_bytes(), path.name


# --- the failed-authentication limiter -------------------------------------------------------


class FakeClock:
    """A wall clock the test moves by hand (the limiter counts in epoch seconds)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def counter(db_path: Path) -> Iterator[SQLiteAuthFailures]:
    """The failure counters of a fresh database (shared by every worker of a host)."""
    store = SQLiteAuthFailures(db_path)
    yield store
    store.close()


def test_limiter_counts_per_client_and_forgets_after_the_window(counter, clock) -> None:
    limiter = FailureLimiter(counter, limit=3, window_s=0.5, clock=clock)
    assert [limiter.failure("10.0.0.1") for _ in range(3)] == [None] * 3
    assert limiter.failure("10.0.0.1") == 1  # the fourth failure within the window: 429
    assert limiter.failure("10.0.0.2") is None  # another client is not affected
    clock.now += 0.6
    assert counter.failures("10.0.0.1", clock.now, 0.5) == 0  # forgotten
    assert limiter.failure("10.0.0.1") is None


def test_limiter_never_throttles_before_20_failures_in_a_minute(counter, clock) -> None:
    limiter = FailureLimiter(counter, limit=DEFAULT_AUTH_FAILURE_LIMIT,
                             window_s=DEFAULT_AUTH_FAILURE_WINDOW_S, clock=clock)
    assert DEFAULT_AUTH_FAILURE_LIMIT >= 20 and DEFAULT_AUTH_FAILURE_WINDOW_S <= 60
    # 19 failures a minute, for five minutes: never 20 within one minute, never throttled.
    for _ in range(5):
        for _ in range(19):
            assert limiter.failure("10.0.0.9") is None
            clock.now += 60.5 / 19
    # A quiet minute, then 20 failures at once: all 401; only the 21st is answered 429.
    clock.now += 60
    assert [limiter.failure("10.0.0.9") for _ in range(20)] == [None] * 20
    assert limiter.failure("10.0.0.9") == 60


def test_throttling_is_per_client_address_through_the_app(app, client, keys) -> None:
    svc = app.extensions["referral_api"]
    svc.limiter.limit = 3
    bad = bearer(wrong_secret_token(keys["evaluator"]))

    def get(address: str, headers: dict[str, str], path: str = "/v1/rulesets") -> Any:
        return client.get(path, headers=headers, environ_base={"REMOTE_ADDR": address})

    assert [get("10.0.0.1", bad).status_code for _ in range(3)] == [401] * 3
    throttled = get("10.0.0.1", bad)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert get("10.0.0.2", bad).status_code == 401
    # A valid key, or a valid key without the role, is never a failure, and is answered even
    # from the throttled address.
    assert {get("10.0.0.3", bearer(keys["evaluator"])).status_code for _ in range(10)} == {200}
    assert {get("10.0.0.3", bearer(keys["clinician"])).status_code for _ in range(10)} == {403}
    assert get("10.0.0.1", bearer(keys["evaluator"])).status_code == 200
    assert svc.limiter.counter.failures("10.0.0.3", svc.limiter.clock(), 60) == 0


def test_valid_requests_between_failures_do_not_count(client, keys) -> None:
    bad, good = bearer(wrong_secret_token(keys["evaluator"])), bearer(keys["evaluator"])
    statuses = []
    for _ in range(19):
        statuses.append(client.get("/v1/rulesets", headers=bad).status_code)
        statuses.append(client.get("/v1/rulesets", headers=good).status_code)
    assert statuses == [401, 200] * 19
    assert client.get("/v1/rulesets", headers=bad).status_code == 401  # the 20th failure
    assert client.get("/v1/rulesets", headers=bad).status_code == 429


# --- no traceback, exception text, secret or patient data in responses or logs ---------------


def test_unexpected_error_is_a_bare_500_with_a_request_id(app, client, keys, monkeypatch,
                                                          caplog) -> None:
    from referral_api.clinical import engine

    def boom(request: Any, *_: Any, **__: Any) -> Any:
        # The message carries input (the patient reference), as a careless one might.
        raise RuntimeError("boom-secret-" + request["patient"]["reference"])

    monkeypatch.setattr(engine, "evaluate", boom)
    caplog.set_level(logging.INFO)
    response = client.post("/v1/decisions",
                           json=lumbar_request(patient={"age": 40, "reference": "MRN-123"}),
                           headers={**bearer(keys["evaluator"]), "X-Request-ID": "sec-500-1"})
    assert response.status_code == 500 and response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == 500 and "sec-500-1" in body["detail"]
    assert response.headers["X-Request-ID"] == "sec-500-1"
    assert_security_headers(response)
    assert_no_leak(response.get_data(as_text=True), "boom", "MRN-123", "engine", "Traceback")
    # The operators get the exception type and the stack, tied to the request id the client
    # will quote, but never the exception's message (it may carry input).
    (logged,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    text = logged.getMessage()
    assert "sec-500-1" in text and "RuntimeError" in text and "in boom" in text
    assert "MRN-123" not in text and logged.exc_info is None
    assert app.extensions["referral_api"].log.verify()["decisions"]["checked"] == 0


@pytest.mark.parametrize("patient", [
    {"age": 300, "reference": PATIENT_REF},
    {"age": PATIENT_REF},
    {"age": 40, "sex": PATIENT_REF},
    {"age": 40, "reference": PATIENT_REF * 12},  # over 128 characters
    {"age": 40, "reference": {"id": PATIENT_REF}},
], ids=["bad-age", "age-is-reference", "sex-is-reference", "reference-too-long",
        "reference-not-string"])
def test_422_never_echoes_the_patient_reference(client, keys, patient) -> None:
    response = client.post("/v1/decisions", json=lumbar_request(patient=patient),
                           headers=bearer(keys["evaluator"]))
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert response.get_json()["errors"]
    assert_no_leak(response.get_data(as_text=True), PATIENT_REF)


def test_malformed_json_never_echoes_the_body(client, keys) -> None:
    truncated = json.dumps(lumbar_request(patient={"age": 40, "reference": PATIENT_REF}))[:-3]
    response = client.post("/v1/decisions", data=truncated, content_type="application/json",
                           headers=bearer(keys["evaluator"]))
    assert response.status_code == 400 and response.mimetype == PROBLEM
    assert_no_leak(response.get_data(as_text=True), PATIENT_REF)


def test_no_secret_or_patient_reference_in_any_response_or_log_line(app, client, keys,
                                                                    monkeypatch,
                                                                    caplog) -> None:
    from referral_api.store.interface import LogUnavailable

    caplog.set_level(logging.DEBUG)
    svc = app.extensions["referral_api"]
    evaluator, auditor = keys["evaluator"], keys["auditor"]
    wrong = wrong_secret_token(evaluator)
    body = lumbar_request(patient={"age": 50, "reference": PATIENT_REF})
    responses = [
        client.post("/v1/decisions", json=body, headers=bearer(evaluator)),
        client.post("/v1/decisions", json=body, headers=bearer(wrong)),
        client.post("/v1/decisions", json=body, headers={"X-API-Key": wrong}),
        client.post("/v1/decisions", json=lumbar_request(
            patient={"age": 300, "reference": PATIENT_REF}), headers=bearer(evaluator)),
        client.get(f"/v1/decisions?patient={PATIENT_REF}", headers=bearer(auditor)),
    ]

    def refuse(*_: Any, **__: Any) -> Any:
        raise LogUnavailable("disk I/O error")

    monkeypatch.setattr(svc.log, "append_many", refuse)
    responses.append(client.post("/v1/decisions", json=body, headers=bearer(evaluator)))
    assert [r.status_code for r in responses] == [201, 401, 401, 422, 200, 503]
    # The listing finds the decision by the patient (hashed), so the reference was used.
    assert len(responses[4].get_json()["items"]) == 1

    secrets = [key_secret(k) for k in keys.values()] + [key_secret(wrong), TEST_SECRET,
                                                        svc.session_key.hex(),
                                                        svc.patient_key.hex()]
    for response in responses[1:4] + responses[5:]:
        assert_no_leak(response.get_data(as_text=True), PATIENT_REF, *secrets)
    for response in responses:
        for name, value in response.headers.items():
            assert_no_leak(f"{name}: {value}", PATIENT_REF, *secrets)
    # The 503 was logged (so the capture works), and no log line holds a secret.
    assert any("503" in r.getMessage() for r in caplog.records)
    assert_no_leak(caplog.text, PATIENT_REF, *secrets)
    for record in caplog.records:
        assert_no_leak(record.getMessage(), PATIENT_REF, *secrets)
        assert_no_leak(repr(record.args), PATIENT_REF, *secrets)


def test_request_id_from_the_client_cannot_inject_into_log_lines(client) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "a b<script>%0d%0aforged"})
    assert response.headers["X-Request-ID"] != "a b<script>%0d%0aforged"
    assert len(response.headers["X-Request-ID"]) == 36  # a fresh uuid instead


# --- CDS Hooks: a refused JWT is never echoed ------------------------------------------------


@pytest.fixture
def cds_client(tmp_path: Path, make_app: Callable[..., Any]) -> Any:
    """The service trusting the CDS Hooks spec's example issuer (inline JWKS)."""
    clients = tmp_path / "cds-clients.json"
    clients.write_text(json.dumps({EXAMPLE_ISSUER: {
        "jwks": conformance("cds-hooks-2.0.1-example.jwks.json")}}), encoding="utf-8")
    return make_app(PUBLIC_URL=PUBLIC_URL, CDS_CLIENTS=str(clients)).test_client()


def _tampered(key: Any) -> str:
    token = mint(key, PUBLIC_URL + CDS_SELECT, sub=PATIENT_REF)
    head, payload, signature = token.split(".")
    return ".".join((head, payload, ("A" if signature[0] != "A" else "B") + signature[1:]))


@pytest.mark.parametrize("make_token", [
    lambda key: conformance("cds-hooks-2.0.1-example.jwt"),
    lambda key: mint(key, PUBLIC_URL + CDS_SELECT, issuer="https://other.example/",
                     sub=PATIENT_REF),
    lambda key: mint(ec.generate_private_key(ec.SECP384R1()), PUBLIC_URL + CDS_SELECT,
                     sub=PATIENT_REF),
    _tampered,
    lambda key: mint(key, "https://elsewhere.example/cds", sub=PATIENT_REF),
    lambda key: jwt.encode({"iss": EXAMPLE_ISSUER, "sub": PATIENT_REF}, None, algorithm="none"),
    lambda key: "eyJhbGciOiJFUzM4NCJ9." + PATIENT_REF + ".c2lnbmF0dXJl",
], ids=["expired-example", "unknown-issuer", "unknown-key", "tampered", "wrong-aud",
        "alg-none", "garbage"])
def test_refused_jwt_is_never_echoed(cds_client, caplog, make_token) -> None:
    key = jwt.PyJWK(conformance("cds-hooks-2.0.1-example.private-jwk.json")).key
    token = make_token(key)
    caplog.set_level(logging.DEBUG)
    response = cds_client.post(CDS_SELECT, json=hook_request(service_request()),
                               headers=bearer(token))
    assert response.status_code == 401 and response.mimetype == PROBLEM
    assert_security_headers(response)
    seen = response.get_data(as_text=True) + json.dumps(dict(response.headers)) + caplog.text
    # Neither the token nor any of its parts (header, claims, signature) comes back.
    assert_no_leak(seen, token, PATIENT_REF, *[part for part in token.split(".") if part])
