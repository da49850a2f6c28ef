"""CLI commands for audit reviewers and rule authors: ``decisions export`` and ``replay``.

Exposed as click command objects; ``referral_api.cli`` attaches ``export_command`` to its
``decisions`` group and ``replay_command`` to ``main``. Both read the log in chunks of short
read transactions (constant memory, writers never blocked) and record the read in the access
log under ``cli:<user>``, as the HTTP API does for its callers.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

import click

from referral_api.audit.export import iter_export
from referral_api.audit.filters import EXPORT_FORMATS
from referral_api.cli.store import open_existing_store
from referral_api.store.interface import LogUnavailable
from referral_api.store.timestamps import parse_instant


def _instant(end_of_day: bool) -> Any:
    def convert(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse_instant(value, end_of_day=end_of_day)
        except ValueError:
            raise click.BadParameter(
                "not an ISO 8601 date or date-time (no offset means UTC)", param=param
            ) from None

    return convert


def _time_filters(since: str | None, until: str | None) -> dict[str, str]:
    if since and until and since > until:
        raise click.BadParameter("must not be before --since", param_hint="--until")
    return {k: v for k, v in (("since", since), ("until", until)) if v}


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


_since = click.option("--since", callback=_instant(False),
                      help="From this ISO 8601 date or time (inclusive; no offset = UTC).")
_until = click.option("--until", callback=_instant(True),
                      help="Up to this ISO 8601 date or time (inclusive; a date = its whole day).")


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), required=True,
              help="csv (stable columns, docs/audit.md) or ndjson (whole records).")
@_since
@_until
def export_command(fmt: str, since: str | None, until: str | None) -> None:
    """Write the decisions (oldest first) to standard output as CSV or NDJSON."""
    filters = _time_filters(since, until)
    log = open_existing_store().log
    try:
        records = log.iter_records(filters)
        log.record_access(_actor(), "export_decisions", {"filters": filters, "format": fmt})
        out = sys.stdout
        for chunk in iter_export(fmt, records):
            out.write(chunk)
        out.flush()
    except LogUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        log.close()


@click.command("replay")
@click.option("--ruleset-version", "version", required=True,
              help="The version to replay under (a draft works: see it before publishing).")
@_since
@_until
@click.option("--examples", default=10, show_default=True, type=click.IntRange(0, 1000),
              help="How many changed decisions to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--markdown", "as_markdown", is_flag=True,
              help="Print the measured part of docs/rule-changes/<version>.md (Markdown).")
def replay_command(version: str, since: str | None, until: str | None, examples: int,
                   as_json: bool, as_markdown: bool) -> None:
    """Impact report: how many logged decisions VERSION would change, and how.

    Re-evaluates each logged decision's input with the current engine; writes no decision.
    Counts changes of rating, urgency (raised or lowered), governing scenario and first
    recommended study, per recorded scenario, with an example of each.
    """
    import json

    from referral_api.audit.replay import impact
    from referral_api.clinical.versions import RuleError, load_registry
    from referral_api.config import load_settings

    filters = _time_filters(since, until)
    try:
        registry = load_registry(load_settings().rules_dir)
    except RuleError as exc:
        raise click.ClickException(f"the rule sets cannot be loaded: {exc}") from None
    try:
        ruleset = registry.get(version)
    except KeyError:
        known = ", ".join(r.version for r in registry.versions())
        raise click.ClickException(f"no rule set version {version} (loaded: {known})") from None
    log = open_existing_store().log
    try:
        records = log.iter_records(filters)
        log.record_access(_actor(), "replay_impact",
                          {"filters": filters, "ruleset_version": version})
        report = impact(records, ruleset, ruleset.vocabulary or registry.vocabulary,
                        examples=examples)
    except LogUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        log.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif as_markdown:
        click.echo(report.markdown(), nl=False)
    else:
        for line in report.lines():
            click.echo(line)
