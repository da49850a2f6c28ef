"""Operator tasks on a store that are not part of serving: file permissions, backup and
restore, the registry of secret key ids. The CLI reaches them here, never a backend module.

Each task is implemented for the SQLite backend; another backend raises
:class:`NotSupported` with what to use instead (e.g. ``pg_dump`` for a backup) until it
implements the task.
"""

from __future__ import annotations

from pathlib import Path

from referral_api.secret_key import Keyring
from referral_api.store.interface import Store
from referral_api.store.sqlite import SQLiteStore
from referral_api.store.sqlite import backup as sqlite_backup
from referral_api.store.sqlite.secret_keys import KeyRecord, SecretKeyRegistry

__all__ = ["BackupError", "ChainReport", "KeyRecord", "NotSupported", "backup",
           "keyring_problems", "owner_only", "reconcile_keyring", "restore", "secret_keys"]

BackupError = sqlite_backup.BackupError
ChainReport = sqlite_backup.ChainReport


class NotSupported(RuntimeError):
    """The task is not implemented for this backend (the message says what to use)."""


def _sqlite(store: Store, task: str, instead: str) -> SQLiteStore:
    if not isinstance(store, SQLiteStore):
        raise NotSupported(f"{task} is implemented for SQLite; for {store.describe()} {instead}")
    return store


def owner_only(store: Store) -> list[str]:
    """Create the database file with mode 0600 before SQLite opens it (SQLite gives its
    ``-wal`` and ``-shm`` files the database's mode), or tighten existing files to 0600;
    returns the names changed. Nothing to do for a database server."""
    if not isinstance(store, SQLiteStore):
        return []
    database = store.path
    database.parent.mkdir(parents=True, exist_ok=True)
    if not database.exists():
        import os

        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return []
    changed = []
    for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
        if path.exists() and path.stat().st_mode & 0o077:
            path.chmod(0o600)
            changed.append(path.name)
    return changed


def backup(store: Store, dest: Path) -> ChainReport:
    """A verified online copy of the live database at ``dest`` (see the SQLite module)."""
    sqlite = _sqlite(store, "backup", "use pg_dump or a base backup (docs/operations.md)")
    return sqlite_backup.backup(sqlite.path, dest)


def restore(store: Store, source: Path, *, force: bool = False) -> tuple[ChainReport,
                                                                        ChainReport]:
    """Restore ``source`` into the store's database, verified before and after."""
    sqlite = _sqlite(store, "restore", "use pg_restore (docs/operations.md)")
    return sqlite_backup.restore(source, sqlite.path, force=force)


def secret_keys(store: Store) -> list[KeyRecord]:
    """The secret key ids the database knows, by number."""
    registry = SecretKeyRegistry(_sqlite(store, "secret keys", "none yet").path)
    try:
        return registry.records()
    finally:
        registry.close()


def keyring_problems(store: Store, keyring: Keyring) -> list[str]:
    """Why ``keyring`` cannot be used with this database (empty when it can)."""
    if not isinstance(store, SQLiteStore):
        return []
    registry = SecretKeyRegistry(store.path)
    try:
        return registry.problems(keyring)
    finally:
        registry.close()


def reconcile_keyring(store: Store, keyring: Keyring) -> list[str]:
    """Record new key ids, retire all but the current one; or return the problems."""
    if not isinstance(store, SQLiteStore):
        return []
    registry = SecretKeyRegistry(store.path)
    try:
        return registry.reconcile(keyring)
    finally:
        registry.close()
