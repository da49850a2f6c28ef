"""Start the service (or the echo baseline) under real gunicorn on loopback, for the benchmark,
the load test and the fault test.

Everything lives in a temporary directory: the database (``REFERRAL_API_DATABASE``), the
secret, the lock file, gunicorn's log. The server only binds 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = PROJECT_ROOT / "scripts"
BIN = Path(sys.executable).parent
GUNICORN_CONF = PROJECT_ROOT / "gunicorn.conf.py"

#: A realistic request: lumbar radiculopathy after six weeks of care, candidate for surgery.
DECISION_BODY = {
    "patient": {"age": 52, "sex": "male", "reference": "MRN-BENCH-0001"},
    "region": "lumbar",
    "symptom_duration_weeks": 10,
    "conservative_care_weeks": 6,
    "intervention_candidate": True,
    "findings": ["radiculopathy", "neurologic_deficit"],
    "contraindications": [],
    "egfr": 75,
    "ordering_clinician": "staff-4711",
}


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(workdir: Path) -> dict[str, str]:
    """Environment of a service whose database and secret live under ``workdir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFERRAL_API_")}
    env.update(
        REFERRAL_API_DATABASE=str(workdir / "db" / "decisions.sqlite"),
        REFERRAL_API_RULES_DIR=str(PROJECT_ROOT / "rules"),
        REFERRAL_API_LOG_LEVEL="warning",
        # PROJECT_ROOT for wsgi.py, scripts/ for echo_app.py; a caller's PYTHONPATH is kept
        # (e.g. to serve an experimental app module).
        PYTHONPATH=os.pathsep.join(p for p in (str(PROJECT_ROOT), str(SCRIPTS),
                                                os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


def prepare_database(env: dict[str, str]) -> str:
    """``referral-api init-db`` then ``keys create --role evaluator``; returns the key."""
    cli = str(BIN / "referral-api")
    subprocess.run([cli, "init-db", "--no-admin-key"], env=env, check=True,
                   capture_output=True, cwd=PROJECT_ROOT, timeout=60)
    made = subprocess.run([cli, "keys", "create", "--role", "evaluator", "--role", "auditor",
                           "--label", "bench"], env=env, check=True, capture_output=True,
                          text=True, cwd=PROJECT_ROOT, timeout=60)
    return made.stdout.strip()


@dataclass
class Server:
    """A running gunicorn master (started by us) and where to reach it."""

    process: subprocess.Popen
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL on loopback."""
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """Pids of the gunicorn workers (children of the master)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):
            return [int(p) for p in children.read_text().split()]
        return []


def server_cpu_seconds(server: Server) -> float:
    """User + system CPU seconds used so far by the gunicorn master and its workers."""
    import psutil

    total = 0.0
    with contextlib.suppress(psutil.Error):
        master = psutil.Process(server.process.pid)
        for proc in [master, *master.children()]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def start_gunicorn(app_spec: str, env: dict[str, str], log_path: Path,
                   extra: Sequence[str] = (), ready_path: str = "/healthz",
                   timeout: float = 30.0) -> Server:
    """Start ``gunicorn -c gunicorn.conf.py [extra] app_spec`` on a free loopback port."""
    port = free_port()
    args = [str(BIN / "gunicorn"), "--config", str(GUNICORN_CONF),
            "--bind", f"127.0.0.1:{port}", "--access-logfile", "-", *extra, app_spec]
    with log_path.open("ab") as log:
        process = subprocess.Popen(args, env=env, cwd=PROJECT_ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)
    server = Server(process, port, log_path, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log_path}")
        with contextlib.suppress(OSError):
            status, _, _ = request(server, "GET", ready_path)
            if status < 500:
                return server
        time.sleep(0.1)
    stop(server)
    raise RuntimeError(f"gunicorn did not become ready in {timeout} s; see {log_path}")


def stop(server: Server, timeout: float = 15.0) -> None:
    """Stop the gunicorn master we started (SIGTERM, then SIGKILL) and reap it."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout)


@contextlib.contextmanager
def serving(app_spec: str, env: dict[str, str], log_path: Path,
            extra: Sequence[str] = (), ready_path: str = "/healthz") -> Iterator[Server]:
    """Context manager around :func:`start_gunicorn` / :func:`stop`."""
    server = start_gunicorn(app_spec, env, log_path, extra, ready_path)
    try:
        yield server
    finally:
        stop(server)


def request(server: Server, method: str, path: str, body: object = None,
            headers: dict[str, str] | None = None, timeout: float = 10.0
            ) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request on a fresh connection: ``(status, headers, body)``."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json"} if payload is not None else {}
        sent.update(headers or {})
        conn.request(method, path, body=payload, headers=sent)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            response.read()
    finally:
        conn.close()
