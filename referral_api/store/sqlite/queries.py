"""Audit reads over the decision log: filtered pages, streamed export rows and statistics.

Filters (all optional, ``None`` ignored): ``since`` and ``until`` (both inclusive, to the ms),
as ISO 8601 strings (no offset = UTC) or datetimes; exact matches on ``region``,
``appropriateness``, ``urgency``, ``scenario`` (scenario id), ``ruleset_version``,
``channel``, ``client``, ``ordering_clinician``, ``patient_hash`` (already keyed-hashed by
the caller); ``feedback``: ``accepted`` | ``overridden`` (the decision's *latest* feedback
outcome) | ``none`` (no feedback yet).  Invalid filters, limits or cursors raise
``ValueError`` (the API answers 422).

Time bounds are turned into a ``seq`` range through the ``decisions_stats`` index (which leads
with ``created_at, seq``; ``created_at`` never decreases along ``seq``), so pages and exports
walk ``seq`` and "newest first" pagination needs no sort.

Statistics never read the wide decision rows (~4.7 KB each): they count over the narrow
covering index ``decisions_stats`` and take feedback from ``feedback_latest`` (one row per
decision with feedback), merged in Python (see :func:`stats` and ``db/README.md``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

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
from referral_api.store.records import decision_record

T = TypeVar("T")


# The latest feedback outcome of decision `d` is kept in feedback_latest (migration 0002,
# maintained by append_feedback); one rowid seek per decision, no scan of its feedback.
_HAS_FEEDBACK = "EXISTS (SELECT 1 FROM feedback_latest fl WHERE fl.decision_seq = d.seq{})"
STATS_INDEX = "decisions_stats"
# Grouped expressions over the columns of STATS_INDEX, one per interface GROUP_FIELDS name
# (`feedback` is merged in from feedback_latest, see stats()).
GROUP_EXPRESSIONS: dict[str, str] = {
    "appropriateness": "d.appropriateness",
    "urgency": "d.urgency",
    "scenario": "d.scenario",
    "ruleset_version": "d.ruleset_version",
    "channel": "d.channel",
    "region": "d.region",
    "ordering_clinician": "d.ordering_clinician",
    "feedback": "",
    "day": "substr(d.created_at, 1, 10)",
    "month": "substr(d.created_at, 1, 7)",
}


def _seq_bounds(conn: sqlite3.Connection, filters: Mapping[str, Any]) -> tuple[int, int] | None:
    """Inclusive seq range for since/until, or None when the range is empty."""
    low, high = 1, MAX_SEQ
    if "since" in filters:
        row = conn.execute(
            "SELECT seq FROM decisions WHERE created_at >= ? ORDER BY created_at, seq LIMIT 1",
            [filters["since"]],
        ).fetchone()
        if row is None:
            return None
        low = row[0]
    if "until" in filters:
        row = conn.execute(
            "SELECT seq FROM decisions WHERE created_at <= ? "
            "ORDER BY created_at DESC, seq DESC LIMIT 1",
            [filters["until"]],
        ).fetchone()
        if row is None:
            return None
        high = row[0]
    return (low, high) if low <= high else None


def _where(filters: Mapping[str, Any], bounds: tuple[int, int]) -> tuple[str, list[Any]]:
    clauses = ["d.seq BETWEEN ? AND ?"]
    params: list[Any] = list(bounds)
    for name in EQUALITY_FILTERS:
        if name in filters:
            value = filters[name]
            # Column names come from the EQUALITY_FILTERS constant, never from input.
            if isinstance(value, list):  # patient_hash under several secret keys
                clauses.append(f"d.{name} IN ({', '.join('?' for _ in value)})")
                params.extend(value)
            else:
                clauses.append(f"d.{name} = ?")
                params.append(value)
    feedback = filters.get("feedback")
    if feedback == "none":
        clauses.append("NOT " + _HAS_FEEDBACK.format(""))
    elif feedback is not None:
        clauses.append(_HAS_FEEDBACK.format(" AND fl.outcome = ?"))
        params.append(feedback)
    return " AND ".join(clauses), params


#: Filters with an index of their own (selective: a rare value is found at once).
_OWN_INDEX_FILTERS = frozenset({"patient_hash", "ordering_clinician", "scenario"})
#: Filters that only the covering index ``decisions_stats`` holds: a page or an export chunk
#: with one of them finds its seqs over the index entries (~140 bytes each) instead of the
#: rows (~4.7 KB each, most with an overflow page), then reads only the rows it returns.
_STATS_INDEX_FILTERS = frozenset(EQUALITY_FILTERS) - _OWN_INDEX_FILTERS


def _through_stats_index(filters: Mapping[str, Any]) -> bool:
    """True when the page's seqs are best found over ``decisions_stats``: a filter only it
    holds, and none of the far more selective filters with an index of their own."""
    return (not _OWN_INDEX_FILTERS & filters.keys()
            and bool(_STATS_INDEX_FILTERS & filters.keys()))


def _matching_rows(
    conn: sqlite3.Connection,
    filters: Mapping[str, Any],
    bounds: tuple[int, int],
    limit: int,
    *,
    newest_first: bool,
) -> list[dict]:
    """Up to ``limit`` matching decision rows in ``bounds``, in seq order (or reversed)."""
    where, params = _where(filters, bounds)
    order = "DESC" if newest_first else ""
    if not _through_stats_index(filters):
        sql = f"SELECT d.* FROM decisions d WHERE {where} ORDER BY d.seq {order} LIMIT ?"  # noqa: S608
        return _dicts(conn.execute(sql, [*params, limit]))
    # created_at never decreases along seq, so the seq range is also a created_at range: the
    # index is entered at one end of it and walked in (created_at, seq) = seq order.
    low = conn.execute("SELECT created_at FROM decisions WHERE seq >= ? ORDER BY seq LIMIT 1",
                       [bounds[0]]).fetchone()
    high = conn.execute("SELECT created_at FROM decisions WHERE seq <= ? "
                        "ORDER BY seq DESC LIMIT 1", [bounds[1]]).fetchone()
    if low is None or high is None:
        return []
    sql = (f"SELECT d.seq FROM decisions d INDEXED BY {STATS_INDEX} "  # noqa: S608
           f"WHERE d.created_at BETWEEN ? AND ? AND {where} "
           f"ORDER BY d.created_at {order}, d.seq {order} LIMIT ?")
    seqs = [row[0] for row in conn.execute(sql, [low[0], high[0], *params, limit])]
    if not seqs:
        return []
    marks = ", ".join("?" for _ in seqs)
    rows = _dicts(conn.execute(
        f"SELECT * FROM decisions WHERE seq IN ({marks}) ORDER BY seq {order}", seqs))  # noqa: S608
    return rows


def _dicts(cursor: sqlite3.Cursor) -> list[dict]:
    keys = [d[0] for d in cursor.description]
    return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]


def _records(conn: sqlite3.Connection, rows: Sequence[dict]) -> list[dict]:
    """Decision records for ``rows`` with their feedback, fetched in one query."""
    if not rows:
        return []
    ids = [r["decision_id"] for r in rows]
    marks = ", ".join("?" for _ in ids)
    feedback: dict[str, list[dict]] = {i: [] for i in ids}
    sql = f"SELECT * FROM feedback WHERE decision_id IN ({marks}) ORDER BY seq"  # noqa: S608
    for f in _dicts(conn.execute(sql, ids)):
        feedback[f["decision_id"]].append(f)
    return [decision_record(r, feedback[r["decision_id"]]) for r in rows]


def _read(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` inside one short read transaction (a consistent snapshot)."""
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        # An interrupted statement (time limit) may already have ended the transaction.
        if conn.in_transaction:
            conn.execute("COMMIT")


def query(
    conn: sqlite3.Connection,
    filters: Mapping[str, Any] | None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict], str | None]:
    """One page of decision records, newest first; returns ``(records, next_cursor)``."""
    check_limit(limit)
    normalized = normalize_filters(filters)
    before = decode_cursor(cursor, normalized) if cursor else None

    def page(conn: sqlite3.Connection) -> tuple[list[dict], str | None]:
        bounds = _seq_bounds(conn, normalized)
        if bounds is None:
            return [], None
        if before is not None:
            bounds = (bounds[0], min(bounds[1], before - 1))
        rows = _matching_rows(conn, normalized, bounds, limit + 1, newest_first=True)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["seq"], normalized) if more else None
        return _records(conn, rows), next_cursor

    return _read(conn, page)


def iter_records(
    read: Callable[[Callable[[sqlite3.Connection], list[dict]]], list[dict]],
    filters: Mapping[str, Any] | None, chunk: int = EXPORT_CHUNK
) -> Iterator[dict]:
    """Every matching record, oldest first, in chunks of short read transactions.

    ``read(fn)`` runs ``fn(conn)`` in one short read transaction (called per chunk, so a
    generator consumed slowly by a streaming response holds no transaction between chunks).
    Records appended after the export started are included only if they fall in range.
    """
    normalized = normalize_filters(filters)
    last_seq = 0

    def next_chunk(conn: sqlite3.Connection) -> list[dict]:
        bounds = _seq_bounds(conn, normalized)
        if bounds is None or bounds[1] <= last_seq:
            return []
        rows = _matching_rows(conn, normalized, (max(bounds[0], last_seq + 1), bounds[1]),
                              chunk, newest_first=False)
        return _records(conn, rows)

    while True:
        records = read(lambda conn: _read(conn, next_chunk))
        yield from records
        if len(records) < chunk:
            return
        last_seq = records[-1]["chain"]["seq"]


def _stats_where(filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """WHERE over ``d`` for statistics: time bounds on created_at (the same rows as the seq
    range, as created_at never decreases along seq) and the equality filters."""
    clauses, params = ["1"], []
    if "since" in filters:
        clauses.append("d.created_at >= ?")
        params.append(filters["since"])
    if "until" in filters:
        clauses.append("d.created_at <= ?")
        params.append(filters["until"])
    for name in EQUALITY_FILTERS:
        if name in filters:
            value = filters[name]
            # Column names come from the EQUALITY_FILTERS constant, never from input.
            if isinstance(value, list):  # patient_hash under several secret keys
                clauses.append(f"d.{name} IN ({', '.join('?' for _ in value)})")
                params.extend(value)
            else:
                clauses.append(f"d.{name} = ?")
                params.append(value)
    return " AND ".join(clauses), params


def stats(
    conn: sqlite3.Connection, filters: Mapping[str, Any] | None, group_by: Sequence[str]
) -> dict:
    """``{"total": n, "groups": [{<field>: value, …, "count", "override_rate"}]}``.

    ``override_rate`` = decisions whose latest feedback is ``overridden`` ÷ decisions with
    any feedback, in the group; ``null`` when none has feedback.  ``day`` and ``month`` are
    UTC (``2026-11-23``, ``2026-11``).  Groups are ordered by their values (NULL first).

    Two reads in one snapshot: counts per group over the covering index ``decisions_stats``,
    and counts per group and outcome over ``feedback_latest`` (a few % of decisions) joined
    to the same index by ``(created_at, seq)``; decisions without feedback are the
    difference.  The counting is done by a C-level ``Counter`` over the index rows: it is
    linear in rows, where SQLite's GROUP BY sorts every row (2-3x slower for 1 M rows).
    """
    fields = check_group_by(group_by)
    normalized = normalize_filters(filters)
    # Grouped columns other than feedback; each key below is a tuple of their values.
    columns = [GROUP_EXPRESSIONS[f] for f in fields if f != "feedback"]
    feedback_filter = normalized.get("feedback")

    def compute(conn: sqlite3.Connection) -> dict:
        where, params = _stats_where(normalized)
        # patient_hash is not in the covering index, but its own index is far more selective
        # (the planner then seeks feedback_latest per decision).  Otherwise feedback_latest is
        # the outer loop of the join: one index seek per decision with feedback.
        source, join = "decisions d", "JOIN"
        if "patient_hash" not in normalized:
            source, join = f"decisions d INDEXED BY {STATS_INDEX}", "CROSS JOIN"
        selected = ", ".join(columns) if columns else "NULL"
        counts: Counter[tuple] = Counter()
        if feedback_filter in FEEDBACK_OUTCOMES:
            pass  # every decision counted has feedback: with_feedback holds them all
        elif columns:
            sql = f"SELECT {selected} FROM {source} WHERE {where}"  # noqa: S608
            counts.update(conn.execute(sql, params))
        else:
            sql = f"SELECT count(*) FROM {source} WHERE {where}"  # noqa: S608
            counts[()] = conn.execute(sql, params).fetchone()[0]
        # After the scan, which has brought the index pages these seeks land on into cache.
        with_feedback: Counter[tuple] = Counter()  # (key, outcome) -> decisions
        fb_sql = (
            f"SELECT {selected}, fl.outcome, count(*) FROM feedback_latest fl "  # noqa: S608
            f"{join} {source} ON d.created_at = fl.created_at AND d.seq = fl.decision_seq "
            f"WHERE {where} GROUP BY {', '.join([*columns, 'fl.outcome'])}"
        )
        for row in conn.execute(fb_sql, params):
            key = tuple(row[: len(columns)])
            with_feedback[key, row[-2]] += row[-1]
        return merge_stats(fields, counts, with_feedback, feedback_filter)

    return _read(conn, compute)

