"""Several app hosts on one PostgreSQL: real gunicorn instances, concurrent clients, faults.

Used by ``test_multihost.py`` and by ``scripts/bench_pg_http.py``. Loopback only, bounded in
time and in requests. Each "host" is one gunicorn master with its sync workers, started in
its own process group (so that SIGKILL takes the master and its workers at once, as when a
machine dies), all pointed at the same ``postgresql://`` URL.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from referral_api.config import PROJECT_ROOT

SECRET = "multi-host-test-secret-0123456789-abcdefghijkl"
DECISION_BODY = json.dumps({
    "patient": {"age": 45, "sex": "female", "reference": "MRN-0001"},
    "region": "lumbar",
    "symptom_duration_weeks": 2,
    "findings": [],
}).encode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Host:
    """One gunicorn instance (master + workers) on 127.0.0.1:``port``."""

    url: str
    port: int = field(default_factory=_free_port)
    workers: int = 2
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    def start(self, log_dir: Path) -> None:
        env = {**os.environ, "REFERRAL_API_DATABASE": self.url,
               "REFERRAL_API_SECRET_KEY": SECRET, "REFERRAL_API_LOG_LEVEL": "warning"}
        self.log_path = log_dir / f"host-{self.port}.log"
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(
                [str(gunicorn), "--config", str(PROJECT_ROOT / "gunicorn.conf.py"),
                 "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                 "--access-logfile", "/dev/null", "wsgi:app"],
                cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def get(self, path: str) -> int:
        """Status of GET ``path`` (0 when nothing answers)."""
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
            return status
        except OSError:
            return 0

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.get("/readyz") == 200:
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"host on port {self.port} did not become ready; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL the master and its workers at once (a host dying)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), then SIGKILL what is left."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def server_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


@dataclass
class Answer:
    """One request's outcome: ``status`` 0 = no HTTP answer (connection refused or cut)."""

    host: int
    status: int
    seconds: float
    decision_id: str | None = None
    problem_json: bool = False


@dataclass
class Load:
    """``clients`` threads posting decisions round-robin to the live hosts."""

    hosts: list[Host]
    key: str
    clients: int = 6
    max_requests: int = 20_000
    answers: list[Answer] = field(default_factory=list)
    dead: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sent: int = 0
    _threads: list[threading.Thread] = field(default_factory=list)

    def _ticket(self) -> int | None:
        with self._lock:
            if self._stop.is_set() or self._sent >= self.max_requests:
                return None
            live = [i for i in range(len(self.hosts)) if i not in self.dead]
            if not live:
                return None
            self._sent += 1
            return live[self._sent % len(live)]

    def _client(self) -> None:
        conns: dict[int, http.client.HTTPConnection] = {}
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        while (index := self._ticket()) is not None:
            started = time.perf_counter()
            answer = Answer(index, 0, 0.0)
            try:
                conn = conns.get(index)
                if conn is None:
                    conn = conns[index] = http.client.HTTPConnection(
                        "127.0.0.1", self.hosts[index].port, timeout=30)
                conn.request("POST", "/v1/decisions", body=DECISION_BODY, headers=headers)
                response = conn.getresponse()
                body = response.read()
                answer.status = response.status
                answer.problem_json = (response.getheader("Content-Type", "")
                                       .startswith("application/problem+json"))
                if response.status == 201:
                    answer.decision_id = json.loads(body)["decision_id"]
            except (OSError, http.client.HTTPException, ValueError):
                conns.pop(index, None)
                time.sleep(0.05)  # the host is going away: do not spin
            answer.seconds = time.perf_counter() - started
            with self._lock:
                self.answers.append(answer)

    def start(self) -> None:
        for _ in range(self.clients):
            thread = threading.Thread(target=self._client, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def mark(self) -> int:
        """Index of the next answer (to cut the answers into phases)."""
        with self._lock:
            return len(self.answers)


def summary(answers: list[Answer]) -> dict:
    """Status counts, throughput figures and latency of the 201s of ``answers``."""
    statuses = Counter(a.status for a in answers)
    ok = sorted(a.seconds for a in answers if a.status == 201)
    return {
        "statuses": dict(statuses),
        "p50_ms": statistics.median(ok) * 1000 if ok else None,
        "p99_ms": ok[int(len(ok) * 0.99)] * 1000 if ok else None,
        "503_not_problem_json": sum(1 for a in answers if a.status == 503
                                    and not a.problem_json),
    }
