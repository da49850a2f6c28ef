"""The command line on a PostgreSQL log: init-db (idempotent, roles), keys, verify, copy."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from psycopg import sql

from referral_api import cli
from referral_api.config import PROJECT_ROOT
from referral_api.store.postgres.db import connect

SECRET = "cli-test-secret-0123456789-abcdefghijklmnopqrstu"
KEY_RE = re.compile(r"rk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def pg_env(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """REFERRAL_API_DATABASE = a fresh, empty PostgreSQL schema; a shared secret set."""
    monkeypatch.setenv("REFERRAL_API_DATABASE", pg_url)
    monkeypatch.setenv("REFERRAL_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("REFERRAL_API_RULES_DIR", str(PROJECT_ROOT / "rules"))
    return pg_url


def test_init_db_on_postgres_is_idempotent_and_creates_one_admin_key(pg_env: str) -> None:
    code, out = run("init-db")
    assert code == 0, out
    assert "applied 0001_initial, 0002_audit_stats" in out
    assert len(KEY_RE.findall(out)) == 1
    assert "password" not in out
    code, out = run("init-db")
    assert code == 0 and "up to date" in out and not KEY_RE.findall(out)


def test_init_db_on_postgres_needs_the_shared_secret(pg_env: str, monkeypatch) -> None:
    monkeypatch.delenv("REFERRAL_API_SECRET_KEY")
    code, out = run("init-db")
    assert code != 0 and "REFERRAL_API_SECRET_KEY" in out


def test_keys_and_verify_on_postgres(pg_env: str) -> None:
    run("init-db", "--no-admin-key")
    code, token = run("keys", "create", "--role", "auditor", "--label", "audit")
    assert code == 0 and KEY_RE.fullmatch(token.strip())
    code, out = run("keys", "list")
    assert "audit" in out
    key_id = token.strip().split("_")[1]
    assert run("keys", "revoke", key_id)[0] == 0
    code, out = run("decisions", "verify")
    assert code == 0 and "decisions: ok, 0 records" in out


def test_init_db_prints_and_creates_the_app_role(pg_env: str, pg_server) -> None:
    role = f"referral_app_{uuid.uuid4().hex[:10]}"
    code, out = run("init-db", "--no-admin-key", "--app-role", role, "--create-roles",
                    "--print-role-sql")
    assert code == 0, out
    assert f'CREATE ROLE "{role}" LOGIN' in out and "IF NOT EXISTS" in out
    log_grant = next(line for line in out.splitlines() if '."decisions"' in line)
    assert log_grant.startswith("GRANT SELECT, INSERT ON ")
    assert '."feedback"' in log_grant and '."access_log"' in log_grant
    try:
        for _ in range(2):  # idempotent: the second run finds the role and the grants
            code, out = run("init-db", "--no-admin-key", "--app-role", role, "--create-roles")
            assert code == 0, out
        with connect(pg_env) as conn:
            granted = {r[0] for r in conn.execute(
                "SELECT privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = %s AND table_name = 'decisions'", [role])}
        assert granted == {"SELECT", "INSERT"}
    finally:
        with connect(pg_server.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_role_options_are_refused_on_sqlite(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("REFERRAL_API_DATABASE", str(tmp_path / "decisions.sqlite"))
    code, out = run("init-db", "--app-role", "x")
    assert code != 0 and "postgresql://" in out


def test_decisions_copy_moves_a_sqlite_log_and_verifies_it(
    tmp_path: Path, pg_url: str, monkeypatch
) -> None:
    monkeypatch.setenv("REFERRAL_API_DATABASE", str(tmp_path / "db" / "decisions.sqlite"))
    monkeypatch.setenv("REFERRAL_API_SECRET_KEY", SECRET)
    assert run("init-db")[0] == 0
    code, out = run("decisions", "copy", "--to", pg_url)
    assert code == 0, out
    assert "decisions: verified, 0 records" in out and "api_keys: 1 rows" in out
    code, out = run("decisions", "copy", "--to", pg_url)
    assert code != 0 and "not empty" in out
    with connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == (1,)


def test_decisions_copy_refuses_a_non_postgres_target(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("REFERRAL_API_DATABASE", str(tmp_path / "decisions.sqlite"))
    code, out = run("decisions", "copy", "--to", str(tmp_path / "other.sqlite"))
    assert code != 0 and "postgresql://" in out


def test_unreachable_postgres_is_reported_without_password(monkeypatch) -> None:
    monkeypatch.setenv("REFERRAL_API_DATABASE", "postgresql://app:hunter2@127.0.0.1:1/none")
    monkeypatch.setenv("REFERRAL_API_SECRET_KEY", SECRET)
    code, out = run("keys", "list")
    assert code != 0 and "init-db" in out
    assert "hunter2" not in out and "app:***@127.0.0.1:1" in out
