"""Audit read benchmark on a generated log (scripts/generate_log.py), e.g. 1 000 000 decisions.

    .venv/bin/python scripts/bench_audit.py /tmp/audit-1m.sqlite [--export-count 250000]

Measures, through the HTTP API (Flask test client: validation, the query, JSON, and the
access-log write that every audit read makes):
- the first page (limit 50) for a set of filters: median and worst of 5 runs;
- grouped statistics: every group_by shape of the contract (each field alone and every pair,
  ``--all-stats``) or a representative set, each cold-ish (the database file's pages dropped
  from the OS cache with posix_fadvise first) and warm;
- verification of the three chains;
- peak memory (ru_maxrss) of a child process exporting ``--export-count`` decisions as CSV
  and as NDJSON, against a child that only opens the log (the baseline).

Writes an API key and access-log entries into the database it is given: use a scratch copy
under /tmp, never the project's db/.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SECRET = "bench-audit-secret-key-0123456789-abcdefghijkl"  # noqa: S105 - scratch database only

PAGE_QUERIES = [
    "",
    "region=lumbar",
    "appropriateness=usually_appropriate",
    "urgency=emergent",
    "scenario=lumbar.cauda_equina",
    "scenario=thoracic.ankylosed_spine_trauma",
    "scenario=lumbar.no_such_scenario",
    "channel=cds-hooks&urgency=urgent",
    "ordering_clinician=dr-0042",
    "patient=MRN-004242",
    "feedback=overridden",
    "feedback=none&region=cervical",
    "client=referral-portal",
    "client=no-such-client",
    "since=2026-06-01&until=2026-06-30&region=thoracic",
    "ruleset_version=2026.1.0&appropriateness=not_covered",
]
STATS_FIELDS = ["appropriateness", "urgency", "scenario", "ruleset_version", "channel", "region",
                "ordering_clinician", "feedback", "day", "month"]
STATS_QUERIES = [
    "group_by=appropriateness",
    "group_by=day",
    "group_by=month,urgency",
    "group_by=channel,feedback",
    "group_by=ordering_clinician,scenario",
    "group_by=ordering_clinician,day",
    "group_by=scenario&region=lumbar",
    "group_by=ordering_clinician&since=2026-09-01",
    "group_by=feedback,month&channel=cds-hooks&urgency=urgent",
    "group_by=day&feedback=overridden",
    "group_by=region&feedback=none",
    "group_by=scenario&scenario=lumbar.cauda_equina",
    "group_by=month&patient=MRN-004242",
]
ALL_STATS_QUERIES = [
    "group_by=" + ",".join(c)
    for k in (1, 2) for c in itertools.combinations(STATS_FIELDS, k)
]


def drop_from_os_cache(path: Path) -> None:
    """Evict the database (and WAL) pages from the OS page cache: a cold-ish next read."""
    for name in (str(path), f"{path}-wal"):
        if os.path.exists(name):
            fd = os.open(name, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _timed(fn, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def bench_http(path: Path, *, all_stats: bool = False, verify: bool = True,
               stats: bool = True) -> None:
    """Page, stats and verify timings through the API."""
    import referral_api.api.audit  # noqa: F401  (registers the routes before create_app)
    from referral_api import create_app
    from referral_api.config import PROJECT_ROOT

    app = create_app({"DATABASE": str(path), "SECRET_KEY": SECRET,
                      "RULES_DIR": str(PROJECT_ROOT / "rules"),
                      "AUDIT_QUERY_TIMEOUT_MS": 60_000})
    svc = app.extensions["referral_api"]
    key = svc.keys.create(["auditor"], "bench-auditor")[1]
    headers = {"Authorization": f"Bearer {key}"}
    client = app.test_client()
    count = svc.log.head()["count"]
    print(f"log: {count:,} decisions ({path.stat().st_size / 1e6:,.0f} MB)")

    def get(url: str) -> dict:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (url, response.get_json())
        return response.get_json()

    print("\nfirst page (limit 50), ms: median / worst of 5")
    for query in PAGE_QUERIES:
        url = f"/v1/decisions?{query}"
        items = len(get(url)["items"])
        median, worst = _timed(lambda url=url: get(url), 5)
        print(f"  {median:7.1f} / {worst:7.1f}  {items:>3} items  {query or '(no filter)'}")

    print("\nstats, ms: cold-ish (file evicted from the OS cache) | warm median / worst of 3")
    slowest = (0.0, "")
    for query in (ALL_STATS_QUERIES if all_stats else STATS_QUERIES) if stats else []:
        url = f"/v1/decisions/stats?{query}"
        drop_from_os_cache(path)
        cold, _ = _timed(lambda url=url: get(url), 1)
        groups = len(get(url)["groups"])
        median, worst = _timed(lambda url=url: get(url), 3)
        slowest = max(slowest, (max(cold, worst), query))
        print(f"  {cold:7.1f} | {median:7.1f} / {worst:7.1f}  {groups:>6} groups  {query}",
              flush=True)
    print(f"  slowest: {slowest[0]:.1f} ms  {slowest[1]}")
    if not verify:
        svc.log.close()
        return

    started = time.perf_counter()
    body = get("/v1/decisions/verify")
    seconds = time.perf_counter() - started
    print(f"\nverify: {seconds:.1f} s; decisions ok={body['ok']} checked={body['checked']:,}; "
          f"feedback ok={body['feedback']['ok']} checked={body['feedback']['checked']:,}; "
          f"access_log ok={body['access_log']['ok']}")
    svc.log.close()


def bench_append(batches: int = 300, rounds: int = 5) -> None:
    """append_many cost (1 and 50 decisions a transaction) and WAL bytes per decision, on a
    temporary database with the current schema and with it minus ``decisions_scenario`` (the
    index folding that was measured and rejected: see db/README.md). CPU time of this thread
    (``time.thread_time``) is reported beside the wall time: on a shared machine it moves far
    less."""
    import tempfile

    from referral_api.store.sqlite.db import connect
    from referral_api.store.sqlite.log import SQLiteDecisionLog
    from referral_api.store.sqlite.migrations import migrate
    from tests.factories import make_new

    def run(extra_sql: str, size: int) -> tuple[float, float, float]:
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            path = Path(tmp) / "append.sqlite"
            db = connect(path)
            migrate(db)
            db.executescript(extra_sql)
            log = SQLiteDecisionLog(path)
            conn = log.db().conn
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # so the WAL size counts every page
            log.append_many([make_new() for _ in range(200)])  # warm-up, non-empty indexes
            news = [[make_new() for _ in range(size)] for _ in range(batches)]
            wal_before = os.path.getsize(f"{path}-wal")
            started, cpu_started = time.perf_counter(), time.thread_time()
            for batch in news:
                log.append_many(batch)
            seconds = time.perf_counter() - started
            cpu = time.thread_time() - cpu_started
            wal = os.path.getsize(f"{path}-wal") - wal_before
            log.close()
            db.close()
            n = batches * size
            return seconds * 1e6 / n, cpu * 1e6 / n, wal / n

    print("append_many per decision, median of rounds (alternating): wall µs / CPU µs / WAL B")
    for size in (1, 50):
        variants = {"schema": "", "schema - decisions_scenario":
                    "DROP INDEX decisions_scenario;"}
        found: dict[str, list[tuple[float, float, float]]] = {label: [] for label in variants}
        for _ in range(rounds):
            for label, sql in variants.items():
                found[label].append(run(sql, size))
        for label, results in found.items():
            wall = statistics.median(r[0] for r in results)
            cpu = statistics.median(r[1] for r in results)
            print(f"  batch {size:>3}  {label:28} {wall:8.1f} µs  {cpu:8.1f} µs  "
                  f"{results[0][2]:8.0f} B")


def export_child(path: str, fmt: str, count: int) -> None:
    """Child process: export ``count`` decisions to /dev/null; print rows, seconds, maxrss."""
    from referral_api.audit.export import iter_export
    from referral_api.store.sqlite.log import SQLiteDecisionLog

    log = SQLiteDecisionLog(path)
    log.head()  # open the connection (the baseline includes it)
    started = time.perf_counter()
    written = 0
    if count:
        records = itertools.islice(log.iter_records({}), count)
        with open(os.devnull, "w", encoding="utf-8") as sink:
            for chunk in iter_export(fmt, records):
                sink.write(chunk)
                written += len(chunk)
    seconds = time.perf_counter() - started
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{count} {seconds:.2f} {rss_kib} {written}")


def bench_export(path: Path, count: int) -> None:
    """Peak RSS of exporting ``count`` decisions vs. a child that exports nothing."""
    def run(fmt: str, n: int) -> tuple[float, int, int]:
        out = subprocess.run(
            [sys.executable, __file__, str(path), "--export-child", fmt, str(n)],
            check=True, capture_output=True, text=True).stdout.split()
        return float(out[1]), int(out[2]), int(out[3])

    _, base_kib, _ = run("csv", 0)
    print(f"\nexport peak memory (child ru_maxrss); baseline (opened, nothing exported): "
          f"{base_kib / 1024:.1f} MiB")
    for fmt in ("csv", "ndjson"):
        seconds, kib, size = run(fmt, count)
        print(f"  {fmt:6} {count:,} decisions, {size / 1e6:,.0f} MB in {seconds:.1f} s "
              f"({count / seconds:,.0f}/s): peak {kib / 1024:.1f} MiB "
              f"(+{(kib - base_kib) / 1024:.1f} MiB over baseline)")


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", type=Path)
    parser.add_argument("--export-count", type=int, default=250_000)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-verify", action="store_true")
    parser.add_argument("--skip-stats", action="store_true")
    parser.add_argument("--all-stats", action="store_true",
                        help="every group_by field alone and every pair (55 shapes)")
    parser.add_argument("--append", action="store_true",
                        help="only time append_many on temporary databases, with and without "
                             "the scenario index")
    parser.add_argument("--export-child", nargs=2, metavar=("FORMAT", "COUNT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child(str(args.database), args.export_child[0], int(args.export_child[1]))
        return
    if args.append:
        bench_append()
        return
    if not args.database.exists():
        raise SystemExit(f"{args.database} does not exist: run scripts/generate_log.py first")
    if not args.skip_http:
        bench_http(args.database, all_stats=args.all_stats, verify=not args.skip_verify,
                   stats=not args.skip_stats)
    if not args.skip_export:
        bench_export(args.database, args.export_count)


if __name__ == "__main__":
    main()
