"""Three app hosts, one PostgreSQL, one chain: a host SIGKILLed and the database restarted
mid-load, then the database stopped and started again.

The database is a private cluster this test starts itself (restarting a shared server would
disturb everyone else using it). Bounded: a few seconds per phase, loopback only.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from referral_api.store.postgres.db import connect
from referral_api.store.postgres.keys import PostgresKeyStore
from referral_api.store.postgres.log import PostgresDecisionLog
from referral_api.store.postgres.migrations import migrate
from tests.backends import PrivateCluster, start_private_cluster, with_database
from tests.postgres.multihost import Host, Load, summary

HOSTS = 3
PHASE_S = 2.5


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A private PostgreSQL cluster (removed afterwards)."""
    try:
        started = start_private_cluster()
    except RuntimeError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the multi-host test needs a private PostgreSQL cluster: {exc}",
                        pytrace=False)
        pytest.skip(f"the multi-host test needs a private PostgreSQL cluster: {exc}")
    yield started
    started.destroy()


@pytest.fixture
def fleet_db(cluster: PrivateCluster) -> Iterator[tuple[str, str]]:
    """A migrated database on the cluster and an evaluator key: ``(url, key)``."""
    name = f"referral_mh_{uuid.uuid4().hex[:8]}"
    with connect(cluster.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(cluster.url, name)
    with connect(url) as conn:
        migrate(conn)
    log = PostgresDecisionLog(url)
    _, key = PostgresKeyStore(log.pool).create(["evaluator"], "multi-host-load")
    log.close()
    yield url, key
    with connect(cluster.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


@pytest.mark.slow
def test_hosts_killed_and_database_restarted_lose_nothing(
    cluster: PrivateCluster, fleet_db: tuple[str, str], tmp_path: Path
) -> None:
    url, key = fleet_db
    hosts = [Host(url) for _ in range(HOSTS)]
    for host in hosts:
        host.start(tmp_path)
    try:
        for host in hosts:
            host.wait_ready()
        load = Load(hosts, key, clients=6, max_requests=20_000)
        load.start()
        time.sleep(PHASE_S)
        killed_at = load.mark()
        hosts[0].kill()
        load.dead.add(0)  # the load balancer takes it out
        time.sleep(PHASE_S)
        restart_at = load.mark()
        cluster.restart("immediate")  # as after a crash: recovery replays the WAL
        time.sleep(PHASE_S * 2)
        load.stop()
        phases = {
            "all hosts": summary(load.answers[:killed_at]),
            "one host killed": summary(load.answers[killed_at:restart_at]),
            "database restarted": summary(load.answers[restart_at:]),
        }

        # PostgreSQL down: every request that cannot be logged is a 503 problem+json and
        # readiness says so; once it is back the hosts recover by themselves.
        cluster.stop("fast")
        down = Load(hosts, key, clients=2, max_requests=4)
        down.dead.add(0)
        down.start()
        down.stop()
        ready_down = [hosts[i].get("/readyz") for i in (1, 2)]
        cluster.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and hosts[1].get("/readyz") != 200:
            time.sleep(0.2)
        back = Load(hosts, key, clients=2, max_requests=20)
        back.dead.add(0)
        back.start()
        back.stop()
    finally:
        for host in hosts:
            host.stop()
    logs = "".join(host.server_log() for host in hosts)

    answered = [a.decision_id for run in (load, down, back) for a in run.answers
                if a.status == 201]
    log = PostgresDecisionLog(url)
    try:
        report = log.verify()
        with connect(url) as conn:
            stored = [r[0] for r in conn.execute("SELECT decision_id FROM decisions")]
    finally:
        log.close()
    print(phases)  # shown with -s: figures of this run

    assert phases["all hosts"]["statuses"].get(201, 0) > 0
    assert phases["one host killed"]["statuses"].get(201, 0) > 0  # the others go on
    assert phases["database restarted"]["statuses"].get(201, 0) > 0  # recovered
    for phase in phases.values():
        # 201, a 503 while the database restarts, or no answer from the killed host.
        assert set(phase["statuses"]) <= {201, 503, 0}, phase
        assert phase["503_not_problem_json"] == 0
    assert {a.status for a in down.answers} == {503}
    assert all(a.problem_json for a in down.answers)
    assert ready_down == [503, 503]
    assert [a.status for a in back.answers] == [201] * len(back.answers)
    # Every decision answered 201 is in the log exactly once; one gap-free chain.
    assert len(stored) == len(set(stored))
    assert set(answered) <= set(stored)
    assert report["decisions"]["ok"], report["decisions"]
    assert report["decisions"]["checked"] == len(stored)
    assert "Traceback" not in logs
