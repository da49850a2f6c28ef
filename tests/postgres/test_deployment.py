"""deploy/compose.yaml: two app hosts as the application role, one PostgreSQL, init first."""

from __future__ import annotations

import os
import shutil
import subprocess

import yaml

from referral_api.config import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "deploy" / "compose.yaml"
ENV = {"REFERRAL_API_SECRET_KEY": "s" * 40, "POSTGRES_PASSWORD": "p", "APP_DB_PASSWORD": "a"}


def _compose_command() -> list[str] | None:
    """``docker compose`` (plugin) or ``docker-compose``; None when neither is installed."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True,
                               timeout=30, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_runs_two_hosts_as_the_app_role_after_init() -> None:
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    apps = [name for name in services if name.startswith("app")]
    assert len(apps) >= 2
    for name in apps:
        env = services[name].get("environment") or services["app1"]["environment"]
        assert env["REFERRAL_API_DATABASE"].startswith("postgresql://referral_app:")
        assert "REFERRAL_API_SECRET_KEY" in env
    assert "--app-role referral_app" in services["init"]["command"]
    assert services["app1"]["depends_on"]["init"]["condition"] == \
        "service_completed_successfully"
    assert "synchronous_commit=on" in services["postgres"]["command"]


def test_compose_config_accepts_the_file() -> None:
    command = _compose_command()
    if command is None:
        # Structure is checked above on every machine; the syntax check needs a client.
        import pytest

        pytest.skip("no docker compose client installed (docker compose or docker-compose)")
    result = subprocess.run([*command, "-f", str(COMPOSE), "config", "--quiet"],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, **ENV})
    assert result.returncode == 0, result.stderr
