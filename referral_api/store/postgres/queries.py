"""Audit reads on PostgreSQL: the same filters, cursors, pages and statistics as SQLite's.

Filter validation, cursors and the merging of statistics are shared with the SQLite reads
(one definition); what differs is SQL:

- time bounds become a ``seq`` range through ``decisions_stats`` ``(created_at, seq)``, and
  pages walk ``seq`` newest first (keyset), as on SQLite;
- statistics are grouped by PostgreSQL (a HashAggregate over an index-only scan of
  ``decisions_stats``, whose INCLUDE columns hold every grouped field), so a million rows
  are never shipped to Python; the counts then merge exactly as on SQLite.

Every function runs inside the caller's read transaction, after ``SET LOCAL
statement_timeout`` (see ``PostgresDecisionLog._read``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from referral_api.enums import FEEDBACK_OUTCOMES
from referral_api.store.interface import EQUALITY_FILTERS
from referral_api.store.query_args import (
    EXPORT_CHUNK,
    MAX_SEQ,
    check_group_by,
    check_limit,
    decode_cursor,
    encode_cursor,
    merge_stats,
    normalize_filters,
)
from referral_api.store.records import DECISION_COLUMNS, FEEDBACK_COLUMNS, decision_record
from referral_api.store.sqlite.queries import GROUP_EXPRESSIONS

__all__ = ["EXPORT_CHUNK", "export_chunk", "normalize_filters", "prepare_query",
           "prepare_stats", "query", "stats"]

_COLUMNS = ", ".join(f"d.{c}" for c in DECISION_COLUMNS)
_FEEDBACK_SELECT = "SELECT " + ", ".join(FEEDBACK_COLUMNS) + " FROM feedback"  # noqa: S608
_HAS_FEEDBACK = "EXISTS (SELECT 1 FROM feedback_latest fl WHERE fl.decision_seq = d.seq{})"
#: Grouped expressions (``left`` is ``substr`` on text, as SQLite's).
_GROUP_SQL = {name: expr.replace("substr(d.created_at, 1, 10)", "left(d.created_at, 10)")
              .replace("substr(d.created_at, 1, 7)", "left(d.created_at, 7)")
              for name, expr in GROUP_EXPRESSIONS.items()}


#: Memory a statistic may hash its groups in (per query, only for the statistics).
STATS_WORK_MEM = "64MB"


@dataclass(frozen=True)
class PreparedQuery:
    """A validated page request."""

    filters: dict[str, Any]
    limit: int
    before: int | None


@dataclass(frozen=True)
class PreparedStats:
    """A validated statistics request."""

    filters: dict[str, Any]
    fields: list[str]


def prepare_query(filters: Mapping[str, Any] | None, limit: int,
                  cursor: str | None) -> PreparedQuery:
    """Validate before any connection is taken (ValueError → 422)."""
    check_limit(limit)
    normalized = normalize_filters(filters)
    before = decode_cursor(cursor, normalized) if cursor else None
    return PreparedQuery(normalized, limit, before)


def prepare_stats(filters: Mapping[str, Any] | None, group_by: Sequence[str]) -> PreparedStats:
    """Validate a statistics request (ValueError → 422)."""
    return PreparedStats(normalize_filters(filters), check_group_by(group_by))


def _seq_bounds(conn: psycopg.Connection, filters: Mapping[str, Any]) -> tuple[int, int] | None:
    low, high = 1, MAX_SEQ
    if "since" in filters:
        row = conn.execute(
            "SELECT seq FROM decisions WHERE created_at >= %s ORDER BY created_at, seq LIMIT 1",
            [filters["since"]]).fetchone()
        if row is None:
            return None
        low = row[0]
    if "until" in filters:
        row = conn.execute(
            "SELECT seq FROM decisions WHERE created_at <= %s "
            "ORDER BY created_at DESC, seq DESC LIMIT 1", [filters["until"]]).fetchone()
        if row is None:
            return None
        high = row[0]
    return (low, high) if low <= high else None


def _where(filters: Mapping[str, Any], bounds: tuple[int, int]) -> tuple[str, list[Any]]:
    clauses = ["d.seq BETWEEN %s AND %s"]
    params: list[Any] = list(bounds)
    for name in EQUALITY_FILTERS:
        if name in filters:
            clauses.append(f"d.{name} = %s")
            params.append(filters[name])
    feedback = filters.get("feedback")
    if feedback == "none":
        clauses.append("NOT " + _HAS_FEEDBACK.format(""))
    elif feedback is not None:
        clauses.append(_HAS_FEEDBACK.format(" AND fl.outcome = %s"))
        params.append(feedback)
    return " AND ".join(clauses), params


def _records(conn: psycopg.Connection, rows: Sequence[dict]) -> list[dict]:
    if not rows:
        return []
    ids = [r["decision_id"] for r in rows]
    feedback: dict[str, list[dict]] = {i: [] for i in ids}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_FEEDBACK_SELECT + " WHERE decision_id = ANY(%s) ORDER BY seq", [ids])
        for f in cur:
            feedback[f["decision_id"]].append(f)
    return [decision_record(r, feedback[r["decision_id"]]) for r in rows]


def query(conn: psycopg.Connection, prepared: PreparedQuery) -> tuple[list[dict], str | None]:
    """One page of decision records, newest first; ``(records, next_cursor)``."""
    bounds = _seq_bounds(conn, prepared.filters)
    if bounds is None:
        return [], None
    if prepared.before is not None:
        bounds = (bounds[0], min(bounds[1], prepared.before - 1))
    where, params = _where(prepared.filters, bounds)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM decisions d WHERE {where} "  # noqa: S608
            "ORDER BY d.seq DESC LIMIT %s", [*params, prepared.limit + 1]).fetchall()
    more = len(rows) > prepared.limit
    rows = rows[: prepared.limit]
    next_cursor = encode_cursor(rows[-1]["seq"], prepared.filters) if more else None
    return _records(conn, rows), next_cursor


def export_chunk(conn: psycopg.Connection, filters: Mapping[str, Any],
                 last_seq: int) -> list[dict]:
    """The next ``EXPORT_CHUNK`` matching records after ``last_seq``, oldest first."""
    bounds = _seq_bounds(conn, filters)
    if bounds is None or bounds[1] <= last_seq:
        return []
    where, params = _where(filters, (max(bounds[0], last_seq + 1), bounds[1]))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM decisions d WHERE {where} "  # noqa: S608
            "ORDER BY d.seq LIMIT %s", [*params, EXPORT_CHUNK]).fetchall()
    return _records(conn, rows)


def _stats_where(filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
    clauses, params = ["true"], []
    if "since" in filters:
        clauses.append("d.created_at >= %s")
        params.append(filters["since"])
    if "until" in filters:
        clauses.append("d.created_at <= %s")
        params.append(filters["until"])
    for name in EQUALITY_FILTERS:
        if name in filters:
            clauses.append(f"d.{name} = %s")
            params.append(filters[name])
    return " AND ".join(clauses), params


def stats(conn: psycopg.Connection, prepared: PreparedStats) -> dict:
    """``{"total": n, "groups": [...]}`` exactly as the SQLite statistics."""
    fields, normalized = prepared.fields, prepared.filters
    # Measured on a million decisions (docs/performance.md): with the default 4 MB a
    # statistic with many groups (clinician × day: 145 k) sorts on disk instead of hashing in
    # memory (1.8 s → 0.8 s); JIT compiles for ~50 ms per query and saves nothing here; and
    # parallel workers would take the cores the decisions need (an audit read must not slow
    # the writers), for no gain on this machine. Transaction-local, like the time limit.
    conn.execute("SELECT set_config('work_mem', %s, true), set_config('jit', 'off', true), "
                 "set_config('max_parallel_workers_per_gather', '0', true)", [STATS_WORK_MEM])
    columns = [_GROUP_SQL[f] for f in fields if f != "feedback"]
    feedback_filter = normalized.get("feedback")
    where, params = _stats_where(normalized)
    counts: Counter[tuple] = Counter()
    if feedback_filter in FEEDBACK_OUTCOMES:
        pass  # every decision counted has feedback: with_feedback holds them all
    elif columns:
        selected = ", ".join(columns)
        sql = (f"SELECT {selected}, count(*) FROM decisions d WHERE {where} "  # noqa: S608
               f"GROUP BY {selected}")
        for row in conn.execute(sql, params):
            counts[tuple(row[:-1])] = row[-1]
    else:
        sql = f"SELECT count(*) FROM decisions d WHERE {where}"  # noqa: S608
        found = conn.execute(sql, params).fetchone()
        counts[()] = found[0] if found else 0
    with_feedback: Counter[tuple] = Counter()
    group = ", ".join([*columns, "fl.outcome"])
    if "patient_hash" in normalized:
        # A handful of decisions: the planner joins from the patient_hash index.
        source = ("feedback_latest fl JOIN decisions d "
                  f"ON d.created_at = fl.created_at AND d.seq = fl.decision_seq WHERE {where}")
    else:
        # One index-only probe of decisions_stats per decision with feedback (a few % of
        # decisions), never a scan of the whole index: the planner misestimates the
        # two-column join and would hash-join over every decision (1.8 s → 0.55 s on a
        # million; OFFSET 0 keeps the subquery from being flattened into that join).
        source = ("feedback_latest fl CROSS JOIN LATERAL (SELECT d.* FROM decisions d "  # noqa: S608
                  "WHERE d.created_at = fl.created_at AND d.seq = fl.decision_seq "
                  f"AND {where} OFFSET 0) d")
    fb_sql = f"SELECT {group}, count(*) FROM {source} GROUP BY {group}"  # noqa: S608
    for row in conn.execute(fb_sql, params):
        with_feedback[tuple(row[: len(columns)]), row[-2]] += row[-1]
    return merge_stats(fields, counts, with_feedback, feedback_filter)
