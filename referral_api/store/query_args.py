"""Validation of the audit-read arguments every backend takes: filters, limits, cursors.

Backend-neutral, so that a filter, limit or cursor valid on one backend is valid on every one
(a cursor names a ``seq``, which is the same on every backend holding the same chain).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from referral_api.enums import FEEDBACK_FILTERS, FEEDBACK_OUTCOMES
from referral_api.store.canonical import canonical_json
from referral_api.store.interface import FILTERS, GROUP_FIELDS, MAX_LIMIT
from referral_api.store.timestamps import parse_instant

__all__ = ["EXPORT_CHUNK", "MAX_SEQ", "check_group_by", "check_limit", "decode_cursor",
           "encode_cursor", "merge_stats", "normalize_filters"]

#: Records per export chunk (each chunk is one bounded read).
EXPORT_CHUNK = 500
#: The largest seq either backend holds (a signed 64-bit integer): the open upper end of a
#: seq range.
MAX_SEQ = 2**63 - 1

_CURSOR_VERSION = 1
#: Hex digits of the filters' digest a cursor carries (enough to tell filter sets apart).
_DIGEST_DIGITS = 16


def normalize_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validated filters with ``None`` dropped and times in stored form; ValueError if bad."""
    normalized: dict[str, Any] = {}
    for name, value in (filters or {}).items():
        if value is None:
            continue
        if name not in FILTERS:
            raise ValueError(f"unknown filter {name!r}")
        if name in ("since", "until"):
            try:
                normalized[name] = parse_instant(value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        elif name == "feedback":
            if value not in FEEDBACK_FILTERS:
                raise ValueError(f"feedback must be one of {FEEDBACK_FILTERS}")
            normalized[name] = value
        elif name == "patient_hash" and isinstance(value, list | tuple):
            # Hashes of one reference under every secret key (after a rotation): any matches.
            if not value or not all(isinstance(v, str) for v in value):
                raise ValueError("patient_hash must be a string or a non-empty list of strings")
            normalized[name] = list(value)
        else:
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
            normalized[name] = value
    return normalized


def check_limit(limit: Any) -> int:
    """``limit`` when it is an integer from 1 to :data:`MAX_LIMIT`; else ValueError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def check_group_by(group_by: Sequence[str]) -> list[str]:
    """``group_by`` as a list when every field is known and none repeats; else ValueError."""
    fields = list(group_by)
    unknown = [f for f in fields if f not in GROUP_FIELDS]
    if unknown:
        raise ValueError(f"cannot group by {unknown}; allowed: {list(GROUP_FIELDS)}")
    if len(set(fields)) != len(fields):
        raise ValueError("group_by lists a field twice")
    return fields


def _filters_digest(filters: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(dict(filters))).hexdigest()[:_DIGEST_DIGITS]


def encode_cursor(seq: int, filters: Mapping[str, Any]) -> str:
    """Opaque URL-safe cursor: the last seq returned, bound to the (normalized) filters."""
    payload = canonical_json({"v": _CURSOR_VERSION, "s": seq, "f": _filters_digest(filters)})
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, filters: Mapping[str, Any]) -> int:
    """The seq encoded in ``cursor``; ValueError when malformed or made for other filters."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        seq = payload["s"]
        valid = (
            payload.get("v") == _CURSOR_VERSION
            and isinstance(seq, int)
            and not isinstance(seq, bool)
            and seq > 0
        )
        digest = payload.get("f")
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
        raise ValueError("invalid cursor") from None
    if not valid:
        raise ValueError("invalid cursor")
    if digest != _filters_digest(filters):
        raise ValueError("cursor does not belong to these filters")
    return seq


def _sort_key(key: tuple) -> tuple:
    # SQL order: NULL first, then the (text) values.
    return tuple((value is not None, value or "") for value in key)


def merge_stats(
    fields: list[str],
    counts: Counter[tuple],
    with_feedback: Counter[tuple],
    feedback_filter: str | None,
) -> dict:
    """Groups from decision counts per key and feedback counts per (key, latest outcome).

    Every key with feedback is also a key of ``counts`` (same filters, same snapshot), except
    under a feedback outcome filter, where ``counts`` is not read at all.
    """
    accepted = {key: n for (key, outcome), n in with_feedback.items() if outcome == "accepted"}
    overridden = {key: n for (key, outcome), n in with_feedback.items() if outcome != "accepted"}
    at = fields.index("feedback") if "feedback" in fields else None
    rows: list[tuple[tuple, int, float | None]] = []  # (group values, count, override rate)
    if feedback_filter in FEEDBACK_OUTCOMES:
        chosen, fixed_rate = ((overridden, 1.0) if feedback_filter == "overridden"
                              else (accepted, 0.0))
        for key, n in chosen.items():
            values = key if at is None else (*key[:at], feedback_filter, *key[at:])
            rows.append((values, n, fixed_rate))
    else:
        for key, n in counts.items():
            yes, no = overridden.get(key, 0), accepted.get(key, 0)
            if feedback_filter == "none" or at is not None:
                split: list[tuple[str, int, float | None]] = [("none", n - yes - no, None)]
                if feedback_filter is None:
                    split += [("accepted", no, 0.0), ("overridden", yes, 1.0)]
                for outcome, m, rate in split:
                    if m > 0:
                        values = key if at is None else (*key[:at], outcome, *key[at:])
                        rows.append((values, m, rate))
            elif n > 0:
                rows.append((key, n, yes / (yes + no) if yes + no else None))
    if any(None in row[0] for row in rows):
        rows.sort(key=lambda row: _sort_key(row[0]))
    else:
        rows.sort()  # group values are unique: plain tuple order, C comparisons only
    groups = []
    for values, n, rate in rows:
        group: dict[str, Any] = dict(zip(fields, values, strict=True))
        group["count"] = n
        group["override_rate"] = rate
        groups.append(group)
    return {"total": sum(row[1] for row in rows), "groups": groups}
