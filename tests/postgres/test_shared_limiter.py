"""Failed authentications count across hosts when the log is on PostgreSQL."""

from __future__ import annotations

from referral_api.auth import FAILURE_LIMIT, limiter
from tests.factories import auth

BAD_KEY = "rk_bad_bad"


def test_failures_on_one_host_throttle_the_client_on_another(make_app, pg_migrated_url) -> None:
    host_a = make_app(DATABASE=pg_migrated_url).test_client()
    host_b = make_app(DATABASE=pg_migrated_url).test_client()
    limiter._failures.clear()
    try:
        statuses = [host_a.get("/v1/rulesets", headers=auth(BAD_KEY)).status_code
                    for _ in range(FAILURE_LIMIT)]
        assert statuses == [401] * FAILURE_LIMIT
        # Host B is another process: it has counted nothing itself.
        limiter._failures.clear()
        first = host_b.get("/v1/rulesets", headers=auth(BAD_KEY))
        second = host_b.get("/v1/rulesets", headers=auth(BAD_KEY))
    finally:
        limiter._failures.clear()
    assert first.status_code == 401  # at most one attempt per host beyond the limit
    assert second.status_code == 429
    assert int(second.headers["Retry-After"]) >= 1
