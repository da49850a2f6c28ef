"""init-db tells an operator clearly what is wrong, and keeps the database private (item 6)."""

from __future__ import annotations

import stat
from pathlib import Path

from referral_api.store.sqlite.log import SQLiteDecisionLog
from tests.factories import make_new

SHORT_SECRET = "short-secret-q7"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_short_secret_is_one_clear_line_without_a_traceback(env: Path, run,
                                                             monkeypatch) -> None:
    monkeypatch.setenv("REFERRAL_API_SECRET_KEY", SHORT_SECRET)
    code, out = run("init-db")
    assert code == 1
    assert out.strip().splitlines() == [
        "Error: REFERRAL_API_SECRET_KEY must be at least 32 characters long "
        f"(got {len(SHORT_SECRET)})"]
    assert SHORT_SECRET not in out
    assert not env.exists()  # nothing created before the secret is known to be usable


def test_database_and_wal_are_created_owner_only(env: Path, run) -> None:
    assert run("init-db", "--no-admin-key")[0] == 0
    log = SQLiteDecisionLog(env)
    log.append(make_new())  # the WAL and shared-memory files exist while it is open
    wal, shm = (env.with_name(env.name + suffix) for suffix in ("-wal", "-shm"))
    assert wal.exists() and shm.exists()
    assert {mode(env), mode(wal), mode(shm)} == {0o600}
    assert mode(env.parent / "secret.key") == 0o600
    log.close()


def test_init_db_tightens_an_existing_database(env: Path, run) -> None:
    run("init-db", "--no-admin-key")
    env.chmod(0o644)
    code, out = run("init-db", "--no-admin-key")
    assert code == 0 and "owner only (0600)" in out
    assert mode(env) == 0o600


def test_an_unusable_setting_is_one_line_in_any_command(env: Path, run, monkeypatch) -> None:
    monkeypatch.setenv("REFERRAL_API_LOG_FORMAT", "xml")
    for command in (["init-db"], ["keys", "list"], ["backup", str(env.parent / "b.sqlite")]):
        code, out = run(*command)
        assert code == 1, command
        assert out.strip().splitlines() == [
            "Error: REFERRAL_API_LOG_FORMAT must be one of json, text (got 'xml')"], command
