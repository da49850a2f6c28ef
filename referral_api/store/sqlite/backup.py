"""Online backup and restore of the SQLite decision database, verified both ways.

``backup`` copies a live database with SQLite's online backup API in one step, inside one read
transaction: the copy is the database as of one instant, taken while the workers go on writing
(in WAL mode readers never block the writer), never a file copy that could catch the main file
and the WAL at different moments. The copy is written beside its destination, fsynced, every
hash chain on it is verified, and only then is it renamed into place (mode 0600).

``restore`` verifies a copy before anything is touched, refuses one whose chain is broken,
refuses to overwrite a database that holds records unless told, copies it with the same API,
and verifies the result.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from referral_api.store.sqlite.db import DEFAULT_BUSY_TIMEOUT_MS, connect
from referral_api.store.sqlite.log import SQLiteDecisionLog

__all__ = ["BackupError", "ChainReport", "backup", "record_count", "restore", "verify_file"]

#: Tables whose rows make a database "not empty" for restore (the audit record).
RECORD_TABLES = ("decisions", "feedback", "access_log")


class BackupError(RuntimeError):
    """The backup or restore was refused or failed; nothing was left half-written."""


@dataclass(frozen=True)
class ChainReport:
    """The verification of every chain of one database file."""

    chains: dict[str, dict]

    @property
    def ok(self) -> bool:
        """True when every chain holds."""
        return all(part.get("ok") for part in self.chains.values())

    def lines(self) -> list[str]:
        """One line per chain: head hash and count (the anchor to keep), or where it broke."""
        out = []
        for name, part in self.chains.items():
            if part.get("ok"):
                out.append(f"{name}: ok, {part['checked']} records, head {part['head']}")
            else:
                out.append(f"{name}: BROKEN at {part.get('first_bad')}: {part.get('reason')}")
        return out


def verify_file(path: Path) -> ChainReport:
    """Verify every chain of the database at ``path``."""
    log = SQLiteDecisionLog(path)
    try:
        return ChainReport(log.verify())
    finally:
        log.close()


def record_count(path: Path) -> int:
    """Rows in the chained tables of ``path`` (0 for a missing file or an empty schema)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        total = 0
        for table in RECORD_TABLES:
            exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                  [table]).fetchone()
            if exists:
                # Table names come from this module's constant, never from input.
                total += conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
        return total
    finally:
        conn.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source: Path, target: Path, *, read_only_source: bool = False) -> None:
    """Copy ``source`` into ``target`` with the online backup API, in one step."""
    if read_only_source:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None)
    else:
        src = connect(source, busy_timeout_ms=DEFAULT_BUSY_TIMEOUT_MS).conn
    try:
        dst = sqlite3.connect(str(target), isolation_level=None,
                              timeout=DEFAULT_BUSY_TIMEOUT_MS / 1000)
        try:
            # pages=-1: everything in one step, so the copy is one consistent snapshot (a
            # stepwise copy restarts whenever another connection writes).
            src.backup(dst, pages=-1)
        finally:
            dst.close()
    finally:
        src.close()


def _new_private_file(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # owner-only from birth
    os.close(fd)


def _remove(path: Path) -> None:
    for leftover in (path, *_sidecars(path)):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def backup(source: Path, dest: Path) -> ChainReport:
    """Copy the live database ``source`` to ``dest`` (which must not exist) and verify it.

    Raises :class:`BackupError` when ``dest`` exists or the copy's chains do not hold (then
    no file is left at ``dest``).
    """
    if not source.exists():
        raise BackupError(f"no database at {source}")
    if dest.exists():
        raise BackupError(f"{dest} exists: choose a new file name (backups are never overwritten)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    _new_private_file(partial)
    try:
        _copy(source, partial)
        report = verify_file(partial)
        if not report.ok:
            raise BackupError("the copy does not verify: " + "; ".join(report.lines()))
        _single_file(partial)
        _fsync(partial)
        os.link(partial, dest)  # fails if dest appeared meanwhile: never overwrite
        _fsync(dest.parent)
    finally:
        _remove(partial)
    return report


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _single_file(path: Path) -> None:
    """Fold the copy's WAL back into its main file and leave WAL mode: one self-contained file
    (a restore or an ``sqlite3`` session turns WAL back on when it opens it)."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()


def restore(source: Path, target: Path, *, force: bool = False) -> tuple[ChainReport,
                                                                         ChainReport]:
    """Restore the backup ``source`` into the database ``target``; return both reports.

    Raises :class:`BackupError` when ``source`` does not verify, or ``target`` holds records
    and ``force`` is not set, or the restored database does not verify.
    """
    if not source.exists():
        raise BackupError(f"no backup at {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Verify an exact copy, so that the backup file itself is never opened for writing.
    staged = target.with_name(f".{target.name}.restore-{os.getpid()}")
    _new_private_file(staged)
    try:
        _copy(source, staged, read_only_source=True)
        before = verify_file(staged)
        if not before.ok:
            raise BackupError("the backup's chain is broken; nothing restored: "
                              + "; ".join(before.lines()))
        existing = record_count(target)
        if existing and not force:
            raise BackupError(
                f"{target} already holds {existing} records; restore refuses to overwrite "
                "them (stop the server, move the file away, or pass --force)")
        if not target.exists():
            _new_private_file(target)
        _copy(staged, target)
    finally:
        _remove(staged)
    after = verify_file(target)
    if not after.ok:
        raise BackupError("the restored database does not verify: " + "; ".join(after.lines()))
    return before, after
