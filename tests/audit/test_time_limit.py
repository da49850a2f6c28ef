"""The audit time limit lives in the store: every reader (API, dashboard page and charts, CLI)
gets it, and a stopped query leaves the log usable."""

from __future__ import annotations

from pathlib import Path

import pytest

from referral_api.store.interface import DEFAULT_QUERY_TIMEOUT_MS, QueryTimeout
from referral_api.store.sqlite.log import SQLiteDecisionLog
from tests.factories import make_new
from tests.web.pages import sign_in

#: Decisions in a log whose unfiltered scans are certain to exceed a zero time limit.
SLOW_LOG_SIZE = 3000
#: A filter no decision matches and no index serves: the query scans every row.
SCAN_EVERYTHING = {"ruleset_version": "none-such"}


@pytest.fixture
def big_log(db_path: Path) -> Path:
    """``db_path`` holding SLOW_LOG_SIZE decisions."""
    log = SQLiteDecisionLog(db_path)
    log.append_many([make_new() for _ in range(SLOW_LOG_SIZE)])
    log.close()
    return db_path


READERS = {
    "query": lambda log: log.query(SCAN_EVERYTHING, 50),
    "stats (dashboard weekly chart)": lambda log: log.stats({}, ["day", "appropriateness"]),
    "stats (dashboard override chart)": lambda log: log.stats(SCAN_EVERYTHING, ["scenario"]),
    "iter_records": lambda log: list(log.iter_records({})),
}


@pytest.mark.parametrize("read", READERS.values(), ids=READERS.keys())
def test_every_audit_read_of_the_store_is_time_limited(big_log: Path, read) -> None:
    limited = SQLiteDecisionLog(big_log, query_timeout_ms=0)
    with pytest.raises(QueryTimeout) as stopped:
        read(limited)
    assert stopped.value.timeout_ms == 0
    # Stopped, not broken: the same connection reads and writes again.
    limited.query_timeout_ms = DEFAULT_QUERY_TIMEOUT_MS
    read(limited)
    record, created = limited.append(make_new())
    assert created and record["chain"]["seq"] == SLOW_LOG_SIZE + 1
    limited.close()


def test_the_dashboard_stops_a_slow_query_with_a_503_page(make_app, bulk_append) -> None:
    """Before, the dashboard's page and chart queries ran without the API's limit."""
    app = make_app(AUDIT_QUERY_TIMEOUT_MS=0)
    svc = app.extensions["referral_api"]
    bulk_append(SLOW_LOG_SIZE, into=svc)
    browser = app.test_client()
    sign_in(browser, svc.keys.create(["auditor"], "slow-auditor")[1])
    page = browser.get("/audit?ruleset_version=none-such")
    assert page.status_code == 503
    assert page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "was stopped so that it cannot slow down decisions" in text


def test_the_dashboard_within_the_limit_renders(make_app, bulk_append) -> None:
    app = make_app()
    svc = app.extensions["referral_api"]
    bulk_append(10, into=svc)
    browser = app.test_client()
    sign_in(browser, svc.keys.create(["auditor"], "auditor")[1])
    assert browser.get("/audit").status_code == 200
