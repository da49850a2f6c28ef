"""Credentials and roles: who may call what (``shared/spec/api-v1.md``, Credentials).

API keys arrive as ``Authorization: Bearer <key>`` or ``X-API-Key``; only their hashes are
stored (:mod:`referral_api.store.sqlite.keys`). Missing or bad credential: 401; valid without
the role: 403.
Repeated failures from one client are throttled with 429, never before 20 in a minute.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from .context import services
from .enums import ADMIN
from .problem import ProblemError

F = TypeVar("F", bound=Callable[..., Any])

FAILURE_LIMIT = 20  # failures tolerated per window before 429 (the contract's floor)
FAILURE_WINDOW_S = 60.0


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API key, a CDS Hooks client JWT, or a browser session."""

    kind: str
    label: str
    roles: frozenset[str]
    key_id: str | None = None

    def has_any(self, roles: tuple[str, ...]) -> bool:
        """True when the principal holds one of ``roles`` (admin holds them all)."""
        return ADMIN in self.roles or bool(self.roles.intersection(roles))


class FailureLimiter:
    """Sliding-window count of failed authentications per client address (per process).

    Each gunicorn worker counts on its own, so a client is throttled after at least
    ``limit`` failures within the window, never earlier: the contract's floor holds.
    """

    def __init__(self, limit: int = FAILURE_LIMIT, window_s: float = FAILURE_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds to wait when ``client`` is over the limit, else None."""
        now = time.monotonic()
        with self._lock:
            if client not in self._failures:
                return None
            times = self._recent(client, now)
            if len(times) < self.limit:
                if not times:
                    del self._failures[client]
                return None
            return max(1, int(self.window_s - (now - times[0])) + 1)

    def record(self, client: str) -> None:
        """Count one failure for ``client``."""
        now = time.monotonic()
        with self._lock:
            self._recent(client, now).append(now)
            if len(self._failures) > 10_000:  # bound memory under address-spraying
                oldest = next(iter(self._failures))
                del self._failures[oldest]


limiter = FailureLimiter()


def client_address() -> str:
    """The peer address (behind a proxy, configure ProxyFix so this is the real client)."""
    return request.remote_addr or "unknown"


def check_not_throttled() -> None:
    """Raise 429 when this client has failed authentication too often recently."""
    wait = limiter.retry_after(client_address())
    if wait is not None:
        raise ProblemError(429, "Too many failed authentication attempts; try again later.",
                           headers={"Retry-After": str(wait)})


def record_auth_failure() -> None:
    """Count a failed authentication from the current client."""
    limiter.record(client_address())


def bearer_token() -> str | None:
    """The token of the request's ``Authorization: Bearer <token>`` header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def presented_api_key() -> str | None:
    """The API key in the request headers (``Authorization: Bearer`` or ``X-API-Key``)."""
    return bearer_token() or request.headers.get("X-API-Key") or None


def authenticate_api_key() -> Principal | None:
    """The principal of the API key presented, or None (missing, unknown or revoked)."""
    token = presented_api_key()
    if not token:
        return None
    key = services().keys.verify(token)
    if key is None:
        return None
    return Principal(kind="key", label=key.label, roles=frozenset(key.roles), key_id=key.key_id)


def unauthorized(detail: str = "A valid credential is required.") -> ProblemError:
    """The 401 problem, with the challenge that tells clients which scheme to use."""
    return ProblemError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="referral-api"'})


def authorize(principal: Principal | None, roles: tuple[str, ...]) -> Principal:
    """Check ``principal`` against ``roles``; record failures; return it or raise 401/403."""
    if principal is None:
        record_auth_failure()
        raise unauthorized()
    if not principal.has_any(roles):
        raise ProblemError(403, "This credential does not have the role required: "
                                f"{' or '.join(roles)}.")
    g.principal = principal
    return principal


def require_role(*roles: str) -> Callable[[F], F]:
    """Decorator: the request needs an API key holding one of ``roles`` (or admin)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check_not_throttled()
            authorize(authenticate_api_key(), roles)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def current_principal() -> Principal:
    """The principal authenticated for this request."""
    return g.principal
