"""``referral-api secret rotate`` and ``secret list``: the keyring of patient hashes and sessions.

See :mod:`referral_api.secret_key` for the keyring and ``docs/operations.md`` for the
procedure (rotate, then restart the server so every worker uses the new key).
"""

from __future__ import annotations

import click

from referral_api.cli.store import open_existing_store
from referral_api.config import Settings, load_settings
from referral_api.secret_key import Keyring, SecretKeyError, load_keyring, rotate_secret
from referral_api.store import maintenance


def _keyring(settings: Settings) -> Keyring:
    try:
        return load_keyring(settings.db_dir, settings.secret_key)
    except SecretKeyError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("secret")
def secret_group() -> None:
    """Rotate and list the secret keys (patient hashes, sessions)."""


@secret_group.command("rotate")
def secret_rotate() -> None:
    """Add a new secret key and make it current; earlier keys are kept for lookup only.

    New patient hashes and browser sessions use the new key once the server is restarted;
    sessions signed with the retired key end then. Patient searches match records made under
    every key.
    """
    settings = load_settings()
    store = open_existing_store()
    problems = maintenance.keyring_problems(store, _keyring(settings))
    if problems:
        raise click.ClickException("; ".join(problems))
    new = rotate_secret(settings.db_dir, settings.secret_key)
    problems = maintenance.reconcile_keyring(store, _keyring(settings))
    if problems:  # cannot happen unless the file was edited meanwhile
        raise click.ClickException("; ".join(problems))
    click.echo(f"secret key {new.key_id} is now current (in {settings.db_dir / 'secret.key'});"
               " earlier keys are retired and kept for patient lookups.")
    click.echo("Restart the server (gunicorn: kill -HUP <master pid>) so every worker uses it.")


@secret_group.command("list")
def secret_list() -> None:
    """Key ids, when each was first used and retired, and whether the keyring matches."""
    settings = load_settings()
    store = open_existing_store()
    try:
        records = maintenance.secret_keys(store)
    except maintenance.NotSupported as exc:
        raise click.ClickException(str(exc)) from None
    ring = {key.key_id: key for key in _keyring(settings).keys}
    click.echo(f"{'KEY_ID':<8}{'FIRST USED':<26}{'RETIRED':<26}STATE")
    for record in records:
        key = ring.get(record.key_id)
        state = ("missing from keyring" if key is None
                 else "MISMATCH" if key.check_value() != record.check_hmac
                 else "current" if record.retired_at is None else "retired (lookup only)")
        click.echo(f"{record.key_id:<8}{record.created_at:<26}{record.retired_at or '-':<26}"
                   f"{state}")
