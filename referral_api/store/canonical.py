"""Canonical JSON and the hash chain shared by every append-only table.

An auditor can re-verify a chain with nothing but a JSON library and SHA-256 (see
``db/README.md``): ``hash = sha256(prev_hash + canonical_json(row_without_hash))``.

The canonical form is defined by the standard library's encoder (sorted keys, ``,``/``:``
separators, no ASCII escaping, UTF-8). Every decision is serialised three times on the hot
path (input, output, chain hash), which costs ~70 µs with the standard library and ~30 µs
with orjson and the checks below, so orjson writes it whenever its bytes are provably the
same, and the standard library decides every other case (a property test holds the two equal
on arbitrary JSON).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

GENESIS_HASH = "0" * 64

_DIGITS = frozenset(b"0123456789")
#: Dates and dataclasses are handed back (and so refused, like the standard library does)
#: instead of being serialised by orjson's own rules.
_ORJSON_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                   | orjson.OPT_PASSTHROUGH_DATACLASS)


def _stdlib_canonical(obj: Any) -> bytes:
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _flat_and_finite(obj: Any) -> bool:
    """True for a mapping of scalars without NaN or infinity (a table row)."""
    if not isinstance(obj, dict):
        return False
    for value in obj.values():
        if isinstance(value, float):
            if not math.isfinite(value):
                return False
        elif isinstance(value, dict | list | tuple):
            return False
    return True


def _may_differ(text: bytes) -> bool:
    """Could ``text`` hold a float that orjson writes unlike the standard library?

    The only such floats lie in [1e-9, 1e-4): orjson writes 1e-7 where the standard library
    writes 1e-07, and 0.00005 where it writes 5e-05 (the standard library never writes four
    zeros after the point). Plain substring searches: a regular expression costs ~50 µs on a
    4 KB decision.
    """
    if b"0.0000" in text:
        return True
    at = text.find(b"e-")
    while at != -1:
        if at > 0 and text[at - 1] in _DIGITS and at + 2 < len(text) and text[at + 2] in _DIGITS:
            return True
        at = text.find(b"e-", at + 2)
    return False


def canonical_json(obj: Any) -> bytes:
    """UTF-8 JSON with sorted keys, no insignificant whitespace and no ASCII escaping.

    NaN and infinities are refused (``ValueError``): they are not JSON and would make the
    hashed text depend on the serializer.
    """
    try:
        text = orjson.dumps(obj, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        # Integers beyond 64 bits, non-string keys, nesting past orjson's limit …
        return _stdlib_canonical(obj)
    # orjson writes NaN and infinities as null, which the canonical form refuses: text with
    # a null is trusted only when no float in it can be one (a flat row is checked here).
    if _may_differ(text) or (b"null" in text and not _flat_and_finite(obj)):
        return _stdlib_canonical(obj)
    return text


def chain_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over ``prev_hash`` (ASCII hex) followed by ``canonical_json(fields)``.

    ``fields`` is every stored column of the row except ``hash`` itself (``prev_hash``
    included), so changing any column, or the order of rows, breaks the chain.
    """
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(canonical_json(dict(fields)))
    return digest.hexdigest()
