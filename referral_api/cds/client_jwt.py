"""CDS Hooks client authentication: the EHR's signed JWT (CDS Hooks 2.0, "Trusting CDS Clients").

Verification is PyJWT's; this module only decides *which* keys and claims are acceptable:

- the issuer must be registered in the ``REFERRAL_API_CDS_CLIENTS`` file, with its JWKS inline
  (``{"<iss>": {"jwks": {...}}}``) or at a URL (``{"<iss>": {"jwks_url": "https://…"}}``,
  fetched with a timeout and cached);
- the algorithm must be ES384 or RS384 (the ones CDS Hooks names): ``none`` and every HMAC
  algorithm are refused before any key is looked at, so a public key can never be used as an
  HMAC secret;
- ``aud`` must be the URL called, ``exp``, ``iat`` and ``jti`` are required, and a ``jti``
  already seen is refused (the store is the decision log's database, shared by all workers).

The ``jku`` header the spec allows is ignored on purpose: keys come only from the registration.
Every failure raises :class:`ClientAuthError` with a short reason that names no secret.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

#: CDS Hooks 2.0: "the CDS Client MUST use ES384 or RS384".
ALLOWED_ALGORITHMS = ("ES384", "RS384")
_KEY_TYPE = {"ES384": "EC", "RS384": "RSA"}
#: Clock skew tolerated on ``exp`` and ``iat`` (seconds).
DEFAULT_LEEWAY = 30
JWKS_TIMEOUT_SECONDS = 5.0
JWKS_CACHE_SECONDS = 300.0
#: A kid not in the cached set triggers a refetch, but not more often than this.
JWKS_MIN_REFRESH_SECONDS = 30.0
MAX_JWKS_BYTES = 256 * 1024

KeySet = tuple[dict[str, Any], ...]
SeenJti = Callable[[str, str, int], bool]
Fetch = Callable[[str, float], bytes]


class ClientAuthError(Exception):
    """The client token is not acceptable; ``str(error)`` is safe to return to the caller."""


class ClientRegistryError(ValueError):
    """The clients file is missing or malformed (raised at start-up, not per request)."""


@dataclass(frozen=True)
class ClientToken:
    """A verified client token."""

    issuer: str
    subject: str | None
    jti: str
    claims: dict[str, Any]


def looks_like_jwt(token: str) -> bool:
    """True when ``token`` has the JWS compact shape with a JSON header naming ``alg``.

    Lets one ``Authorization: Bearer`` header carry either an API key or a client JWT.
    """
    parts = token.split(".")
    if len(parts) != 3 or not parts[0]:
        return False
    try:
        padded = parts[0] + "=" * (-len(parts[0]) % 4)
        header = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def _default_fetch(url: str, timeout: float) -> bytes:
    if not url.lower().startswith(("https://", "http://")):
        raise ClientAuthError("the client's jwks_url is not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return response.read(MAX_JWKS_BYTES + 1)


def _key_set(jwks: Any) -> tuple[dict[str, Any], ...]:
    """The signing keys of a JWKS usable with an allowed algorithm (raw JWK dicts)."""
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise ClientAuthError("the client's JWKS has no 'keys' list")
    usable = []
    for jwk in jwks["keys"]:
        if not isinstance(jwk, Mapping) or jwk.get("use", "sig") != "sig":
            continue
        if jwk.get("kty") not in _KEY_TYPE.values():
            continue
        try:
            jwt.PyJWK(dict(jwk))
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        usable.append(dict(jwk))
    if not usable:
        raise ClientAuthError("the client's JWKS holds no usable ES384 or RS384 key")
    return tuple(usable)


class CdsClientRegistry:
    """Trusted CDS clients (issuer → JWKS) and the verification of their tokens."""

    def __init__(
        self,
        clients: Mapping[str, Mapping[str, Any]],
        *,
        fetch: Fetch = _default_fetch,
        timeout: float = JWKS_TIMEOUT_SECONDS,
        cache_seconds: float = JWKS_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients: dict[str, dict[str, Any]] = {}
        for issuer, entry in clients.items():
            if not isinstance(issuer, str) or not issuer:
                raise ClientRegistryError("every client must be keyed by its issuer (iss)")
            if not isinstance(entry, Mapping) or (("jwks" in entry) == ("jwks_url" in entry)):
                raise ClientRegistryError(
                    f"client {issuer!r}: give exactly one of 'jwks' or 'jwks_url'")
            if "jwks_url" in entry and not (
                    isinstance(entry["jwks_url"], str)
                    and entry["jwks_url"].lower().startswith(("https://", "http://"))):
                raise ClientRegistryError(f"client {issuer!r}: 'jwks_url' must be an http(s) URL")
            self._clients[issuer] = dict(entry)
        self._fetch = fetch
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, float, KeySet]] = {}
        self._lock = threading.Lock()
        # Inline key sets are parsed once, up front: a broken registration fails at start-up.
        self._inline: dict[str, KeySet] = {}
        for issuer, entry in self._clients.items():
            if "jwks" in entry:
                try:
                    self._inline[issuer] = _key_set(entry["jwks"])
                except ClientAuthError as exc:
                    raise ClientRegistryError(f"client {issuer!r}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> CdsClientRegistry:
        """Load ``{"<iss>": {"jwks": {...}} | {"jwks_url": "…"}}`` from a JSON file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ClientRegistryError(f"cannot read the CDS clients file: {exc.strerror}") from None
        except ValueError:
            raise ClientRegistryError("the CDS clients file is not valid JSON") from None
        if not isinstance(data, dict):
            raise ClientRegistryError("the CDS clients file must hold a JSON object")
        return cls(data, **kwargs)

    @property
    def issuers(self) -> frozenset[str]:
        """The registered issuers."""
        return frozenset(self._clients)

    def _jwks(self, issuer: str, *, refresh: bool = False) -> KeySet:
        if issuer in self._inline:
            return self._inline[issuer]
        url = self._clients[issuer]["jwks_url"]
        now = self._clock()
        with self._lock:
            cached = self._cache.get(issuer)
            if cached and now < cached[0] and not (
                    refresh and now - cached[1] >= JWKS_MIN_REFRESH_SECONDS):
                return cached[2]
            try:
                raw = self._fetch(url, self._timeout)
            except ClientAuthError:
                raise
            except Exception:  # network errors of every kind: the token cannot be checked
                if cached:  # a stale set beats refusing every client while its host is down
                    return cached[2]
                raise ClientAuthError("the client's JWKS could not be fetched") from None
            if len(raw) > MAX_JWKS_BYTES:
                raise ClientAuthError("the client's JWKS is too large")
            try:
                key_set = _key_set(json.loads(raw))
            except ValueError:
                raise ClientAuthError("the client's JWKS is not valid JSON") from None
            self._cache[issuer] = (now + self._cache_seconds, now, key_set)
            return key_set

    def _candidate_keys(self, issuer: str, header: Mapping[str, Any]) -> list[jwt.PyJWK]:
        alg = header["alg"]
        kid = header.get("kid")

        def matching(key_set: KeySet) -> list[jwt.PyJWK]:
            keys = []
            for jwk in key_set:
                if jwk.get("kty") != _KEY_TYPE[alg] or jwk.get("alg", alg) != alg:
                    continue
                if kid is not None and jwk.get("kid") != kid:
                    continue
                try:
                    keys.append(jwt.PyJWK(jwk, algorithm=alg))
                except (jwt.PyJWTError, ValueError, TypeError):
                    continue  # e.g. an EC key on another curve than P-384
            return keys

        keys = matching(self._jwks(issuer))
        if not keys and kid is not None and issuer not in self._inline:
            keys = matching(self._jwks(issuer, refresh=True))  # the client may have rotated
        return keys

    def verify(
        self,
        token: str,
        *,
        audience: str,
        seen_jti: SeenJti,
        leeway: int = DEFAULT_LEEWAY,
    ) -> ClientToken:
        """Verify ``token`` for ``audience``; raises :class:`ClientAuthError` on any failure.

        ``seen_jti(iss, jti, exp)`` records the token id and returns True when it was seen
        before (a replay).
        """
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ClientAuthError("the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise ClientAuthError("the token's algorithm is not ES384 or RS384")
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self._clients:
            raise ClientAuthError("the token's issuer is not a registered CDS client")
        keys = self._candidate_keys(issuer, header)
        if not keys:
            raise ClientAuthError("no key of the issuer's JWKS matches the token")
        claims: dict[str, Any] | None = None
        last_error = "the token's signature does not verify"
        for key in keys:
            try:
                claims = jwt.decode(
                    token,
                    key=key.key,
                    algorithms=[alg],
                    audience=audience,
                    issuer=issuer,
                    leeway=leeway,
                    options={"require": ["iss", "aud", "exp", "iat", "jti"],
                             "verify_signature": True, "verify_exp": True,
                             "verify_iat": True, "verify_aud": True, "verify_iss": True},
                )
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError:
                raise ClientAuthError("the token has expired") from None
            except jwt.ImmatureSignatureError:
                raise ClientAuthError("the token's iat is in the future") from None
            except jwt.InvalidAudienceError:
                raise ClientAuthError("the token's aud is not the URL called") from None
            except jwt.MissingRequiredClaimError as exc:
                raise ClientAuthError(f"the token has no '{exc.claim}' claim") from None
            except jwt.PyJWTError:
                last_error = "the token is invalid"
                continue
        if claims is None:
            raise ClientAuthError(last_error)
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise ClientAuthError("the token's jti must be a non-empty string")
        if seen_jti(issuer, jti, int(claims["exp"])):
            raise ClientAuthError("the token's jti was already used")
        subject = claims.get("sub")
        return ClientToken(issuer=issuer, subject=subject if isinstance(subject, str) else None,
                           jti=jti, claims=claims)
