"""Decisions per second and latency with 1, 2 and 3 app hosts on one PostgreSQL, next to one
host on SQLite (real gunicorn, real HTTP, loopback, bounded).

    .venv/bin/python scripts/bench_pg_http.py [--seconds 8] [--clients 6] [--workers 2]

PostgreSQL is a private throw-away cluster started here (fsync on, synchronous_commit on);
each "host" is a gunicorn master with ``--workers`` sync workers on its own port; the
clients post the same valid decision round-robin over the hosts. Every run ends by checking
that each decision answered 201 is in the log and that the chain verifies. All hosts share
this machine's cores with the clients and the database: the figures show how the log
scales with hosts on one machine, not what separate machines would do.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The project's tests/ (no __init__: a namespace package) must win over the regular package
# named `tests` that the pinned textstat wheel installs into site-packages.
_tests = types.ModuleType("tests")
_tests.__path__ = [str(ROOT / "tests")]
sys.modules["tests"] = _tests

from referral_api.store.postgres.db import connect  # noqa: E402
from referral_api.store.postgres.keys import PostgresKeyStore  # noqa: E402
from referral_api.store.postgres.log import PostgresDecisionLog  # noqa: E402
from referral_api.store.postgres.migrations import migrate  # noqa: E402
from referral_api.store.sqlite import SQLiteStore  # noqa: E402
from tests.backends import start_private_cluster, with_database  # noqa: E402
from tests.postgres.multihost import Host, Load, summary  # noqa: E402


def _postgres(cluster_url: str, name: str) -> tuple[str, str]:
    with connect(cluster_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    url = with_database(cluster_url, name)
    with connect(url) as conn:
        migrate(conn)
    log = PostgresDecisionLog(url)
    _, key = PostgresKeyStore(log.pool).create(["evaluator"], "bench")
    log.close()
    return url, key


def _sqlite(folder: Path) -> tuple[str, str]:
    store = SQLiteStore(folder / "decisions.sqlite")
    store.migrate()
    _, key = store.keys.create(["evaluator"], "bench")
    store.close()
    return str(folder / "decisions.sqlite"), key


def run(database: str, key: str, hosts_n: int, args: argparse.Namespace, logs: Path) -> dict:
    hosts = [Host(database, workers=args.workers) for _ in range(hosts_n)]
    for host in hosts:
        host.start(logs)
    try:
        for host in hosts:
            host.wait_ready()
        load = Load(hosts, key, clients=args.clients, max_requests=args.max_requests)
        load.start()
        time.sleep(1.0)  # warm-up: connections, first requests
        start_mark, started = load.mark(), time.perf_counter()
        time.sleep(args.seconds)
        end_mark, elapsed = load.mark(), time.perf_counter() - started
        load.stop()
    finally:
        for host in hosts:
            host.stop()
    measured = load.answers[start_mark:end_mark]
    figures = summary(measured)
    figures["per_s"] = figures["statuses"].get(201, 0) / elapsed
    answered = {a.decision_id for a in load.answers if a.status == 201}
    if database.startswith("postgresql://"):
        log = PostgresDecisionLog(database)
        stored = {r["decision_id"] for r in log.iter_records({})}
        figures["chain_ok"] = log.verify()["decisions"]["ok"]
        log.close()
    else:
        store = SQLiteStore(database)
        stored = {r["decision_id"] for r in store.log.iter_records({})}
        figures["chain_ok"] = store.log.verify()["decisions"]["ok"]
        store.close()
    figures["missing_from_log"] = len(answered - stored)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-requests", type=int, default=50_000)
    args = parser.parse_args()
    cluster = start_private_cluster()
    print(f"{'backend':<12}{'hosts':>6}{'decisions/s':>13}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'non-201':>9}{'missing':>9}{'chain':>7}")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pg-http-") as tmp:
            logs = Path(tmp)
            runs = [("sqlite", 1)] + [("postgresql", n) for n in (1, 2, 3)]
            for backend, hosts_n in runs:
                if backend == "sqlite":
                    folder = logs / "sqlite"
                    folder.mkdir()
                    database, key = _sqlite(folder)
                else:
                    database, key = _postgres(cluster.url, f"bench_http_{hosts_n}")
                r = run(database, key, hosts_n, args, logs)
                other = sum(n for s, n in r["statuses"].items() if s != 201)
                print(f"{backend:<12}{hosts_n:>6}{r['per_s']:>13.0f}{r['p50_ms']:>9.1f}"
                      f"{r['p99_ms']:>9.1f}{other:>9}{r['missing_from_log']:>9}"
                      f"{'ok' if r['chain_ok'] else 'BROKEN':>7}", flush=True)
    finally:
        cluster.destroy()


if __name__ == "__main__":
    main()
