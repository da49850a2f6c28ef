"""``referral-api backup`` under concurrent writes, and ``restore`` (issue 14 item 4)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from referral_api.store.sqlite.log import SQLiteDecisionLog
from tests.factories import make_new

#: Decisions the writer thread appends while the backup runs.
CONCURRENT_WRITES = 150


def _anchor(output: str) -> tuple[str, int]:
    (line,) = [x for x in output.splitlines() if x.startswith("anchor:")]
    parts = line.split()
    return parts[2], int(parts[4])


def test_backup_under_concurrent_writes_then_restore(env: Path, tmp_path: Path, run,
                                                     monkeypatch) -> None:
    assert run("init-db", "--no-admin-key")[0] == 0
    log = SQLiteDecisionLog(env)
    for _ in range(20):
        log.append(make_new())
    started, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        own = SQLiteDecisionLog(env)
        try:
            for i in range(CONCURRENT_WRITES):
                own.append(make_new())
                if i == 10:
                    started.set()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            own.close()
            started.set()
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    started.wait(30)
    dest = tmp_path / "backups" / "b1.sqlite"
    code, out = run("backup", str(dest))
    thread.join(60)
    assert code == 0, out
    assert not errors and done.is_set()
    assert "decisions: ok" in out and "feedback: ok" in out and "access_log: ok" in out
    head, count = _anchor(out)
    # A snapshot from the middle of the writes: more than before them, fewer than after.
    assert 30 <= count < 20 + CONCURRENT_WRITES
    assert dest.stat().st_mode & 0o777 == 0o600
    assert not list(dest.parent.glob(".*partial*"))
    assert not Path(str(dest) + "-wal").exists()  # one self-contained file
    live = log.verify()["decisions"]
    assert live["ok"] and live["checked"] == 20 + CONCURRENT_WRITES
    log.close()

    # Restore into a new, empty location: verified before and after, the anchor holds there.
    target = tmp_path / "restored" / "decisions.sqlite"
    monkeypatch.setenv("REFERRAL_API_DATABASE", str(target))
    code, out = run("restore", str(dest))
    assert code == 0, out
    assert out.count(f"anchor: --expect-head {head} --expect-count {count}") == 2
    code, verified = run("decisions", "verify", "--expect-head", head,
                         "--expect-count", str(count))
    assert code == 0, verified
    assert target.stat().st_mode & 0o777 == 0o600
    # A backup is never overwritten.
    monkeypatch.setenv("REFERRAL_API_DATABASE", str(env))
    code, out = run("backup", str(dest))
    assert code != 0 and "exists" in out


def test_restore_refuses_a_non_empty_target_unless_forced(env: Path, tmp_path: Path,
                                                          run) -> None:
    run("init-db", "--no-admin-key")
    log = SQLiteDecisionLog(env)
    log.append(make_new())
    dest = tmp_path / "b.sqlite"
    assert run("backup", str(dest))[0] == 0
    for _ in range(3):
        log.append(make_new())
    log.close()
    code, out = run("restore", str(dest))
    assert code != 0 and "already holds 4 records" in out
    assert SQLiteDecisionLog(env).verify()["decisions"]["checked"] == 4  # untouched
    code, out = run("restore", "--force", str(dest))
    assert code == 0, out
    assert SQLiteDecisionLog(env).verify()["decisions"]["checked"] == 1


def test_restore_refuses_a_backup_whose_chain_is_broken(env: Path, tmp_path: Path, run,
                                                        monkeypatch) -> None:
    run("init-db", "--no-admin-key")
    log = SQLiteDecisionLog(env)
    for _ in range(3):
        log.append(make_new())
    log.close()
    dest = tmp_path / "b.sqlite"
    assert run("backup", str(dest))[0] == 0
    # Tamper with the copy: the triggers must be dropped first, the chain still tells.
    conn = sqlite3.connect(dest)
    conn.executescript("DROP TRIGGER decisions_no_update;"
                       "UPDATE decisions SET urgency = 'routine' WHERE seq = 2;")
    conn.close()
    target = tmp_path / "other" / "decisions.sqlite"
    monkeypatch.setenv("REFERRAL_API_DATABASE", str(target))
    code, out = run("restore", str(dest))
    assert code != 0 and "chain is broken" in out and "record altered" in out
    assert not target.exists()
