"""Credentials and roles: who may call what (``shared/spec/api-v1.md``, Credentials).

API keys arrive as ``Authorization: Bearer <key>`` or ``X-API-Key``; only their hashes are
stored (the store's ``KeyStore``). Missing or bad credential: 401; valid without
the role: 403. Failed authentications are counted per client (:mod:`referral_api.throttle`)
and answered 429 once a client is over the limit, never before 20 in a minute; a valid
credential is never throttled. Each refusal is a security event in the log (reason, client
address, key id when one was presented — never the secret) and a metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from referral_api.store.interface import key_id_of

from .context import services
from .enums import ADMIN
from .logs import security_event
from .problem import ProblemError

F = TypeVar("F", bound=Callable[..., Any])


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


def client_address() -> str:
    """The client's address: the peer, or the address ProxyFix took from the
    ``REFERRAL_API_TRUSTED_PROXIES`` trusted hops of ``X-Forwarded-For``."""
    return request.remote_addr or "unknown"


def auth_failure(reason: str, credential: str, *, key_id: str | None = None,
                 detail: str | None = None) -> int | None:
    """Count and log one failed authentication of the current client.

    ``reason`` is a fixed code (``missing_credential``, ``unknown_key``, ``wrong_secret``,
    ``revoked_key``, ``jwt_refused`` …), ``credential`` what was presented (``api_key``,
    ``jwt``, ``sign_in``), ``detail`` a short text that names no secret (the JWT refusal).
    Returns None (answer 401) or the seconds for ``Retry-After`` (answer 429).
    """
    svc = services()
    client = client_address()
    wait = svc.limiter.failure(client)
    fields: dict[str, Any] = {"reason": reason, "credential": credential, "client": client}
    if key_id is not None:
        fields["presented_key_id"] = key_id
    if detail is not None:
        fields["detail"] = detail
    if wait is not None:
        svc.metrics.auth_throttled.labels(reason).inc()
        security_event("auth_throttled", "failed authentication throttled (429)",
                       retry_after=wait, **fields)
        return wait
    svc.metrics.auth_failures.labels(reason).inc()
    if reason == "revoked_key":
        security_event("revoked_key_used", "a revoked key was presented", **fields)
    elif credential == "jwt":
        security_event("jwt_refused", "a CDS Hooks client JWT was refused", **fields)
    else:
        security_event("auth_failed", "authentication failed", **fields)
    return None


def too_many_failures(wait: int) -> ProblemError:
    """The 429 problem for a client over the failure limit."""
    return ProblemError(429, "Too many failed authentication attempts; try again later.",
                        headers={"Retry-After": str(wait)})


def refuse(reason: str, credential: str, message: str = "A valid credential is required.",
           *, key_id: str | None = None, detail: str | None = None) -> ProblemError:
    """Count the failure and return the problem to raise: 401, or 429 when over the limit."""
    wait = auth_failure(reason, credential, key_id=key_id, detail=detail)
    return unauthorized(message) if wait is None else too_many_failures(wait)


def bearer_token() -> str | None:
    """The token of the request's ``Authorization: Bearer <token>`` header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def presented_api_key() -> str | None:
    """The API key in the request headers (``Authorization: Bearer`` or ``X-API-Key``)."""
    return bearer_token() or request.headers.get("X-API-Key") or None


def authenticate_api_key() -> Principal:
    """The principal of the API key presented; raises 401/429 (counted) when there is none
    or it is unknown, wrong or revoked."""
    token = presented_api_key()
    if not token:
        raise refuse("missing_credential", "api_key")
    key, reason = services().keys.identify(token)
    if key is None:
        raise refuse(reason or "unknown_key", "api_key", key_id=_known_id(token, reason))
    return Principal(kind="key", label=key.label, roles=frozenset(key.roles), key_id=key.key_id)


def _known_id(token: str, reason: str | None) -> str | None:
    # The id of a key that exists (wrong secret, revoked) helps an operator find its holder.
    return key_id_of(token) if reason in ("wrong_secret", "revoked_key") else None


def unauthorized(detail: str = "A valid credential is required.") -> ProblemError:
    """The 401 problem, with the challenge that tells clients which scheme to use."""
    return ProblemError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="referral-api"'})


def authorize(principal: Principal, roles: tuple[str, ...]) -> Principal:
    """Check an authenticated ``principal`` against ``roles``; return it or raise 403."""
    g.principal = principal  # also for the logs of a refused request (its key id)
    if not principal.has_any(roles):
        role_refused(principal, roles)
        raise ProblemError(403, "This credential does not have the role required: "
                                f"{' or '.join(roles)}.")
    return principal


def role_refused(principal: Principal, roles: tuple[str, ...]) -> None:
    """Log a valid credential refused for want of a role (a security event, not a failure)."""
    g.role_refusal_logged = True
    security_event("role_refused", "a credential without the role required was refused",
                   key_id=principal.key_id, credential=principal.kind,
                   required=list(roles), held=sorted(principal.roles), client=client_address())


def require_role(*roles: str) -> Callable[[F], F]:
    """Decorator: the request needs an API key holding one of ``roles`` (or admin)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            authorize(authenticate_api_key(), roles)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def current_principal() -> Principal:
    """The principal authenticated for this request."""
    return g.principal
