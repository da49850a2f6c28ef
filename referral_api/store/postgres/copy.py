"""Moving a log: copy a SQLite decision log into an empty PostgreSQL database, and prove it.

Everything is copied as stored (ids, ``seq``, timestamps, JSON text, ``prev_hash``,
``hash``): the chains are the same chains, so an anchor saved from the SQLite log verifies
against the PostgreSQL copy. The source is read in one read transaction (a consistent
snapshot, while the old service may still be running); the target is written in one
transaction holding the three chain locks, with ``COPY``, and refused unless empty.
Afterwards the target's chains are verified from genesis and their heads and counts compared
with the source's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from referral_api.store.postgres.db import connect
from referral_api.store.postgres.log import CHAIN_LOCKS, PostgresDecisionLog, lock_chain
from referral_api.store.postgres.migrations import migrate

#: Tables copied, in an order that satisfies the foreign keys.
TABLES = ("decisions", "feedback", "feedback_latest", "idempotency", "api_keys", "jwt_seen",
          "access_log")
_CHUNK = 2000


class CopyRefused(Exception):
    """The copy was not started (target not empty, source missing or not migrated)."""


class CopyFailed(Exception):
    """The copy was made but the target does not verify against the source."""


@dataclass
class CopyReport:
    """What was copied and the anchors that were checked."""

    rows: dict[str, int]
    heads: dict[str, dict]


def _source_heads(conn: sqlite3.Connection) -> dict[str, dict]:
    heads = {}
    for table in CHAIN_LOCKS:
        row = conn.execute(
            f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1"  # noqa: S608
        ).fetchone()
        heads[table] = {"count": row[0] if row else 0, "head": row[1] if row else "0" * 64}
    return heads


def copy_sqlite_to_postgres(
    source: str | Path, url: str, *, progress: Callable[[str, int], None] | None = None
) -> CopyReport:
    """Copy the SQLite log at ``source`` into the PostgreSQL database at ``url``.

    Migrates the target if needed; raises :class:`CopyRefused` when it already holds
    decisions, feedback, access-log entries or keys, and :class:`CopyFailed` when the copy
    does not verify. ``progress(table, rows_so_far)`` is called after each chunk.
    """
    path = Path(source)
    if not path.exists():
        raise CopyRefused(f"no SQLite database at {path}")
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        src.execute("BEGIN")  # one snapshot for the whole copy
        known = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = [t for t in TABLES if t not in known]
        if missing:
            raise CopyRefused(f"the source is not a migrated decision log (missing {missing})")
        heads = _source_heads(src)
        rows: dict[str, int] = {}
        with connect(url) as dst:
            migrate(dst)
            with dst.transaction():
                for chain in CHAIN_LOCKS:
                    lock_chain(dst, chain)
                for table in ("decisions", "feedback", "access_log", "api_keys"):
                    found = dst.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()  # noqa: S608
                    if found is not None:
                        raise CopyRefused(f"the target is not empty: {table} has rows")
                for table in TABLES:
                    rows[table] = _copy_table(src, dst, table, progress)
        src.execute("COMMIT")
    finally:
        src.close()
    _check(url, heads)
    return CopyReport(rows=rows, heads=heads)


def _copy_table(src: sqlite3.Connection, dst: psycopg.Connection, table: str,
                progress: Callable[[str, int], None] | None) -> int:
    cursor = src.execute(f"SELECT * FROM {table}")  # noqa: S608 - constant table names
    columns = [d[0] for d in cursor.description]
    copied = 0
    with dst.cursor().copy(
        f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    ) as copy:
        while True:
            chunk = cursor.fetchmany(_CHUNK)
            if not chunk:
                break
            for row in chunk:
                copy.write_row(row)
            copied += len(chunk)
            if progress is not None:
                progress(table, copied)
    return copied


def _check(url: str, heads: dict[str, dict]) -> None:
    log = PostgresDecisionLog(url)
    try:
        decisions = heads["decisions"]
        report = log.verify(expect_head=decisions["head"] if decisions["count"] else None,
                            expect_count=decisions["count"])
    finally:
        log.close()
    for chain, expected in heads.items():
        result = report[chain]
        if not result["ok"]:
            raise CopyFailed(f"{chain}: {result['reason']} (seq {result['first_bad_seq']})")
        if result["checked"] != expected["count"] or result["head"] != expected["head"]:
            raise CopyFailed(f"{chain}: the target's head or count differs from the source's")
