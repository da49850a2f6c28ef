"""Real gunicorn under load: concurrent workers, a killed worker, a full and a read-only disk.

Both tests drive scripts/load_test.py and scripts/fault_test.py (bounded in time and count,
loopback only) and audit the database afterwards.
"""

from __future__ import annotations

import os

import pytest

from scripts import fault_test, load_test

#: Fewer requests than this in the load test would not exercise concurrent writers.
MIN_REQUESTS = 100


@pytest.mark.slow
def test_concurrent_workers_lose_nothing_and_never_lock() -> None:
    report = load_test.run(seconds=4, clients=8, max_requests=3000,
                           worker_args=("--workers", "3"))
    assert report["requests"] > MIN_REQUESTS
    assert report["statuses"] == {201: report["requests"]}
    assert report["missing_from_log"] == 0
    assert report["logged"] == report["returned_201"]
    assert report["chain_ok"] and report["chain_checked"] == report["logged"]
    assert report["database_is_locked"] == 0 and report["tracebacks"] == 0


@pytest.mark.slow
def test_faults_answer_503_never_an_unlogged_decision() -> None:
    try:
        report = fault_test.run(phase_seconds=1.5, clients=6, max_requests=20_000)
    except fault_test.FaultUnsupported as exc:
        # CI runs as root on the project's machine kind, where tmpfs and bind mounts work
        # (checked): there a missing capability is a failure, never a silent skip.
        if os.environ.get("CI") == "true":
            pytest.fail(f"fault test must run under CI=true: {exc}", pytrace=False)
        pytest.skip(f"faults cannot be simulated here: {exc}")
    phases = report["phases"]
    # Every decision answered 201 is in the log; the chain is intact; failures are 503s.
    assert report["missing_from_log"] == 0
    assert report["chain_ok"] and report["chain_checked"] == report["logged"]
    assert report["server_errors_other_than_503"] == 0
    assert report["503_not_problem_json"] == 0
    assert report["database_is_locked"] == 0 and report["tracebacks"] == 0
    # A killed worker is replaced; the others go on answering.
    assert phases["worker SIGKILLed"]["statuses"].get(201, 0) > 0
    # A full disk: 503 (nothing returned unlogged), and recovery once space is freed.
    assert phases["disk full"]["statuses"].get(503, 0) > 0
    # … and readiness says so (a write transaction still opens on a full disk: free space
    # is checked as well).
    assert phases["disk full"]["readyz"] == 503
    assert phases["disk space freed"]["readyz"] == 200
    assert phases["disk space freed"]["statuses"].get(201, 0) > 0
    # A read-only database: 503 once the workers reopen it (until then the old workers'
    # descriptors still write, and those 201s are in the log: missing_from_log == 0 above).
    assert phases["read-only"]["statuses"].get(503, 0) > 0
    assert phases["read-only"]["readyz"] == 503
    # Once writable again, the workers reopen their connections and log again.
    assert phases["writable again"]["statuses"].get(201, 0) > 0
    assert phases["writable again"]["readyz"] == 200
