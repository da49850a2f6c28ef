"""Failed authentications count across hosts when the log is on PostgreSQL."""

from __future__ import annotations

from tests.factories import auth

BAD_KEY = "rk_bad_bad"


def test_failures_on_one_host_throttle_the_client_on_another(make_app, pg_migrated_url) -> None:
    host_a = make_app(DATABASE=pg_migrated_url).test_client()
    host_b = make_app(DATABASE=pg_migrated_url).test_client()
    limit = host_a.application.extensions["referral_api"].limiter.limit
    statuses = [host_a.get("/v1/rulesets", headers=auth(BAD_KEY)).status_code
                for _ in range(limit)]
    assert statuses == [401] * limit
    # Host B has its own processes and pool: only the shared count can throttle there.
    response = host_b.get("/v1/rulesets", headers=auth(BAD_KEY))
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
