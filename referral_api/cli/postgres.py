"""CLI pieces for the PostgreSQL log: the application role (``init-db --app-role``) and
``decisions copy --to postgresql://…`` (moving a SQLite log)."""

from __future__ import annotations

import click

from referral_api.config import load_settings


def apply_roles(url: str, app_role: str, owner_role: str | None, create: bool,
                print_only: bool) -> None:
    """Grant ``app_role`` INSERT/SELECT on the log tables (and hand the tables to
    ``owner_role``); with ``create``, create the roles when missing (the application role's
    password, if any, from ``REFERRAL_API_APP_ROLE_PASSWORD``); with ``print_only``, print
    the SQL for a DBA instead of running it (the password as a placeholder)."""
    import os

    import psycopg

    from referral_api.store.postgres.db import connect
    from referral_api.store.postgres.migrations import create_roles_sql, roles_sql

    with connect(url) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()
        text = roles_sql(app_role, owner_role, schema=schema[0] if schema else "public")
        if create:
            password = os.environ.get("REFERRAL_API_APP_ROLE_PASSWORD") or None
            if print_only and password is not None:
                password = "<password>"  # never print a secret  # noqa: S105
            text = create_roles_sql(app_role, owner_role, password) + text
        if print_only:
            click.echo(text, nl=False)
            return
        try:
            with conn.transaction():
                conn.execute(text.encode("utf-8"))
        except psycopg.Error as exc:
            raise click.ClickException(f"the roles could not be set up: {exc}") from None
    click.echo(f"role {app_role}: SELECT and INSERT on the log tables"
               + (f"; tables owned by {owner_role}" if owner_role else ""))


@click.command("copy")
@click.option("--to", "target", required=True, metavar="postgresql://…",
              help="The empty PostgreSQL database to copy into.")
def copy_command(target: str) -> None:
    """Copy the configured SQLite log (decisions, feedback, access log, keys) to PostgreSQL.

    Ids, sequence numbers and hashes are kept; a target that already holds records is
    refused; the copy ends by verifying the target's chains against the source's heads.
    """
    from referral_api.store.postgres.copy import CopyFailed, CopyRefused, copy_sqlite_to_postgres
    from referral_api.store.postgres.db import is_postgres_url, redact

    settings = load_settings()
    if isinstance(settings.database, str):
        raise click.ClickException("the configured database is not a SQLite file: "
                                   "set REFERRAL_API_DATABASE to the SQLite log to copy")
    if not is_postgres_url(target):
        raise click.ClickException("--to must be a postgresql:// URL")

    def progress(table: str, rows: int) -> None:
        if rows % 100_000 == 0:
            click.echo(f"  {table}: {rows} rows", err=True)

    try:
        report = copy_sqlite_to_postgres(settings.database, target, progress=progress)
    except CopyRefused as exc:
        raise click.ClickException(f"copy refused: {exc}") from None
    except CopyFailed as exc:
        raise click.ClickException(f"the copy does not verify: {exc}") from None
    for table, rows in report.rows.items():
        click.echo(f"{table}: {rows} rows")
    for chain, head in report.heads.items():
        click.echo(f"{chain}: verified, {head['count']} records, head {head['head']}")
    click.echo(f"copied {settings.database} to {redact(target)}")
