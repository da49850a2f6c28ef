"""How fast can several hosts append to one PostgreSQL hash chain? (the chain-lock choice)

    .venv/bin/python scripts/bench_pg_chain.py [--seconds 5] [--url postgresql://…]

Starts a private throw-away cluster (fsync on, synchronous_commit on) unless ``--url`` is
given, then, for each mechanism and each number of writer processes (each one a "host" with
its own pool), appends decisions for ``--seconds`` and reports decisions/s and the median
and p99 latency of one append (lock wait + insert + durable commit):

- ``advisory``: ``pg_advisory_xact_lock`` then read the head (what the log does);
- ``row``: a chain-head row locked and rewritten by every append (``UPDATE … SET n = n + 1``),
  the usual alternative;
- ``advisory-batch8``: group commit, 8 decisions per transaction (``append_many``; its
  latencies are those of a batch).

The WAL written per decision is also reported: unlike the rates it does not depend on how
busy the machine is.

Every run ends by verifying the chain. Bounded: a few seconds per configuration, loopback.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
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

import psycopg  # noqa: E402

from referral_api.store.postgres import log as pg_log  # noqa: E402
from referral_api.store.postgres.db import connect  # noqa: E402
from referral_api.store.postgres.migrations import migrate  # noqa: E402
from tests.backends import start_private_cluster, with_schema  # noqa: E402
from tests.factories import make_new  # noqa: E402


def _row_lock(conn: psycopg.Connection, chain: str) -> None:
    conn.execute("UPDATE bench_chain_heads SET n = n + 1 WHERE chain = %s", [chain])


def _writer(url: str, mechanism: str, seconds: float, start, queue) -> None:
    if mechanism == "row":
        pg_log.lock_chain = _row_lock  # type: ignore[assignment]
    batch = 8 if mechanism.endswith("batch8") else 1
    log = pg_log.PostgresDecisionLog(url, pool_max=1)
    news = [make_new() for _ in range(batch)]
    log.append_many(news)  # connect before the clock starts
    latencies = []
    start.wait()
    deadline = time.perf_counter() + seconds
    done = 0
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        log.append_many(news)
        latencies.append(time.perf_counter() - t0)
        done += batch
    log.close()
    queue.put((done, latencies))


def run(url: str, mechanism: str, processes: int, seconds: float) -> dict:
    """One configuration on a fresh schema; returns its figures."""
    schema = f"bench_{mechanism.replace('-', '_')}_{processes}"
    with connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    target = with_schema(url, schema)
    with connect(target) as conn:
        migrate(conn)
        conn.execute("CREATE TABLE bench_chain_heads (chain TEXT PRIMARY KEY, n BIGINT)")
        conn.execute("INSERT INTO bench_chain_heads VALUES ('decisions', 0)")
        conn.commit()
    with connect(url, autocommit=True) as conn:
        wal_before = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    ctx = multiprocessing.get_context("fork")
    start, queue = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(target, mechanism, seconds, start, queue))
             for _ in range(processes)]
    for p in procs:
        p.start()
    start.wait()
    results = [queue.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    total = sum(r[0] for r in results)
    with connect(url, autocommit=True) as conn:
        wal = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)",
                           [wal_before]).fetchone()[0]
    latencies = sorted(x for r in results for x in r[1])
    log = pg_log.PostgresDecisionLog(target)
    report = log.verify()["decisions"]
    log.close()
    assert report["ok"], report
    with connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return {
        "mechanism": mechanism, "processes": processes, "per_s": total / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000, "chain_ok": report["ok"],
        # WAL written per decision (the warm-up appends included): independent of the
        # machine's load, unlike the rates.
        "wal_bytes": float(wal) / (total + processes * (8 if "batch8" in mechanism else 1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--url", help="a PostgreSQL URL (default: a private cluster)")
    args = parser.parse_args()
    cluster = None
    url = args.url
    if url is None:
        cluster = start_private_cluster()
        url = cluster.url
    try:
        print(f"{'mechanism':<18}{'hosts':>6}{'decisions/s':>13}{'p50 ms':>9}{'p99 ms':>9}"
              f"{'WAL B/decision':>16}")
        for mechanism in ("advisory", "row", "advisory-batch8"):
            for processes in (1, 2, 3):
                r = run(url, mechanism, processes, args.seconds)
                print(f"{r['mechanism']:<18}{r['processes']:>6}{r['per_s']:>13.0f}"
                      f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['wal_bytes']:>16.0f}",
                      flush=True)
    finally:
        if cluster is not None:
            cluster.destroy()


if __name__ == "__main__":
    main()
