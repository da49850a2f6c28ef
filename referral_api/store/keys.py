"""API keys, for every backend: the token format, its hash, a new key's checks, and how a
presented token is identified against a stored row. Created by the CLI, stored only as a
hash, checked on every request.

A token is ``rk_<key_id>_<secret>``: ``key_id`` (12 hex) locates the row, ``secret`` (32 random
bytes, URL-safe base64 without padding) is checked against its stored SHA-256 in constant
time.  A plain SHA-256 is enough here (no slow KDF): the secret has 256 bits of entropy, so
the stored hash cannot be brute-forced, and verification stays cheap on every request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable, Sequence

from referral_api.enums import ROLES
from referral_api.store.interface import ApiKey

TOKEN_PREFIX = "rk_"  # noqa: S105 - a format prefix, not a secret
CACHE_TTL_SECONDS = 5.0
CACHE_MAX = 1024
_TOKEN_RE = re.compile(r"rk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


def identify_token(token: str, row_of: Callable[[str], dict | None]
                   ) -> tuple[ApiKey | None, str | None]:
    """``(key, None)`` for a valid token, else ``(None, reason)``; ``row_of(key_id)`` reads
    the stored ``api_keys`` row (any backend: the PostgreSQL key store uses this too)."""
    if not isinstance(token, str):
        return None, "malformed_key"
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        return None, "malformed_key"
    key_id, secret = match.groups()
    row = row_of(key_id)
    if row is None:
        return None, "unknown_key"
    if not hmac.compare_digest(secret_hash(secret), row["secret_sha256"]):
        return None, "wrong_secret"
    if row["revoked_at"] is not None:
        return None, "revoked_key"
    return api_key(row), None


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def api_key(row: dict) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        label=row["label"],
        roles=tuple(json.loads(row["roles_json"])),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def new_key(roles: Sequence[str], label: str) -> tuple[tuple[str, ...], str, str]:
    """Check a key about to be created: ``(roles, label, secret)`` with the roles
    de-duplicated in order, the label stripped and a new random secret; ValueError names
    what is wrong."""
    unique = tuple(dict.fromkeys(roles))  # de-duplicate, keep order
    if not unique:
        raise ValueError("a key needs at least one role")
    unknown = [r for r in unique if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}; roles are {list(ROLES)}")
    if not label or not label.strip():
        raise ValueError("a key needs a label")
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
    return unique, label.strip(), secret
