"""The ``referral-api`` command line (click): set-up, keys, rules, the log, serving.

Commands that only need the database or the rules directory do not build the web app, so
they work before the first ``init-db`` and never load what they do not use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from referral_api.cli.store import open_existing_store
from referral_api.config import PROJECT_ROOT, Settings, load_settings
from referral_api.enums import ADMIN, ROLES


def _settings() -> Settings:
    return load_settings()


class _Main(click.Group):
    """The command group; an unusable setting or secret is one line, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; a settings or secret-key error becomes a click error (exit 1)."""
        from referral_api.config import SettingsError
        from referral_api.secret_key import SecretKeyError

        try:
            return super().invoke(ctx)
        except (SettingsError, SecretKeyError) as exc:  # their messages never hold a secret
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="referral-api")
def main() -> None:
    """Spine-MRI referral decision support: set-up, keys, rules, decision log, server."""


@main.command("init-db")
@click.option("--no-admin-key", is_flag=True, help="Do not create a first admin key.")
def init_db(no_admin_key: bool) -> None:
    """Create or migrate the database and, when none exists, the secret key.

    Idempotent. Run it before the server starts (the workers never create anything). When the
    database has no active admin key, a first one is created and printed once.
    """
    from referral_api.secret_key import SecretKeyError, ensure_secret, load_keyring
    from referral_api.store import maintenance, open_store

    settings = _settings()
    settings.db_dir.mkdir(parents=True, exist_ok=True)
    try:
        ensure_secret(settings.db_dir, settings.secret_key)
        keyring = load_keyring(settings.db_dir, settings.secret_key)
    except SecretKeyError as exc:  # one clear line: never a traceback, never the secret
        raise click.ClickException(str(exc)) from None
    store = open_store(settings)
    tightened = maintenance.owner_only(store)
    applied = store.migrate()
    if applied:
        click.echo(f"database {store.describe()}: applied {', '.join(applied)}")
    else:
        click.echo(f"database {store.describe()}: up to date")
    if tightened:
        click.echo(f"made {', '.join(tightened)} readable by the owner only (0600)")
    # The keyring must match the keys that made the stored patient hashes.
    problems = maintenance.reconcile_keyring(store, keyring)
    if problems:
        raise click.ClickException("; ".join(problems))
    if no_admin_key:
        return
    keys = store.keys
    if keys.count(ADMIN) == 0:
        _, token = keys.create([ADMIN], "first-admin")
        click.echo("No admin key existed; created one (shown only now, store it safely):")
        click.echo(f"  {token}")


@main.group()
def keys() -> None:
    """Manage API keys (stored only as hashes)."""


@keys.command("create")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES),
              help="A role of the key; repeat for several.")
@click.option("--label", required=True, help="Who holds the key (recorded with decisions).")
def keys_create(roles: tuple[str, ...], label: str) -> None:
    """Create a key; prints the key, and nothing else, on standard output."""
    _, token = open_existing_store().keys.create(list(roles), label)
    click.echo(token)


@keys.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
def keys_list(show_all: bool) -> None:
    """List keys: id, label, roles, created, revoked (never the secret)."""
    rows = open_existing_store().keys.list_keys()
    click.echo(f"{'KEY_ID':<14}{'LABEL':<24}{'ROLES':<28}{'CREATED':<26}REVOKED")
    for key in rows:
        if key.revoked_at and not show_all:
            continue
        click.echo(f"{key.key_id:<14}{key.label[:23]:<24}{','.join(key.roles):<28}"
                   f"{key.created_at:<26}{key.revoked_at or '-'}")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (see `keys list`)."""
    if not open_existing_store().keys.revoke(key_id):
        raise click.ClickException(f"no active key with id {key_id}")
    click.echo(f"revoked {key_id}")


@main.group()
def rules() -> None:
    """Validate, test and publish rule set versions."""


@rules.command("check")
@click.option("--rules-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Default: REFERRAL_API_RULES_DIR or rules/.")
def rules_check(rules_dir: Path | None) -> None:
    """Validate every rule file, run their embedded tests, verify published hashes."""
    from referral_api.clinical.check import check

    report = check(rules_dir or _settings().rules_dir)
    for line in report.lines():
        click.echo(line)
    sys.exit(0 if report.ok else 1)


@rules.command("publish")
@click.argument("version")
@click.option("--rules-dir", type=click.Path(path_type=Path, file_okay=False))
def rules_publish(version: str, rules_dir: Path | None) -> None:
    """Record VERSION's hash in the lock: from then on its files are immutable."""
    from referral_api.clinical.versions import RuleError, publish

    try:
        digest = publish(rules_dir or _settings().rules_dir, version)
    except (RuleError, KeyError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"published {version} sha256 {digest}")


@main.group()
def decisions() -> None:
    """Read and verify the decision log."""


@decisions.command("verify")
@click.option("--expect-head", help="A head hash saved earlier (detects a cut tail).")
@click.option("--expect-count", type=int, help="The record count saved with that head.")
def decisions_verify(expect_head: str | None, expect_count: int | None) -> None:
    """Walk the hash chains; exit 0 when they hold, 1 naming the first bad record."""
    report = open_existing_store().log.verify(expect_head=expect_head, expect_count=expect_count)
    ok = True
    for name, part in report.items():
        if part.get("ok"):
            click.echo(f"{name}: ok, {part['checked']} records, head {part.get('head')}")
        else:
            ok = False
            click.echo(f"{name}: BROKEN at {part.get('first_bad')}: {part.get('reason')} "
                       f"({part.get('checked')} checked)")
    sys.exit(0 if ok else 1)


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, type=int, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve with gunicorn and the project's gunicorn.conf.py."""
    conf = PROJECT_ROOT / "gunicorn.conf.py"
    args = ["gunicorn", "--config", str(conf), "--bind", f"{host}:{port}", "wsgi:app"]
    os.chdir(PROJECT_ROOT)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    os.execv(str(gunicorn), args)  # noqa: S606 - replaces this process with the server


# The audit commands live with the audit code; they are attached to this command tree here.
from referral_api.cli.audit import export_command, replay_command  # noqa: E402

decisions.add_command(export_command)
main.add_command(replay_command)

from referral_api.cli.backup import backup_command, restore_command  # noqa: E402

main.add_command(backup_command)
main.add_command(restore_command)

from referral_api.cli.secret import secret_group  # noqa: E402

main.add_command(secret_group)

if __name__ == "__main__":
    main()
