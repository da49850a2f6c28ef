"""Load test: several gunicorn workers writing decisions concurrently, then audit the log.

Loopback only, bounded in time AND in request count. Checks: no "database is locked" in
the server log, no 5xx, every decision answered 201 is in the log afterwards, and the hash
chain verifies.

Usage: .venv/bin/python scripts/load_test.py [--seconds 8] [--clients 8] [--max-requests 4000]
       [--workers 2] [--worker-class sync|gthread] [--threads N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.gunicorn_harness import DECISION_BODY, Server, prepare_database, service_env, serving


@dataclass
class Answer:
    """What one request got back."""

    status: int  # 0 = connection error (no HTTP answer, e.g. the worker was killed)
    decision_id: str | None = None
    content_type: str = ""
    body: bytes = b""


@dataclass
class LoadGenerator:
    """``clients`` threads posting decisions until stopped or ``max_requests`` are sent."""

    server: Server
    key: str
    clients: int = 8
    max_requests: int = 10_000
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sent: int = 0
    _threads: list[threading.Thread] = field(default_factory=list)

    def _take_ticket(self) -> bool:
        with self._lock:
            if self._sent >= self.max_requests or self._stop.is_set():
                return False
            self._sent += 1
            return True

    def _client(self, n: int) -> None:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
        body = dict(DECISION_BODY, ordering_clinician=f"load-{n}")
        payload = json.dumps(body).encode()
        conn: http.client.HTTPConnection | None = None
        while self._take_ticket():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
            try:
                conn.request("POST", "/v1/decisions", body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
                answer = Answer(0)
            else:
                answer = Answer(response.status, content_type=response.getheader(
                    "Content-Type", ""), body=data if response.status != 201 else b"")
                if response.status in (200, 201):
                    answer.decision_id = json.loads(data)["decision_id"]
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            with self._lock:
                self.answers.append(answer)
        if conn is not None:
            conn.close()

    def start(self) -> LoadGenerator:
        """Start the client threads."""
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True)
                         for n in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait for the requests in flight."""
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def wait(self, seconds: float) -> None:
        """Let the load run for ``seconds`` (or until the request budget is spent)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(t.is_alive() for t in self._threads):
            time.sleep(0.05)

    def since(self, mark: int) -> list[Answer]:
        """Answers received after ``mark`` (a previous ``len(answers)``)."""
        with self._lock:
            return self.answers[mark:]


def audit(database: str | Path, answers: list[Answer], server_log: Path) -> dict:
    """Check the log against what the clients were told."""
    from referral_api.store.sqlite.log import SQLiteDecisionLog

    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        logged = {row[0] for row in conn.execute("SELECT decision_id FROM decisions")}
    finally:
        conn.close()
    log = SQLiteDecisionLog(database)
    try:
        chain = log.verify()["decisions"]
    finally:
        log.close()
    returned = [a.decision_id for a in answers if a.status == 201]
    text = server_log.read_text(errors="replace")
    statuses = Counter(a.status for a in answers)
    unavailable = [a for a in answers if a.status == 503]
    return {
        "requests": len(answers),
        "statuses": dict(sorted(statuses.items())),
        "returned_201": len(returned),
        "missing_from_log": sum(1 for d in returned if d not in logged),
        "logged": len(logged),
        "chain_ok": chain["ok"],
        "chain_checked": chain.get("checked"),
        "server_errors_other_than_503": sum(v for k, v in statuses.items()
                                            if k >= 500 and k != 503),
        "503_not_problem_json": sum(1 for a in unavailable
                                    if a.content_type != "application/problem+json"
                                    or b"decision_id" in a.body),
        "database_is_locked": text.count("database is locked"),
        "tracebacks": text.count("Traceback"),
    }


def run(seconds: float = 8.0, clients: int = 8, max_requests: int = 4000,
        worker_args: tuple[str, ...] = ()) -> dict:
    """Serve the app with gunicorn on a temporary database, load it, audit the log."""
    with tempfile.TemporaryDirectory(prefix="load-test-") as tmp:
        workdir = Path(tmp)
        env = service_env(workdir)
        key = prepare_database(env)
        log_path = workdir / "gunicorn.log"
        with serving("wsgi:app", env, log_path, worker_args, ready_path="/readyz") as server:
            load = LoadGenerator(server, key, clients=clients, max_requests=max_requests)
            started = time.monotonic()
            load.start()
            load.wait(seconds)
            load.stop()
            elapsed = time.monotonic() - started
        report = audit(env["REFERRAL_API_DATABASE"], load.answers, log_path)
        report["seconds"] = round(elapsed, 2)
        report["req_per_s"] = round(len(load.answers) / elapsed, 1)
        return report


def main() -> int:
    """CLI: run the load test, print the report, exit 1 on any violation."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-requests", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--worker-class", default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    extra: list[str] = []
    for flag, value in (("--workers", args.workers), ("--worker-class", args.worker_class),
                        ("--threads", args.threads)):
        if value:
            extra += [flag, str(value)]
    report = run(args.seconds, args.clients, args.max_requests, tuple(extra))
    print(json.dumps(report, indent=2))
    ok = (report["missing_from_log"] == 0 and report["chain_ok"]
          and report["database_is_locked"] == 0 and report["statuses"].keys() <= {201}
          and report["tracebacks"] == 0)
    print("load test: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
