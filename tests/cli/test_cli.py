"""The `referral-api` command line, run as a user would (click's runner, real files)."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from referral_api import cli
from referral_api.config import PROJECT_ROOT
from referral_api.store.sqlite.keys import SQLiteKeyStore as KeyStore

KEY_RE = re.compile(r"^rk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """REFERRAL_API_* pointing at a fresh database folder; no secret in the environment."""
    database = tmp_path / "db" / "decisions.sqlite"
    monkeypatch.setenv("REFERRAL_API_DATABASE", str(database))
    monkeypatch.setenv("REFERRAL_API_RULES_DIR", str(PROJECT_ROOT / "rules"))
    monkeypatch.delenv("REFERRAL_API_SECRET_KEY", raising=False)
    return database


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_init_db_creates_database_secret_and_one_admin_key(env: Path) -> None:
    code, out = run("init-db")
    assert code == 0, out
    assert "applied 0001_initial" in out
    secret = env.parent / "secret.key"
    assert secret.exists() and secret.stat().st_mode & 0o777 == 0o600
    (token,) = [line.strip() for line in out.splitlines() if line.strip().startswith("rk_")]
    assert KEY_RE.match(token)
    # Idempotent: nothing applied, the secret kept, no second admin key.
    before = secret.read_text()
    code, again = run("init-db")
    assert code == 0 and "up to date" in again and "rk_" not in again
    assert secret.read_text() == before
    assert KeyStore(env).count("admin") == 1


def test_keys_create_prints_only_the_key_and_list_revoke(env: Path) -> None:
    run("init-db", "--no-admin-key")
    code, out = run("keys", "create", "--role", "auditor", "--role", "evaluator",
                    "--label", "quality team")
    assert code == 0 and KEY_RE.match(out.strip()) and out.count("\n") == 1
    token = out.strip()
    assert KeyStore(env).verify(token).roles == ("auditor", "evaluator")
    code, listing = run("keys", "list")
    key_id = token.split("_")[1]
    assert key_id in listing and "quality team" in listing and token not in listing
    code, revoked = run("keys", "revoke", key_id)
    assert code == 0 and "revoked" in revoked
    assert KeyStore(env).verify(token) is None
    assert key_id not in run("keys", "list")[1]
    assert key_id in run("keys", "list", "--all")[1]
    code, out = run("keys", "revoke", key_id)
    assert code != 0 and "no active key" in out


def test_keys_create_refuses_an_unknown_role(env: Path) -> None:
    run("init-db", "--no-admin-key")
    result = CliRunner().invoke(cli.main, ["keys", "create", "--role", "root", "--label", "x"])
    assert result.exit_code == 2 and "root" in result.output


def test_commands_need_init_db_first(env: Path) -> None:
    code, out = run("keys", "list")
    assert code != 0 and "init-db" in out


def test_rules_check_passes_on_the_shipped_rules(env: Path) -> None:
    code, out = run("rules", "check")
    assert code == 0, out
    assert "OK" in out and "2026.1.0" in out


def test_rules_check_fails_naming_file_and_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    lumbar = rules / "spine-imaging" / "2026.1.0" / "lumbar.yaml"
    text = lumbar.read_text(encoding="utf-8")
    lumbar.write_text(text.replace("{finding: ankylosed_spine}", "{finding: ankylosed_spin}", 1),
                      encoding="utf-8")
    line = next(i for i, row in enumerate(lumbar.read_text().splitlines(), 1)
                if "ankylosed_spin}" in row)
    code, out = run("rules", "check", "--rules-dir", str(rules))
    assert code == 1
    assert re.search(rf"lumbar\.yaml:{line}\b", out), out
    assert "ankylosed_spin" in out


def test_rules_publish_refuses_to_change_a_published_version(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    code, out = run("rules", "publish", "2026.1.0", "--rules-dir", str(rules))
    assert code == 0 and "published 2026.1.0" in out  # same content: a no-op
    ruleset = rules / "spine-imaging" / "2026.1.0" / "ruleset.yaml"
    ruleset.write_text(ruleset.read_text() + "\n# edited\nextra_key: 1\n", encoding="utf-8")
    code, out = run("rules", "publish", "2026.1.0", "--rules-dir", str(rules))
    assert code != 0


def test_decisions_verify_exit_codes(env: Path) -> None:
    from referral_api.store.sqlite.log import SQLiteDecisionLog
    from tests.factories import make_new

    run("init-db", "--no-admin-key")
    log = SQLiteDecisionLog(env)
    for _ in range(3):
        log.append(make_new())
    log.close()
    code, out = run("decisions", "verify")
    assert code == 0 and "decisions: ok, 3 records" in out
    conn = sqlite3.connect(str(env))
    conn.execute("DROP TRIGGER decisions_no_update")
    conn.execute("UPDATE decisions SET urgency = 'routine' WHERE seq = 2")
    conn.commit()
    conn.close()
    code, out = run("decisions", "verify")
    assert code == 1 and "BROKEN" in out


def test_serve_execs_gunicorn_with_the_project_config(env: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(cli.os, "execv", lambda path, args: calls.append((path, args)))
    monkeypatch.setattr(cli.os, "chdir", lambda _path: None)
    code, _ = run("serve", "--host", "127.0.0.1", "--port", "8123")
    assert code == 0
    ((path, args),) = calls
    assert path.endswith("gunicorn")
    assert args[-1] == "wsgi:app"
    assert "--bind" in args and "127.0.0.1:8123" in args
    assert str(PROJECT_ROOT / "gunicorn.conf.py") in args
