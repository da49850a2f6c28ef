"""Audit reads on PostgreSQL over a large log (e.g. 1 000 000 decisions), and the copy itself.

    .venv/bin/python scripts/bench_pg_audit.py /tmp/audit-1m.sqlite [--export-count 250000]

Moves the SQLite log (made by scripts/generate_log.py) into a private throw-away PostgreSQL
cluster with the real ``decisions copy`` code (timed, verified against the source's heads),
runs ``VACUUM (ANALYZE)`` (an append-only table needs it for index-only scans; autovacuum
does the same on its own in production), then measures through ``PostgresDecisionLog``:

- the first page (limit 50) for a set of filters: median and worst of 5;
- grouped statistics, right after a server restart (shared buffers empty; the OS cache may
  still hold pages) and warm;
- the whole-chain verification;
- peak memory (ru_maxrss) of a child exporting ``--export-count`` records against a child
  that only opens the log.

Bounded: one copy, a few seconds per query shape. The source file is only read.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
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

from referral_api.store.postgres.copy import copy_sqlite_to_postgres  # noqa: E402
from referral_api.store.postgres.db import connect  # noqa: E402
from referral_api.store.postgres.log import PostgresDecisionLog  # noqa: E402
from tests.backends import start_private_cluster, with_database  # noqa: E402

PAGES: list[dict] = [
    {},
    {"region": "lumbar"},
    {"appropriateness": "usually_appropriate"},
    {"urgency": "emergent"},
    {"scenario": "lumbar.cauda_equina"},
    {"channel": "cds-hooks", "urgency": "urgent"},
    {"ordering_clinician": "dr-0042"},
    {"patient_hash": None},  # filled with a real one
    {"feedback": "overridden"},
    {"feedback": "none", "region": "cervical"},
    {"client": "referral-portal"},
    {"since": None, "until": None, "region": "thoracic"},  # a month in the middle
    {"ruleset_version": "2026.1.0", "appropriateness": "not_covered"},
]
STATS: list[tuple[list[str], dict]] = [
    (["appropriateness"], {}),
    (["day"], {}),
    (["month", "urgency"], {}),
    (["channel", "feedback"], {}),
    (["ordering_clinician", "scenario"], {}),
    (["ordering_clinician", "day"], {}),
    (["scenario"], {"region": "lumbar"}),
    ([], {}),
]


def _timed(fn, repeat: int = 5) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def _export_child(url: str, count: int, queue) -> None:
    log = PostgresDecisionLog(url, query_timeout_ms=600_000)
    seen = 0
    if count:
        for _ in log.iter_records({}):
            seen += 1
            if seen >= count:
                break
    else:
        log.head()
    log.close()
    queue.put((seen, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def _rss(url: str, count: int) -> tuple[int, int]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_export_child, args=(url, count, queue))
    proc.start()
    result = queue.get(timeout=1800)
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a SQLite decision log (only read)")
    parser.add_argument("--export-count", type=int, default=250_000)
    args = parser.parse_args()
    cluster = start_private_cluster()
    try:
        with connect(cluster.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE audit")
        url = with_database(cluster.url, "audit")
        started = time.perf_counter()
        report = copy_sqlite_to_postgres(args.source, url)
        copy_s = time.perf_counter() - started
        n = report.rows["decisions"]
        print(f"copy: {n} decisions, {report.rows['feedback']} feedback in {copy_s:.0f} s "
              f"({n / copy_s:.0f} decisions/s, verification included)", flush=True)
        with connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute("VACUUM (ANALYZE) decisions")
            conn.execute("VACUUM (ANALYZE) feedback_latest")
            print(f"vacuum analyze: {time.perf_counter() - started:.0f} s")
            size = conn.execute("SELECT pg_size_pretty(pg_database_size('audit')), "
                                "pg_size_pretty(pg_relation_size('decisions_stats'))").fetchone()
            print(f"database {size[0]}, decisions_stats index {size[1]}")
            patient = conn.execute("SELECT patient_hash FROM decisions WHERE seq = %s",
                                   [n // 2]).fetchone()[0]
            middle = conn.execute("SELECT left(created_at, 7) FROM decisions WHERE seq = %s",
                                  [n // 2]).fetchone()[0]
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN SELECT d.appropriateness, count(*) FROM decisions d "
                "GROUP BY d.appropriateness"))
            print("stats plan:", " | ".join(line.strip() for line in plan.splitlines()))
        log = PostgresDecisionLog(url, query_timeout_ms=600_000)
        print(f"\n{'first page (limit 50)':<62}{'median ms':>10}{'worst ms':>10}")
        for filters in PAGES:
            if "patient_hash" in filters:
                filters = {"patient_hash": patient}
            if "since" in filters:
                filters = {**filters, "since": f"{middle}-01T00:00:00",
                           "until": f"{middle}-28T23:59:59"}
            median, worst = _timed(lambda f=filters: log.query(f, 50))
            shown = ", ".join(f"{k}={v if k != 'patient_hash' else '<hash>'}"
                              for k, v in filters.items()) or "(none)"
            print(f"{shown[:60]:<62}{median:>10.1f}{worst:>10.1f}", flush=True)
        log.close()
        cluster.restart("fast")
        log = PostgresDecisionLog(url, query_timeout_ms=600_000)
        print(f"\n{'statistics group_by (filters)':<50}{'after restart ms':>17}"
              f"{'warm median ms':>15}")
        for group_by, filters in STATS:
            started = time.perf_counter()
            log.stats(filters, group_by)
            cold = (time.perf_counter() - started) * 1000
            median, _ = _timed(lambda g=group_by, f=filters: log.stats(f, g), repeat=3)
            shown = ",".join(group_by) or "(total)"
            if filters:
                shown += " " + ",".join(f"{k}={v}" for k, v in filters.items())
            print(f"{shown:<50}{cold:>17.0f}{median:>15.0f}", flush=True)
        started = time.perf_counter()
        verified = log.verify()
        print(f"\nverify: {verified['decisions']['checked']} decisions ok="
              f"{verified['decisions']['ok']} in {time.perf_counter() - started:.1f} s")
        log.close()
        base = _rss(url, 0)[1]
        seen, peak = _rss(url, args.export_count)
        print(f"export of {seen} records: peak RSS {peak / 1024:.0f} MiB "
              f"(baseline {base / 1024:.0f} MiB)")
    finally:
        cluster.destroy()


if __name__ == "__main__":
    main()
