"""Validation of the audit-read arguments every backend takes: filters, limits, cursors.

Backend-neutral, so that a filter, limit or cursor valid on one backend is valid on every one
(a cursor names a ``seq``, which is the same on every backend holding the same chain).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from referral_api.enums import FEEDBACK_FILTERS
from referral_api.store.canonical import canonical_json
from referral_api.store.interface import FILTERS, GROUP_FIELDS, MAX_LIMIT
from referral_api.store.timestamps import parse_instant

__all__ = ["check_group_by", "check_limit", "decode_cursor", "encode_cursor", "normalize_filters"]

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
