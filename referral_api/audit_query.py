"""Audit reads over the decision log: filtered pages, streamed export rows and statistics.

Filters (all optional, ``None`` ignored): ``since`` and ``until`` (both inclusive, to the ms),
as ISO 8601 strings (no offset = UTC) or datetimes; exact matches on ``region``,
``appropriateness``, ``urgency``, ``scenario`` (scenario id), ``ruleset_version``,
``channel``, ``client``, ``ordering_clinician``, ``patient_hash`` (already keyed-hashed by
the caller); ``feedback``: ``accepted`` | ``overridden`` (the decision's *latest* feedback
outcome) | ``none`` (no feedback yet).  Invalid filters, limits or cursors raise
``ValueError`` (the API answers 422).

Time bounds are turned into a ``seq`` range through the ``created_at`` index (``created_at``
never decreases along ``seq``), so every query walks ``seq`` and "newest first" pagination
needs no sort.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from referral_api.canonical import canonical_json
from referral_api.db import utc_timestamp

MAX_LIMIT = 500
EXPORT_CHUNK = 500
EQUALITY_FILTERS = (
    "region",
    "appropriateness",
    "urgency",
    "scenario",
    "ruleset_version",
    "channel",
    "client",
    "ordering_clinician",
    "patient_hash",
)
FILTERS = ("since", "until", *EQUALITY_FILTERS, "feedback")
FEEDBACK_FILTER_VALUES = ("accepted", "overridden", "none")

# The latest feedback outcome of decision `d` (NULL without feedback); the feedback index on
# decision_id (which implicitly ends with feedback.seq) answers it with one seek.
_LATEST_FEEDBACK = (
    "(SELECT f.outcome FROM feedback f WHERE f.decision_id = d.decision_id "
    "ORDER BY f.seq DESC LIMIT 1)"
)
GROUP_FIELDS: dict[str, str] = {
    "appropriateness": "d.appropriateness",
    "urgency": "d.urgency",
    "scenario": "d.scenario",
    "ruleset_version": "d.ruleset_version",
    "channel": "d.channel",
    "region": "d.region",
    "ordering_clinician": "d.ordering_clinician",
    "feedback": f"COALESCE({_LATEST_FEEDBACK}, 'none')",
    "day": "substr(d.created_at, 1, 10)",
    "month": "substr(d.created_at, 1, 7)",
}


def _timestamp(name: str, value: Any) -> str:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name}: not an ISO 8601 date-time") from None
    else:
        raise ValueError(f"{name}: not an ISO 8601 date-time")
    try:
        return utc_timestamp(moment)  # no offset means UTC (the contract)
    except OverflowError:
        raise ValueError(f"{name}: outside the years 1 to 9999") from None


def normalize_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated filters with ``None`` dropped and times in stored form; ValueError if bad."""
    normalized: dict[str, Any] = {}
    for name, value in (filters or {}).items():
        if value is None:
            continue
        if name not in FILTERS:
            raise ValueError(f"unknown filter {name!r}")
        if name in ("since", "until"):
            normalized[name] = _timestamp(name, value)
        elif name == "feedback":
            if value not in FEEDBACK_FILTER_VALUES:
                raise ValueError(f"feedback must be one of {FEEDBACK_FILTER_VALUES}")
            normalized[name] = value
        else:
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
            normalized[name] = value
    return normalized


def _seq_bounds(conn: sqlite3.Connection, filters: Mapping[str, Any]) -> tuple[int, int] | None:
    """Inclusive seq range for since/until, or None when the range is empty."""
    low, high = 1, 2**63 - 1
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
            # Column names come from the EQUALITY_FILTERS constant, never from input.
            clauses.append(f"d.{name} = ?")
            params.append(filters[name])
    feedback = filters.get("feedback")
    if feedback == "none":
        clauses.append("NOT EXISTS (SELECT 1 FROM feedback f WHERE f.decision_id = d.decision_id)")
    elif feedback is not None:
        clauses.append(f"{_LATEST_FEEDBACK} = ?")
        params.append(feedback)
    return " AND ".join(clauses), params


def _filters_digest(filters: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(dict(filters))).hexdigest()[:16]


def encode_cursor(seq: int, filters: Mapping[str, Any]) -> str:
    """Opaque URL-safe cursor: the last seq returned, bound to the filters it paginates."""
    payload = canonical_json({"v": 1, "s": seq, "f": _filters_digest(filters)})
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, filters: Mapping[str, Any]) -> int:
    """The seq encoded in ``cursor``; ValueError when malformed or made for other filters."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        seq = payload["s"]
        valid = (
            payload.get("v") == 1 and isinstance(seq, int) and not isinstance(seq, bool) and seq > 0
        )
        digest = payload.get("f")
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
        raise ValueError("invalid cursor") from None
    if not valid:
        raise ValueError("invalid cursor")
    if digest != _filters_digest(filters):
        raise ValueError("cursor does not belong to these filters")
    return seq


def _dicts(cursor: sqlite3.Cursor) -> list[dict]:
    keys = [d[0] for d in cursor.description]
    return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]


def _records(conn: sqlite3.Connection, rows: Sequence[dict]) -> list[dict]:
    """Decision records for ``rows`` with their feedback, fetched in one query."""
    from referral_api.decision_log import decision_record

    if not rows:
        return []
    ids = [r["decision_id"] for r in rows]
    marks = ", ".join("?" for _ in ids)
    feedback: dict[str, list[dict]] = {i: [] for i in ids}
    sql = f"SELECT * FROM feedback WHERE decision_id IN ({marks}) ORDER BY seq"  # noqa: S608
    for f in _dicts(conn.execute(sql, ids)):
        feedback[f["decision_id"]].append(f)
    return [decision_record(r, feedback[r["decision_id"]]) for r in rows]


def _read(conn: sqlite3.Connection, fn: Any, *args: Any) -> Any:
    """Run ``fn`` inside one short read transaction (a consistent snapshot)."""
    conn.execute("BEGIN")
    try:
        return fn(conn, *args)
    finally:
        conn.execute("COMMIT")


def query(
    conn: sqlite3.Connection,
    filters: Mapping[str, Any] | None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict], str | None]:
    """One page of decision records, newest first; returns ``(records, next_cursor)``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}")
    normalized = normalize_filters(filters)
    before = decode_cursor(cursor, normalized) if cursor else None

    def page(conn: sqlite3.Connection) -> tuple[list[dict], str | None]:
        bounds = _seq_bounds(conn, normalized)
        if bounds is None:
            return [], None
        if before is not None:
            bounds = (bounds[0], min(bounds[1], before - 1))
        where, params = _where(normalized, bounds)
        sql = f"SELECT d.* FROM decisions d WHERE {where} ORDER BY d.seq DESC LIMIT ?"  # noqa: S608
        rows = _dicts(conn.execute(sql, [*params, limit + 1]))
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["seq"], normalized) if more else None
        return _records(conn, rows), next_cursor

    return _read(conn, page)


def iter_records(
    conn_factory: Any, filters: Mapping[str, Any] | None, chunk: int = EXPORT_CHUNK
) -> Iterator[dict]:
    """Every matching record, oldest first, in chunks of short read transactions.

    ``conn_factory()`` returns the connection to use (called per chunk, so a generator
    consumed slowly by a streaming response holds no transaction between chunks).
    Records appended after the export started are included only if they fall in range.
    """
    normalized = normalize_filters(filters)
    last_seq = 0

    def next_chunk(conn: sqlite3.Connection) -> list[dict]:
        bounds = _seq_bounds(conn, normalized)
        if bounds is None or bounds[1] <= last_seq:
            return []
        where, params = _where(normalized, (max(bounds[0], last_seq + 1), bounds[1]))
        sql = f"SELECT d.* FROM decisions d WHERE {where} ORDER BY d.seq LIMIT ?"  # noqa: S608
        return _records(conn, _dicts(conn.execute(sql, [*params, chunk])))

    while True:
        records = _read(conn_factory(), next_chunk)
        yield from records
        if len(records) < chunk:
            return
        last_seq = records[-1]["chain"]["seq"]


def stats(
    conn: sqlite3.Connection, filters: Mapping[str, Any] | None, group_by: Sequence[str]
) -> dict:
    """``{"total": n, "groups": [{<field>: value, …, "count", "override_rate"}]}``.

    ``override_rate`` = decisions whose latest feedback is ``overridden`` ÷ decisions with
    any feedback, in the group; ``null`` when none has feedback.  ``day`` and ``month`` are
    UTC (``2026-11-23``, ``2026-11``).  Groups are ordered by their values.
    """
    fields = list(group_by)
    unknown = [f for f in fields if f not in GROUP_FIELDS]
    if unknown:
        raise ValueError(f"cannot group by {unknown}; allowed: {list(GROUP_FIELDS)}")
    if len(set(fields)) != len(fields):
        raise ValueError("group_by lists a field twice")
    normalized = normalize_filters(filters)

    def compute(conn: sqlite3.Connection) -> dict:
        bounds = _seq_bounds(conn, normalized)
        if bounds is None:
            return {"total": 0, "groups": []}
        where, params = _where(normalized, bounds)
        selected = [f"{GROUP_FIELDS[f]} AS g{i}" for i, f in enumerate(fields)]
        keys = [f"g{i}" for i in range(len(fields))]
        sql = (
            f"SELECT {', '.join([*selected, f'{_LATEST_FEEDBACK} AS fb'])} "  # noqa: S608
            f"FROM decisions d WHERE {where}"
        )
        outer = (
            f"SELECT {''.join(f'{k}, ' for k in keys)}count(*) AS n, "  # noqa: S608
            "sum(fb = 'overridden') AS overridden, count(fb) AS with_feedback "
            f"FROM ({sql})"
            + (f" GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if keys else "")
        )
        groups = []
        total = 0
        for row in conn.execute(outer, params):
            values, (n, overridden, with_feedback) = row[: len(keys)], row[len(keys) :]
            if n == 0:
                continue
            total += n
            group: dict[str, Any] = dict(zip(fields, values, strict=True))
            group["count"] = n
            group["override_rate"] = (overridden / with_feedback) if with_feedback else None
            groups.append(group)
        return {"total": total, "groups": groups}

    return _read(conn, compute)
