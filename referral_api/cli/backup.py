"""``referral-api backup DEST`` and ``referral-api restore SRC`` (SQLite).

Both verify every hash chain; both print each chain's head hash and record count, which is
the anchor to keep apart from the backup (``decisions verify --expect-head H --expect-count
N`` later proves that no record was removed or rewritten since).
"""

from __future__ import annotations

from pathlib import Path

import click

from referral_api.cli.store import open_existing_store


def _echo_report(report) -> None:
    for line in report.lines():
        click.echo(f"  {line}")
    decisions = report.chains.get("decisions", {})
    if decisions.get("ok"):
        click.echo(f"anchor: --expect-head {decisions['head']} "
                   f"--expect-count {decisions['checked']}")


@click.command("backup")
@click.argument("dest", type=click.Path(path_type=Path, dir_okay=False))
def backup_command(dest: Path) -> None:
    """Copy the live database to DEST (a new file) and verify every chain on the copy.

    Safe while the server runs: SQLite's online backup API takes one consistent snapshot and
    the workers go on writing. Prints each chain's head hash and count.
    """
    from referral_api.store import maintenance

    try:
        report = maintenance.backup(open_existing_store(), dest)
    except (maintenance.BackupError, maintenance.NotSupported) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backup {dest}: verified")
    _echo_report(report)


@click.command("restore")
@click.argument("src", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--force", is_flag=True,
              help="Overwrite a database that already holds records.")
def restore_command(src: Path, force: bool) -> None:
    """Restore the database from the backup SRC, verifying it before and after.

    Refuses a backup whose chain is broken, and a target that holds records unless --force
    is given. Stop the server first; then run `referral-api init-db` (migrations, secret
    check) and start it again.
    """
    from referral_api.config import load_settings
    from referral_api.store import maintenance, open_store

    store = open_store(load_settings())  # the target may not exist yet
    try:
        before, after = maintenance.restore(store, src, force=force)
    except (maintenance.BackupError, maintenance.NotSupported) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backup {src}: verified")
    _echo_report(before)
    click.echo(f"restored into {store.describe()}: verified")
    _echo_report(after)
