"""The storage interface: what the service, CDS Hooks, the audit API, the dashboard and the CLI
may ask of the decision log and the key store, and the errors they may see.

Everything outside :mod:`referral_api.store` uses only these protocols and types; a backend
(``referral_api.store.sqlite`` today, PostgreSQL beside it) implements them and is chosen by
:func:`referral_api.store.open_store`. The type checker run by ``make test`` checks that each
implementation has every method with a compatible signature (see ``tests/store``).

Semantics every implementation keeps (the shared test suites check them):

- a decision is returned by :meth:`DecisionWriter.append` only after it is durably committed;
  any failure rolls the whole write back and raises :class:`LogUnavailable` (never a partial
  row);
- decisions, feedback and the access log are three hash chains (``seq`` 1, 2, … without gaps,
  each ``prev_hash`` the previous record's ``hash``; see ``db/README.md``);
- an idempotency key (scoped to :attr:`NewDecision.idempotency_owner`) repeated with the same
  ``body_sha256`` within :data:`IDEMPOTENCY_HOURS` returns the original decision with
  ``created=False``; with a different body it raises :class:`IdempotencyConflict`; a repeated
  ``(hook_instance, order_ref)`` returns the original decision;
- every audit read (``get``, ``query``, each chunk of ``iter_records``, ``stats``,
  ``access_log``) runs in one short read transaction under the store's time limit and raises
  :class:`QueryTimeout` when it is exceeded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "DEFAULT_QUERY_TIMEOUT_MS",
    "EQUALITY_FILTERS",
    "FILTERS",
    "GROUP_FIELDS",
    "IDEMPOTENCY_HOURS",
    "KEY_REFUSAL_REASONS",
    "MAX_LIMIT",
    "ApiKey",
    "AuditReader",
    "AuthFailureCounter",
    "ChainWriter",
    "DecisionLog",
    "DecisionWriter",
    "IdempotencyConflict",
    "KeyStore",
    "LogUnavailable",
    "NewDecision",
    "NewFeedback",
    "QueryTimeout",
    "Store",
    "StoreHealth",
    "TokenReplayStore",
    "UnknownDecision",
    "key_id_of",
]

#: An idempotency key returns its decision for this long.
IDEMPOTENCY_HOURS = 24
#: Default time limit of one audit read; ``AUDIT_QUERY_TIMEOUT_MS`` in the settings overrides it.
DEFAULT_QUERY_TIMEOUT_MS = 3000
#: Largest page of :meth:`AuditReader.query` (and of the access log).
MAX_LIMIT = 500

#: Filters of :meth:`AuditReader.query`, :meth:`AuditReader.iter_records` and
#: :meth:`AuditReader.stats` (all optional; ``None`` is ignored). ``since``/``until``: ISO 8601
#: date-time strings or datetimes, inclusive, no offset = UTC; ``patient_hash``: the keyed hash
#: (the caller hashes); ``feedback``: one of :data:`~referral_api.enums.FEEDBACK_FILTERS`
#: (the decision's latest outcome, or ``none``); the rest: exact matches. An unknown or
#: invalid filter raises ``ValueError``.
EQUALITY_FILTERS = (
    "region", "appropriateness", "urgency", "scenario", "ruleset_version", "channel", "client",
    "ordering_clinician", "patient_hash",
)  # fmt: skip
FILTERS = ("since", "until", *EQUALITY_FILTERS, "feedback")
#: Fields :meth:`AuditReader.stats` can group by (``day`` and ``month`` are UTC).
GROUP_FIELDS = (
    "appropriateness", "urgency", "scenario", "ruleset_version", "channel", "region",
    "ordering_clinician", "feedback", "day", "month",
)  # fmt: skip


# -- errors -------------------------------------------------------------------------------


class LogUnavailable(Exception):
    """The store could not be read or durably written; nothing was committed (answer 503)."""


class QueryTimeout(LogUnavailable):
    """An audit read ran past the store's time limit and was stopped (answer 503: narrow it).

    A :class:`LogUnavailable`, so a caller that does not care why still fails closed.
    """

    def __init__(self, timeout_ms: int) -> None:
        super().__init__(f"the query ran longer than {timeout_ms} ms and was stopped")
        self.timeout_ms = timeout_ms


class IdempotencyConflict(Exception):
    """The idempotency key was already used by this owner with a different body (422)."""


class UnknownDecision(KeyError):
    """No decision has this id (feedback for an unknown decision)."""


# -- values -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewDecision:
    """A decision to append. ``output`` is the engine result (the response body fields).

    The store derives the indexed columns the audit filters use (``region``,
    ``appropriateness``, ``urgency``, ``scenario``) from ``output`` (``region`` from ``input``
    when the output lacks it; the scenario id by :func:`referral_api.store.records.scenario_id`).
    """

    channel: str
    client: str
    ordering_clinician: str | None
    patient_hash: str | None
    input: dict
    output: dict
    ruleset_version: str
    ruleset_sha256: str
    engine_version: str
    latency_ms: float
    hook_instance: str | None = None
    order_ref: str | None = None
    idempotency_key: str | None = None
    body_sha256: str | None = None
    #: Whose keys these are: the credential (API key id) that sent the request. Two keys
    #: that share a label must not see each other's decisions; defaults to ``client``.
    idempotency_scope: str | None = None

    @property
    def idempotency_owner(self) -> str:
        """The namespace of ``idempotency_key``."""
        return self.idempotency_scope or self.client


@dataclass(frozen=True)
class NewFeedback:
    """Feedback on a decision, in the store's own (snake_case) terms.

    ``outcome`` is one of :data:`~referral_api.enums.FEEDBACK_OUTCOMES`; the rest are stored
    as given (JSON values) and returned as given.
    """

    outcome: str
    override_reason: Any = None
    accepted_suggestions: Any = None
    outcome_timestamp: str | None = None


#: Why :meth:`KeyStore.identify` refused a token (none names a secret).
KEY_REFUSAL_REASONS = ("malformed_key", "unknown_key", "wrong_secret", "revoked_key")
_TOKEN_KEY_ID = re.compile(r"rk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


def key_id_of(token: str) -> str | None:
    """The key id of a well-formed ``rk_<key_id>_<secret>`` token (ids are not secret)."""
    match = _TOKEN_KEY_ID.fullmatch(token) if isinstance(token, str) else None
    return match.group(1) if match else None


@dataclass(frozen=True)
class ApiKey:
    """A stored API key, without its secret."""

    key_id: str
    label: str
    roles: tuple[str, ...]
    created_at: str
    revoked_at: str | None


@dataclass(frozen=True)
class StoreHealth:
    """What ``/readyz`` reports about the store: named checks and whether they all pass.

    ``checks`` maps a check name (``database``, ``disk`` …) to a short state word
    (``writable``, ``ok``, ``full``, ``unavailable`` …); no paths, no messages.
    """

    ready: bool
    checks: dict[str, str] = field(default_factory=dict)


# -- protocols ----------------------------------------------------------------------------


class DecisionWriter(Protocol):
    """Appends decisions (what :class:`~referral_api.decide.DecisionService` needs)."""

    def append(self, new: NewDecision) -> tuple[dict, bool]:
        """Append one decision durably; return ``(record, created)``.

        ``created`` is False when the decision already existed (same idempotency key and body
        from the same owner within 24 h, or same ``hook_instance`` + ``order_ref``). Raises
        :class:`IdempotencyConflict`, :class:`LogUnavailable`, ``ValueError`` (bad channel).
        """
        ...


class ChainWriter(DecisionWriter, Protocol):
    """The chained writes: decisions (also several in one commit), feedback, access log."""

    def append_many(self, news: Sequence[NewDecision]) -> list[tuple[dict, bool]]:
        """Append several decisions in ONE durable transaction; all or nothing."""
        ...

    def append_feedback(self, decision_id: str, feedback: NewFeedback, client: str) -> dict:
        """Append feedback to a decision; return the stored entry (API shape).

        Raises :class:`UnknownDecision`, ``ValueError`` (bad outcome), :class:`LogUnavailable`.
        """
        ...

    def record_access(self, actor: str, action: str, target: Mapping[str, Any]) -> None:
        """Append who read what (``target``: ids or the query) to the access-log chain."""
        ...


class AuditReader(Protocol):
    """Reads of the log; each runs under the store's time limit (:class:`QueryTimeout`)."""

    def get(self, decision_id: str) -> dict | None:
        """The full decision record (feedback oldest first, chain), or None."""
        ...

    def find_by_order(self, hook_instance: str, order_ref: str) -> dict | None:
        """The decision already made for this CDS Hooks ``hookInstance`` and order, or None."""
        ...

    def head(self) -> dict:
        """The anchor an auditor saves: ``{"count": n, "head": hash}`` of the decision chain."""
        ...

    def query(
        self, filters: Mapping[str, Any] | None, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict], str | None]:
        """A page of records, newest first, and the next cursor (None on the last page).

        The cursor is opaque and bound to the filters. ``ValueError`` for invalid filters,
        limit or cursor.
        """
        ...

    def iter_records(self, filters: Mapping[str, Any] | None) -> Iterator[dict]:
        """Every matching record, oldest first, in constant memory (export, replay impact).

        Filters are validated before this returns (``ValueError``).
        """
        ...

    def stats(self, filters: Mapping[str, Any] | None, group_by: Sequence[str]) -> dict:
        """``{"total": n, "groups": [{<field>: value, …, "count", "override_rate"}]}``."""
        ...

    def verify(self, expect_head: str | None = None, expect_count: int | None = None) -> dict:
        """Walk every chain; the anchor applies to decisions.

        Returns ``{"decisions": r, "feedback": r, "access_log": r}``, each ``r`` being
        ``{"ok": True, "checked", "head"}`` or ``{"ok": False, "first_bad", "first_bad_seq",
        "reason", "checked"}`` (``first_bad``: the decision id, or the seq).
        """
        ...

    def access_log(self, limit: int = 100, before_seq: int | None = None) -> list[dict]:
        """Access-log entries, newest first (keyset on ``seq``)."""
        ...


class TokenReplayStore(Protocol):
    """JWT ``jti`` values seen, shared by every worker and host."""

    def seen_jti(self, iss: str, jti: str, exp: int) -> bool:
        """Record ``(iss, jti)``; True when it was already recorded (a replay). Atomic."""
        ...


class DecisionLog(ChainWriter, AuditReader, TokenReplayStore, Protocol):
    """The whole log: writes, audit reads, the ``jti`` store, readiness."""

    def ping(self) -> None:
        """Raise :class:`LogUnavailable` unless the schema exists and a write could be made."""
        ...

    def health(self) -> StoreHealth:
        """Readiness checks of the store (writable, room left …) for ``/readyz``."""
        ...

    def close(self) -> None:
        """Release this process's (or thread's) connections."""
        ...


class KeyStore(Protocol):
    """API keys, stored only as hashes of their secrets."""

    def create(self, roles: Sequence[str], label: str) -> tuple[ApiKey, str]:
        """Store a new key; return it with its plaintext token (shown once, never stored)."""
        ...

    def verify(self, token: str) -> ApiKey | None:
        """The active key this token belongs to, or None; :class:`LogUnavailable` when the
        store cannot be read (a fault is not a bad credential)."""
        ...

    def identify(self, token: str) -> tuple[ApiKey | None, str | None]:
        """Like :meth:`verify`, with the reason of a refusal: ``(key, None)`` or ``(None,
        reason)``, reason one of :data:`KEY_REFUSAL_REASONS` (for security logs, metrics)."""
        ...

    def active(self, key_id: str) -> ApiKey | None:
        """The key with this id when it exists and is not revoked."""
        ...

    def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first, revoked ones included."""
        ...

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; False when unknown or already revoked."""
        ...

    def count(self, role: str | None = None, include_revoked: bool = False) -> int:
        """Number of keys (holding ``role``, when given)."""
        ...


class AuthFailureCounter(Protocol):
    """Failed authentications per client address, shared by every worker (and host) that
    serves the API: the storage of the throttle (:mod:`referral_api.throttle`)."""

    def register_failure(self, client: str, now: float, window_s: float,
                         limit: int) -> int | None:
        """Atomically: if ``client`` has fewer than ``limit`` failures in ``(now - window_s,
        now]`` (epoch seconds), record one at ``now`` and return None; else record nothing
        and return the whole seconds (at least 1) until the oldest of them leaves the window.
        Raises :class:`LogUnavailable` (or the driver's error) when the store is down."""
        ...


class Store(Protocol):
    """One opened backend: its log, the writer decisions go through, its keys.

    Opening a store connects to nothing: connections are opened on first use, in the process
    that uses them (after gunicorn forks).
    """

    @property
    def log(self) -> DecisionLog:
        """The decision log (reads and the non-decision chains)."""
        ...

    @property
    def writer(self) -> DecisionWriter:
        """The path decisions are appended through (may batch several into one commit)."""
        ...

    @property
    def keys(self) -> KeyStore:
        """The API keys."""
        ...

    @property
    def auth_failures(self) -> AuthFailureCounter:
        """The failed-authentication counters of the throttle."""
        ...

    def describe(self) -> str:
        """Where the store is, for operators' messages (no password)."""
        ...

    def exists(self) -> bool:
        """True when the database exists (``init-db`` has created it)."""
        ...

    def migrate(self) -> list[str]:
        """Create or upgrade the schema; return the migrations applied (idempotent)."""
        ...

    def close(self) -> None:
        """Release this process's connections."""
        ...
