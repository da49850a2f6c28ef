"""The failed-authentication throttle fails safe for the hospital (issue 14 item 3).

Valid credentials are never throttled; failures are counted per client address as seen
through the trusted proxies, in the database every worker (and app instance) shares.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from tests.factories import build_app

BAD_KEY = "rk_000000000000_" + "A" * 43
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
CDS_SELECT = "/cds-services/spine-mri-appropriateness"
#: Well over the limit of 20 a minute: the misconfigured EHR client of the issue.
FLOOD = 45


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def statuses(client: Any, headers: dict[str, str], count: int, path: str = "/v1/rulesets",
             **kwargs: Any) -> list[int]:
    return [client.get(path, headers=headers, **kwargs).status_code for _ in range(count)]


def test_45_bad_keys_then_a_valid_key_is_accepted(client, keys) -> None:
    seen = statuses(client, bearer(BAD_KEY), FLOOD)
    assert seen[:20] == [401] * 20 and set(seen[20:]) == {429}
    assert client.get("/v1/rulesets", headers=bearer(keys["evaluator"])).status_code == 200
    # …and the valid key did not reset the count for the bad one.
    assert client.get("/v1/rulesets", headers=bearer(BAD_KEY)).status_code == 429


def test_45_bad_jwts_then_a_valid_key_reaches_the_cds_service(client, keys) -> None:
    jwt_like = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2ln"
    seen = [client.post(CDS_SELECT, json={}, headers=bearer(jwt_like)).status_code
            for _ in range(FLOOD)]
    assert seen[:20] == [401] * 20 and set(seen[20:]) == {429}
    valid = client.post(CDS_SELECT, json={}, headers=bearer(keys["evaluator"]))
    assert valid.status_code not in (401, 429)  # authenticated: the body is judged now


def test_45_bad_sign_ins_then_a_valid_key_signs_in(client, keys) -> None:
    def post(key: str) -> int:
        page = client.get("/sign-in").get_data(as_text=True)
        return client.post("/sign-in", data={"key": key, "csrf_token": CSRF_RE.search(page)[1]}
                           ).status_code

    seen = [post(BAD_KEY) for _ in range(FLOOD)]
    assert seen[:20] == [401] * 20 and set(seen[20:]) == {429}
    assert post(keys["clinician"]) == 303


def test_failures_in_two_app_instances_on_one_database_are_counted_together(
        tmp_path: Path) -> None:
    """Two workers of one host are two app instances on one database file."""
    first, second = build_app(tmp_path), build_app(tmp_path)
    clients = [first.test_client(), second.test_client()]
    seen = [clients[i % 2].get("/v1/rulesets", headers=bearer(BAD_KEY)).status_code
            for i in range(22)]
    # Each instance saw only 10 failures when the 21st arrived: counted per process, neither
    # would have throttled it.
    assert seen[:20] == [401] * 20 and seen[20:] == [429, 429]
    for app in (first, second):
        app.extensions["referral_api"].store.close()


@pytest.mark.parametrize(("trusted", "forwarded", "counted_as"), [
    (0, "203.0.113.5", "10.0.0.1"),  # no proxy trusted: the header is ignored (spoofable)
    (1, "203.0.113.5", "203.0.113.5"),  # one proxy: its view of the client
    (1, "198.51.100.9, 203.0.113.5", "203.0.113.5"),  # a spoofed first hop is ignored
    (2, "203.0.113.5, 192.0.2.7", "203.0.113.5"),  # two proxies: the client of the first
])
def test_the_client_address_is_taken_through_trusted_proxies_only(
        make_app, trusted: int, forwarded: str, counted_as: str, caplog) -> None:
    app = make_app(TRUSTED_PROXIES=trusted)
    client = app.test_client()
    caplog.set_level(logging.WARNING, logger="referral_api.security")
    response = client.get("/v1/rulesets", headers={**bearer(BAD_KEY),
                                                    "X-Forwarded-For": forwarded},
                          environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert response.status_code == 401
    (event,) = [r for r in caplog.records if getattr(r, "event", "") == "auth_failed"]
    assert event.client == counted_as
    svc = app.extensions["referral_api"]
    assert svc.limiter.counter.failures(counted_as, svc.limiter.clock(), 60) == 1


def test_clients_behind_one_proxy_are_throttled_separately(make_app) -> None:
    app = make_app(TRUSTED_PROXIES=1, AUTH_FAILURE_LIMIT=3)
    client = app.test_client()

    def get(forwarded: str) -> int:
        return client.get("/v1/rulesets", headers={**bearer(BAD_KEY),
                                                   "X-Forwarded-For": forwarded},
                          environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code

    assert [get("203.0.113.5") for _ in range(4)] == [401, 401, 401, 429]
    assert get("203.0.113.6") == 401  # the proxy's other clients are not affected


def test_limit_and_window_are_configurable(make_app) -> None:
    app = make_app(AUTH_FAILURE_LIMIT=25, AUTH_FAILURE_WINDOW_S=30)
    svc = app.extensions["referral_api"]
    assert (svc.limiter.limit, svc.limiter.window_s) == (25, 30.0)
    assert svc.settings.throttle_keeps_contract
    seen = statuses(app.test_client(), bearer(BAD_KEY), 26)
    assert seen[:25] == [401] * 25 and seen[25] == 429


def test_a_limit_below_the_contract_is_flagged(make_app, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="referral_api")
    app = make_app(AUTH_FAILURE_LIMIT=5)
    assert not app.extensions["referral_api"].settings.throttle_keeps_contract
    assert any("below the API contract" in r.getMessage() for r in caplog.records)


def test_the_throttle_fails_open_when_its_counter_is_down(app, client, caplog) -> None:
    svc = app.extensions["referral_api"]

    class Broken:
        def register_failure(self, *_: Any) -> int | None:
            raise OSError("disk I/O error")

    svc.limiter.counter = Broken()
    caplog.set_level(logging.ERROR, logger="referral_api")
    assert set(statuses(client, bearer(BAD_KEY), 25)) == {401}
    assert any("counter unavailable" in r.getMessage() for r in caplog.records)


def test_the_limiter_belongs_to_the_app_not_the_process(make_app) -> None:
    """No process-wide state: an app on another database starts with no failures counted."""
    first, second = make_app(), make_app()
    assert first.extensions["referral_api"].limiter is not second.extensions[
        "referral_api"].limiter
    assert statuses(first.test_client(), bearer(BAD_KEY), 21)[-1] == 429
    assert statuses(second.test_client(), bearer(BAD_KEY), 1) == [401]
