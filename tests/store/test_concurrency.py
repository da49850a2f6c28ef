"""Several worker processes appending at once: no lock errors, one unbroken chain."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from referral_api.store.interface import LogUnavailable
from referral_api.store.sqlite.log import SQLiteDecisionLog
from tests.factories import make_new

APPENDS_PER_PROCESS = 200


def _worker(log: SQLiteDecisionLog, name: str, queue) -> None:  # runs in a forked child
    errors = 0
    seqs = []
    for i in range(APPENDS_PER_PROCESS):
        try:
            record, _ = log.append(
                make_new(client=name, idempotency_key=f"{name}-{i}", body_sha256="c" * 64)
            )
            seqs.append(record["chain"]["seq"])
        except LogUnavailable:
            errors += 1
    queue.put((name, errors, seqs))


def test_two_processes_append_concurrently(log: SQLiteDecisionLog, db_path: Path, raw) -> None:
    log.append(make_new())  # the parent opens its connection before forking, like gunicorn
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(log, f"w{n}", queue)) for n in range(2)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    assert [errors for _, errors, _ in results] == [0, 0]
    all_seqs = sorted(s for _, _, seqs in results for s in seqs)
    assert all_seqs == list(range(2, 2 + 2 * APPENDS_PER_PROCESS))
    conn = raw(db_path)
    seqs = [row[0] for row in conn.execute("SELECT seq FROM decisions ORDER BY seq")]
    assert seqs == list(range(1, 2 + 2 * APPENDS_PER_PROCESS))
    assert conn.execute("SELECT count(*) FROM idempotency").fetchone() == (400,)
    conn.close()
    result = log.verify()["decisions"]
    assert result["ok"] is True and result["checked"] == 1 + 2 * APPENDS_PER_PROCESS
    # The parent's connection still works after the children used theirs.
    assert log.append(make_new())[0]["chain"]["seq"] == 2 + 2 * APPENDS_PER_PROCESS
