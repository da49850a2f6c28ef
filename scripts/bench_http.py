"""HTTP benchmark of POST /v1/decisions against a bare Flask JSON echo, side by side.

Both apps run under the SAME gunicorn settings (``gunicorn.conf.py``, loopback, the same
workers and worker class), on a temporary database (``init-db`` + one key), and are driven in
alternating rounds by the same client: ``wrk`` (installed with apt-get when missing and
possible) with a Lua script posting the same JSON bodies, or a multi-process Python client
when wrk is unavailable. Prints req/s, p50, p99 and errors for each, and the ratio
app / echo, and, as the main figure, the **server CPU per decision** (user + system time of
the gunicorn master and workers ÷ requests completed): on a shared 2-core machine it moves far
less than req/s. Afterwards every 201 must be in the log and the chain must verify.

Usage: .venv/bin/python scripts/bench_http.py [--duration 5] [--rounds 3] [--connections 8]
       [--worker-class sync|gthread] [--threads N] [--workers N] [--compare] [--ceiling]
       [--baseline DIR]
``--compare`` measures the app under each worker model in turn (the figures behind the
choice in gunicorn.conf.py; see docs/performance.md). ``--baseline DIR`` also serves the
service from another checkout (e.g. ``git worktree add /tmp/base main``), on its own
database initialised by its own code, in the same alternating rounds: a paired before/after
measurement under the same load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.gunicorn_harness import (
    DECISION_BODY,
    Server,
    prepare_database,
    server_cpu_seconds,
    service_env,
    serving,
)

#: Targets of issue 15 (2 sync workers): server CPU per decision, ratio to the echo, p99.
TARGET_CPU_US = 1100.0
TARGET_RATIO = 0.40
TARGET_P99_MS = 15.0

#: The bodies cycled by the clients (same for echo and app): a mix of engine paths.
BODIES = [
    DECISION_BODY,
    {"patient": {"age": 45, "sex": "female", "reference": "MRN-BENCH-0002"},
     "region": "lumbar", "symptom_duration_weeks": 2, "findings": []},
    {"patient": {"age": 61, "sex": "female"}, "region": "lumbar", "symptom_duration_weeks": 1,
     "findings": ["urinary_retention", "radiculopathy"], "contraindications": ["pregnancy"]},
    {"patient": {"age": 70, "sex": "male", "reference": "MRN-BENCH-0003"},
     "region": "cervical", "symptom_duration_weeks": 0,
     "findings": ["minor_trauma", "midline_cervical_tenderness"]},
]

LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer __KEY__"
local bodies = __BODIES__
local counter = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter % #bodies) + 1])
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local agg = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do agg[k] = (agg[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(agg) do table.insert(parts, string.format('"%d":%d', k, v)) end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"socket_errors":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout,
    table.concat(parts, ",")))
end
"""


@dataclass
class Result:
    """One timed run of the client against one server."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    statuses: dict[int, int]
    server_cpu_s: float = 0.0

    @property
    def cpu_us(self) -> float:
        """Server CPU (all gunicorn processes) per completed request, in µs."""
        return self.server_cpu_s / max(1, self.requests) * 1e6

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds


def ensure_wrk() -> str | None:
    """Path of wrk, installing the Debian package when missing (needs root); else None."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get"):
        try:
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True,
                           capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError):
            return None
    return shutil.which("wrk")


def lua_script(key: str, workdir: Path) -> Path:
    """The wrk script posting BODIES with the key and reporting a JSON result line."""
    bodies = "{" + ", ".join("[[" + json.dumps(b) + "]]" for b in BODIES) + "}"
    path = workdir / "post.lua"
    path.write_text(LUA.replace("__KEY__", key).replace("__BODIES__", bodies))
    return path


def run_wrk(wrk: str, script: Path, server: Server, seconds: float, connections: int,
            client_threads: int) -> Result:
    """Drive ``server`` with wrk for ``seconds``."""
    out = subprocess.run(
        [wrk, f"-t{client_threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
         "--timeout", "5s", "-s", str(script), f"{server.url}/v1/decisions"],
        check=True, capture_output=True, text=True, timeout=seconds + 60)
    line = next(li for li in out.stdout.splitlines() if li.startswith("RESULT "))
    data = json.loads(line[len("RESULT "):])
    statuses = {int(k): v for k, v in data["statuses"].items()}
    bad = sum(v for k, v in statuses.items() if k >= 400)
    return Result(data["requests"], data["duration_us"] / 1e6, data["p50_us"] / 1000,
                  data["p99_us"] / 1000, bad + data["socket_errors"], statuses)


def _py_client(port: int, key: str, seconds: float, queue) -> None:
    """One client process: keep-alive connection, POST in a loop, record latencies."""
    import http.client

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    payloads = [json.dumps(b).encode() for b in BODIES]
    end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < end:
        i += 1
        start = time.perf_counter()
        try:
            conn.request("POST", "/v1/decisions", body=payloads[i % len(payloads)],
                         headers=headers)
            response = conn.getresponse()
            response.read()
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
        except OSError:
            errors += 1
            conn.close()
            continue
        latencies.append(time.perf_counter() - start)
        statuses[response.status] = statuses.get(response.status, 0) + 1
    queue.put((latencies, statuses, errors))


def run_python(server: Server, key: str, seconds: float, connections: int) -> Result:
    """Drive ``server`` with ``connections`` client processes (fallback without wrk)."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_py_client, args=(server.port, key, seconds, queue))
             for _ in range(connections)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    parts = [queue.get(timeout=seconds + 60) for _ in procs]
    elapsed = time.perf_counter() - started
    for p in procs:
        p.join(10)
    latencies = sorted(x for lat, _, _ in parts for x in lat)
    statuses: dict[int, int] = {}
    for _, st, _ in parts:
        for k, v in st.items():
            statuses[k] = statuses.get(k, 0) + v
    errors = sum(e for _, _, e in parts) + sum(v for k, v in statuses.items() if k >= 400)
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else 0.0
    return Result(len(latencies), elapsed, statistics.median(latencies or [0]) * 1000,
                  p99 * 1000, errors, statuses)


def aggregate(results: list[Result]) -> Result:
    """Totals over rounds; p50 is the median of rounds, p99 the WORST round's."""
    statuses: dict[int, int] = {}
    for r in results:
        for k, v in r.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    return Result(sum(r.requests for r in results), sum(r.seconds for r in results),
                  statistics.median(r.p50_ms for r in results),
                  max(r.p99_ms for r in results), sum(r.errors for r in results), statuses,
                  sum(r.server_cpu_s for r in results))


def line(name: str, r: Result) -> str:
    """One table row."""
    codes = " ".join(f"{k}:{v}" for k, v in sorted(r.statuses.items()))
    return (f"{name:28} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.errors:7d} "
            f"{r.cpu_us:9.0f}   {codes}")


def verify_log(server: Server) -> dict:
    """The decision chain, verified directly on the database file the server wrote."""
    from referral_api.store.sqlite.log import SQLiteDecisionLog

    log = SQLiteDecisionLog(server.env["REFERRAL_API_DATABASE"])
    try:
        return log.verify()["decisions"]
    finally:
        log.close()


def baseline_env(root: Path, workdir: Path) -> dict[str, str]:
    """Environment serving the code of checkout ``root`` (its package, wsgi.py and rules)."""
    env = service_env(workdir)
    env["PYTHONPATH"] = os.pathsep.join([str(root), env["PYTHONPATH"]])
    env["REFERRAL_API_RULES_DIR"] = str(root / "rules")
    return env


def bench(args: argparse.Namespace, worker_args: list[str], label: str,
          workdir: Path, with_echo: bool = True) -> tuple[Result | None, Result, dict]:
    """Measure echo (optional) and app under ``worker_args``; returns (echo, app, chain).

    With ``--ceiling`` the same rounds also drive ``ceiling_app:app`` (the service with an
    in-memory recorder instead of the log): the most any durable write path could reach.
    """
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    env = service_env(run_dir)
    key = prepare_database(env)
    wrk = None if args.python_client else ensure_wrk()
    script = lua_script(key, run_dir)

    def drive(server: Server, seconds: float) -> Result:
        cpu_before = server_cpu_seconds(server)
        if wrk:
            result = run_wrk(wrk, script, server, seconds, args.connections,
                             args.client_threads)
        else:
            result = run_python(server, key, seconds, args.connections)
        result.server_cpu_s = server_cpu_seconds(server) - cpu_before
        return result

    base_env = base_key = base_script = None
    if args.baseline:
        base_dir = Path(tempfile.mkdtemp(prefix="base-", dir=workdir))
        base_env = baseline_env(args.baseline, base_dir)
        base_key = prepare_database(base_env)
        base_script = lua_script(base_key, base_dir)

    def drive_base(server: Server, seconds: float) -> Result:
        cpu_before = server_cpu_seconds(server)
        if wrk:
            result = run_wrk(wrk, base_script, server, seconds, args.connections,
                             args.client_threads)
        else:
            result = run_python(server, base_key, seconds, args.connections)
        result.server_cpu_s = server_cpu_seconds(server) - cpu_before
        return result

    echo_results: list[Result] = []
    app_results: list[Result] = []
    ceiling_results: list[Result] = []
    base_results: list[Result] = []
    with contextlib.ExitStack() as stack:
        app_server = stack.enter_context(serving(args.app, env, run_dir / "app.log",
                                                 worker_args))
        echo_server = (stack.enter_context(serving("echo_app:app", env, run_dir / "echo.log",
                                                   worker_args, ready_path="/"))
                       if with_echo else None)
        ceiling_server = (stack.enter_context(serving("ceiling_app:app", env,
                                                      run_dir / "ceiling.log", worker_args))
                          if args.ceiling else None)
        base_server = (stack.enter_context(serving(args.app, base_env, workdir / "base.log",
                                                   worker_args))
                       if base_env else None)
        drive(app_server, args.warmup)
        if base_server:
            drive_base(base_server, args.warmup)
        if echo_server:
            drive(echo_server, args.warmup)
        if ceiling_server:
            drive(ceiling_server, args.warmup)
        for round_no in range(args.rounds):
            if echo_server:
                echo_results.append(drive(echo_server, args.duration))
            # The baseline goes first in every other round, so neither side always follows
            # the echo (a position effect on a loaded machine).
            if base_server and round_no % 2:
                base_results.append(drive_base(base_server, args.duration))
            app_results.append(drive(app_server, args.duration))
            if base_server and not round_no % 2:
                base_results.append(drive_base(base_server, args.duration))
            if ceiling_server:
                ceiling_results.append(drive(ceiling_server, args.duration))
        chain = verify_log(app_server)
    app_log = (run_dir / "app.log").read_text(errors="replace")
    app = aggregate(app_results)
    chain["locked_errors"] = app_log.count("database is locked")
    chain["created_in_rounds"] = sum(r.statuses.get(201, 0) for r in app_results)
    chain["tracebacks"] = app_log.count("Traceback")
    print(f"\n[{label}] client: {'wrk' if wrk else 'python'}, {args.connections} connections, "
          f"{args.rounds} x {args.duration:g} s rounds (after {args.warmup:g} s warm-up)")
    print(f"{'':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
          f"{'cpu µs/req':>9}   statuses")
    echo = aggregate(echo_results) if echo_results else None
    if echo:
        for i, r in enumerate(echo_results):
            print(line(f"  echo round {i + 1}", r))
    for i, r in enumerate(app_results):
        print(line(f"  app round {i + 1}", r))
    for i, r in enumerate(base_results):
        print(line(f"  baseline round {i + 1}", r))
    if echo:
        print(line("echo (bare Flask JSON)", echo))
    print(line("POST /v1/decisions", app))
    base = aggregate(base_results) if base_results else None
    if base:
        print(line("baseline checkout", base))
    if ceiling_results:
        ceiling = aggregate(ceiling_results)
        print(line("same, log replaced by no-op", ceiling))
    print(f"  server CPU per decision: {app.cpu_us:.0f} µs"
          + (f" (echo {echo.cpu_us:.0f} µs)" if echo else "")
          + (f"; baseline {base.cpu_us:.0f} µs" if base else "")
          + (f"; no-op log {ceiling.cpu_us:.0f} µs" if ceiling_results else ""))
    if echo:
        print(f"  ratio app/echo under these settings: {app.rps / echo.rps:.2f}"
              + (f" (baseline {base.rps / echo.rps:.2f})" if base else ""))
        if ceiling_results:
            print(f"  ceiling (no log at all)/echo: {ceiling.rps / echo.rps:.2f}")
    return echo, app, chain


def main() -> int:
    """Run the benchmark; with --check, exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--client-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="default: gunicorn.conf.py")
    parser.add_argument("--worker-class", default=None, help="default: gunicorn.conf.py")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--app", default="wsgi:app")
    parser.add_argument("--python-client", action="store_true", help="do not use wrk")
    parser.add_argument("--compare", action="store_true",
                        help="also measure the app under sync and gthread (2, 4, 8 threads)")
    parser.add_argument("--ceiling", action="store_true",
                        help="also measure the service with its log replaced by a no-op "
                             "(scripts/ceiling_app.py): the most any write path could reach")
    parser.add_argument("--baseline", type=Path, default=None, metavar="DIR",
                        help="also serve the service from the checkout DIR in the same rounds "
                             "(paired before/after)")
    parser.add_argument("--no-check", action="store_true", help="exit 0 on a miss (default)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a target is missed (CI gate)")
    args = parser.parse_args()

    worker_args: list[str] = []
    if args.workers:
        worker_args += ["--workers", str(args.workers)]
    if args.worker_class:
        worker_args += ["--worker-class", args.worker_class]
    if args.threads:
        worker_args += ["--threads", str(args.threads)]
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        workdir = Path(tmp)
        echo, app, chain = bench(args, worker_args,
                                 "gunicorn.conf.py" + (" " + " ".join(worker_args)
                                                       if worker_args else ""), workdir)
        if args.compare:
            for model in (["--worker-class", "sync"],
                          ["--worker-class", "gthread", "--threads", "2"],
                          ["--worker-class", "gthread", "--threads", "4"],
                          ["--worker-class", "gthread", "--threads", "8"]):
                bench(args, model, " ".join(model), workdir)
    assert echo is not None
    ratio = app.rps / echo.rps
    chain_ok = (chain.get("ok") is True and chain.get("checked", -1) >= chain["created_in_rounds"]
                and chain["locked_errors"] == 0 and chain["tracebacks"] == 0)
    print(f"\nserver CPU per decision: {app.cpu_us:.0f} µs (target <= {TARGET_CPU_US:.0f}); "
          f"ratio app/echo: {ratio:.2f} (target >= {TARGET_RATIO:.2f}); "
          f"app p99 {app.p99_ms:.1f} ms (target <= {TARGET_P99_MS:g}); errors {app.errors}")
    print(f"log: chain ok={chain.get('ok')} checked={chain.get('checked')} "
          f"(201s in timed rounds: {chain['created_in_rounds']}), "
          f"'database is locked': {chain['locked_errors']}, tracebacks: {chain['tracebacks']}")
    met = (app.cpu_us <= TARGET_CPU_US and ratio >= TARGET_RATIO
           and app.p99_ms <= TARGET_P99_MS and app.errors == 0 and chain_ok)
    print("targets: " + ("MET" if met else "MISSED"))
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
