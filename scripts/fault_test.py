"""Fault test: load the served app while a worker is SIGKILLed, the disk fills up and the
database becomes read-only; the service must answer 503 problem+json while it cannot log
(never an unlogged decision), recover when the fault clears, and keep the chain intact.

How the faults are made (needs root; loopback only; bounded in time and count):
- the database directory is a small tmpfs mounted for the test (``mount -t tmpfs -o
  size=…``), so "disk full" is real ENOSPC: a filler file takes the free space, then is
  removed;
- "read-only": root ignores ``chmod``, and a filesystem with files open for writing cannot be
  remounted read-only (EBUSY), so a read-only bind mount of the directory is stacked on its
  own path (``mount --bind`` + ``remount,bind,ro``) and the workers are restarted gracefully
  (SIGHUP to the master) so that they reopen the database through it (EROFS); the fault is
  cleared with a lazy unmount of that bind mount, after which the failed connections reopen
  on the writable filesystem;
- "killed" is SIGKILL to one worker mid-load (gunicorn starts a new one).

Usage (root): .venv/bin/python scripts/fault_test.py   — prints the figures per phase.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.gunicorn_harness import prepare_database, request, service_env, serving
from scripts.load_test import LoadGenerator, audit

# Large enough that the load itself never fills it (a decision is ~5 KB in the log and WAL):
# "disk full" must be the fault we inject, not a side effect of the other phases.
TMPFS_SIZE = "256m"


class FaultUnsupported(RuntimeError):
    """The machine does not allow the fault to be simulated (not root, no mount)."""


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = TMPFS_SIZE):
    """Mount a tmpfs of ``size`` on ``path`` for the block (root only)."""
    if os.geteuid() != 0:
        raise FaultUnsupported("root is needed to mount a tmpfs and to drop privileges")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        raise FaultUnsupported(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        for _ in range(50):
            if (
                subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode
                == 0
            ):
                break
            time.sleep(0.1)


def fill(directory: Path) -> Path:
    """Write a filler file until the filesystem is full (ENOSPC); returns its path."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1 << 9):  # then the last partial blocks
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise FaultUnsupported(f"mount {' '.join(args)}: {done.stderr.strip()}")


@contextlib.contextmanager
def read_only_view(directory: Path, staging: Path):
    """Stack a read-only bind mount of ``directory`` on its own path for the block.

    The read-only bind is made on ``staging`` first (a mount with open writers cannot be
    made read-only, a fresh bind has none), then bound onto ``directory``.
    """
    staging.mkdir(exist_ok=True)
    _mount("--bind", str(directory), str(staging))
    try:
        _mount("-o", "remount,bind,ro", str(staging))
        _mount("--bind", str(staging), str(directory))
        try:
            yield
        finally:
            subprocess.run(["umount", "-l", str(directory)], check=True,
                           capture_output=True, timeout=30)
    finally:
        subprocess.run(["umount", "-l", str(staging)], check=True, capture_output=True,
                       timeout=30)


def _phase(load: LoadGenerator, seconds: float) -> dict:
    mark = len(load.answers)
    load.wait(seconds)
    got = load.since(mark)
    return {"requests": len(got), "statuses": dict(sorted(Counter(a.status for a in got).items()))}


def run(phase_seconds: float = 2.0, clients: int = 6, max_requests: int = 20_000) -> dict:
    """Run every fault in turn under load; return per-phase figures and the final audit."""
    with tempfile.TemporaryDirectory(prefix="fault-test-") as tmp:
        workdir = Path(tmp)
        with small_filesystem(workdir / "db") as db_dir:
            env = service_env(workdir)
            key = prepare_database(env)
            log_path = workdir / "gunicorn.log"
            extra: tuple[str, ...] = ()
            phases: dict[str, dict] = {}
            with serving("wsgi:app", env, log_path, extra, ready_path="/readyz") as server:
                load = LoadGenerator(
                    server, key, clients=clients, max_requests=max_requests
                ).start()
                try:
                    phases["baseline"] = _phase(load, phase_seconds)

                    victim = server.worker_pids()[0]
                    os.kill(victim, signal.SIGKILL)
                    phases["worker SIGKILLed"] = _phase(load, phase_seconds)

                    filler = fill(db_dir)
                    phases["disk full"] = _phase(load, phase_seconds * 1.5)
                    phases["disk full"]["readyz"] = request(server, "GET", "/readyz")[0]
                    filler.unlink()
                    phases["disk space freed"] = _phase(load, phase_seconds)
                    phases["disk space freed"]["readyz"] = request(server, "GET", "/readyz")[0]

                    with read_only_view(db_dir, workdir / "ro-staging"):
                        os.kill(server.process.pid, signal.SIGHUP)  # workers reopen the db
                        phases["read-only"] = _phase(load, phase_seconds * 1.5)
                        phases["read-only"]["readyz"] = request(server, "GET", "/readyz")[0]
                    phases["writable again"] = _phase(load, phase_seconds * 1.5)
                    phases["writable again"]["readyz"] = request(server, "GET", "/readyz")[0]
                finally:
                    load.stop()
            report = audit(env["REFERRAL_API_DATABASE"], load.answers, log_path)
            if os.environ.get("FAULT_TEST_KEEP_LOG"):
                shutil.copy(log_path, os.environ["FAULT_TEST_KEEP_LOG"])
        report["phases"] = phases
        return report


def main() -> int:
    """CLI: run the fault test, print the figures, exit 1 on a violation."""
    try:
        report = run()
    except FaultUnsupported as exc:
        print(f"fault test not run: {exc}")
        return 2
    print(json.dumps(report, indent=2))
    ok = (
        report["missing_from_log"] == 0
        and report["chain_ok"]
        and report["server_errors_other_than_503"] == 0
        and report["503_not_problem_json"] == 0
    )
    print("fault test: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
