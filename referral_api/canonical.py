"""Canonical JSON and the hash chain shared by every append-only table.

An auditor can re-verify a chain with nothing but a JSON library and SHA-256 (see
``db/README.md``): ``hash = sha256(prev_hash + canonical_json(row_without_hash))``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(obj: Any) -> bytes:
    """UTF-8 JSON with sorted keys, no insignificant whitespace and no ASCII escaping.

    NaN and infinities are refused (``ValueError``): they are not JSON and would make the
    hashed text depend on the serializer.
    """
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def chain_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over ``prev_hash`` (ASCII hex) followed by ``canonical_json(fields)``.

    ``fields`` is every stored column of the row except ``hash`` itself (``prev_hash``
    included), so changing any column, or the order of rows, breaks the chain.
    """
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(canonical_json(dict(fields)))
    return digest.hexdigest()
