"""Settings read from the environment (``REFERRAL_API_*``), with embedded defaults.

The names are binding (``shared/spec/api-v1.md``, Operations). Everything is resolved once,
when the app is created, so a request never touches ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

#: The repository root: defaults are relative to it so ``make run`` works from a clean clone.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
#: /readyz answers 503 below this much free space next to the database: a full disk still
#: lets a write transaction be opened (no page is written), so the write probe alone cannot
#: see it. 16 MiB leaves room for the WAL to reach its checkpoint size (~4 MB) several times.
READY_MIN_FREE_BYTES = 16 * 1024 * 1024
#: The contract's floor (api-v1.md, Credentials): never 429 before 20 failures in a minute.
DEFAULT_AUTH_FAILURE_LIMIT = 20
DEFAULT_AUTH_FAILURE_WINDOW_S = 60.0
#: Audit reads (API and pages) stop after this long and answer 503 (the same value as the
#: store's own default, ``store.interface.DEFAULT_QUERY_TIMEOUT_MS``, which config cannot import).
DEFAULT_AUDIT_QUERY_TIMEOUT_MS = 3000
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class SettingsError(ValueError):
    """A ``REFERRAL_API_*`` value cannot be used (the message names the variable)."""


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one app instance."""

    database: Path
    rules_dir: Path
    secret_key: str | None
    public_url: str | None
    cds_clients: Path | None
    cors_origins: tuple[str, ...] = ()
    pama_gcode: str | None = None
    testing: bool = False
    #: Reverse proxies in front of the service whose X-Forwarded-For/-Proto are trusted.
    trusted_proxies: int = 0
    auth_failure_limit: int = DEFAULT_AUTH_FAILURE_LIMIT
    auth_failure_window_s: float = DEFAULT_AUTH_FAILURE_WINDOW_S
    #: ``/metrics`` without a credential (only for a scrape network that nobody else reaches).
    metrics_public: bool = False
    log_format: str = "json"
    log_level: str = "info"
    audit_query_timeout_ms: int = DEFAULT_AUDIT_QUERY_TIMEOUT_MS
    extra: dict[str, Any] = field(default_factory=dict)
    #: Patient-information placeholders (rule set 2026.2.0 and later), substituted into the
    #: texts of ``patient-information.yaml``: ``REFERRAL_API_EMERGENCY_NUMBER`` and
    #: ``REFERRAL_API_FEVER_THRESHOLD``. None: the default written in that file.
    emergency_number: str | None = None
    fever_threshold: str | None = None
    #: A fixed evaluation time (tests and what-if set-ups only: ``create_app`` override
    #: ``EVALUATION_TIME``, never read from the environment). None: the real clock.
    evaluation_time: datetime | None = None

    def clock(self) -> datetime:
        """The time decisions are evaluated at: the pinned time, else now (UTC)."""
        return self.evaluation_time or datetime.now(UTC)

    @property
    def clock_fn(self) -> Callable[[], datetime]:
        """:meth:`clock` as a callable (handed to the decision path)."""
        return self.clock

    def patient_placeholders(self) -> dict[str, str]:
        """The configured placeholder values (names as in patient-information.yaml)."""
        out = {}
        if self.emergency_number:
            out["emergency_number"] = self.emergency_number
        if self.fever_threshold:
            out["fever_threshold"] = self.fever_threshold
        return out

    @property
    def throttle_keeps_contract(self) -> bool:
        """True when the limiter cannot answer 429 before 20 failures in one minute."""
        return (self.auth_failure_limit >= DEFAULT_AUTH_FAILURE_LIMIT
                and self.auth_failure_window_s <= DEFAULT_AUTH_FAILURE_WINDOW_S)

    @property
    def db_dir(self) -> Path:
        """Folder holding the database and, when no secret is configured, ``secret.key``."""
        return self.database.parent


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.replace(",", " ").split() if part.strip())


@overload
def _path(value: str | os.PathLike[str] | None, default: Path) -> Path: ...
@overload
def _path(value: str | os.PathLike[str] | None, default: None) -> Path | None: ...
def _path(value: str | os.PathLike[str] | None, default: Path | None) -> Path | None:
    if value is None or value == "":
        return default
    path = Path(value)
    return path if path.is_absolute() else (Path.cwd() / path)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _number(merged: dict[str, Any], name: str, default: float, kind: type, minimum: float) -> Any:
    value = merged.get(name)
    if value in (None, ""):
        return kind(default)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise SettingsError(f"REFERRAL_API_{name} must be a number (got {value!r})") from None
    if number < minimum:
        raise SettingsError(f"REFERRAL_API_{name} must be at least {minimum} (got {value!r})")
    return number


def _choice(merged: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = str(merged.get(name) or default).strip().lower()
    if value not in choices:
        raise SettingsError(f"REFERRAL_API_{name} must be one of {', '.join(choices)} "
                            f"(got {value!r})")
    return value


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Build :class:`Settings` from ``REFERRAL_API_*`` variables, then ``overrides``.

    ``overrides`` uses the short names of ``create_app(test_config)``: ``DATABASE``,
    ``RULES_DIR``, ``SECRET_KEY``, ``PUBLIC_URL``, ``CDS_CLIENTS``, ``CORS_ORIGINS``,
    ``PAMA_GCODE``, ``TESTING``, ``TRUSTED_PROXIES``, ``AUTH_FAILURE_LIMIT``,
    ``AUTH_FAILURE_WINDOW_S``, ``METRICS_PUBLIC``, ``LOG_FORMAT``, ``LOG_LEVEL``,
    ``AUDIT_QUERY_TIMEOUT_MS``. Raises :class:`SettingsError` for an unusable value.
    """
    env = {key[len("REFERRAL_API_") :]: value for key, value in os.environ.items()
           if key.startswith("REFERRAL_API_")}
    merged: dict[str, Any] = {**env, **(overrides or {})}
    cors = merged.get("CORS_ORIGINS")
    public_url = merged.get("PUBLIC_URL") or None
    pinned = (overrides or {}).get("EVALUATION_TIME")
    if isinstance(pinned, str):
        pinned = datetime.fromisoformat(pinned.replace("Z", "+00:00"))
    if isinstance(pinned, datetime) and pinned.tzinfo is None:
        pinned = pinned.replace(tzinfo=UTC)
    return Settings(
        database=_path(merged.get("DATABASE"), PROJECT_ROOT / "db" / "decisions.sqlite"),
        rules_dir=_path(merged.get("RULES_DIR"), PROJECT_ROOT / "rules"),
        secret_key=merged.get("SECRET_KEY") or None,
        public_url=public_url.rstrip("/") if public_url else None,
        cds_clients=_path(merged.get("CDS_CLIENTS"), None),
        cors_origins=tuple(cors) if isinstance(cors, list | tuple) else _split(cors),
        pama_gcode=merged.get("PAMA_GCODE") or None,
        testing=bool(merged.get("TESTING", False)),
        trusted_proxies=_number(merged, "TRUSTED_PROXIES", 0, int, 0),
        auth_failure_limit=_number(merged, "AUTH_FAILURE_LIMIT", DEFAULT_AUTH_FAILURE_LIMIT,
                                   int, 1),
        auth_failure_window_s=_number(merged, "AUTH_FAILURE_WINDOW_S",
                                      DEFAULT_AUTH_FAILURE_WINDOW_S, float, 0.001),
        metrics_public=_flag(merged.get("METRICS_PUBLIC", False)),
        log_format=_choice(merged, "LOG_FORMAT", LOG_FORMATS, "json"),
        log_level=_choice(merged, "LOG_LEVEL", LOG_LEVELS, "info"),
        audit_query_timeout_ms=_number(merged, "AUDIT_QUERY_TIMEOUT_MS",
                                       DEFAULT_AUDIT_QUERY_TIMEOUT_MS, int, 0),
        extra={k: v for k, v in (overrides or {}).items() if k not in _KNOWN},
        emergency_number=merged.get("EMERGENCY_NUMBER") or None,
        fever_threshold=merged.get("FEVER_THRESHOLD") or None,
        evaluation_time=pinned if isinstance(pinned, datetime) else None,
    )


_KNOWN = {"DATABASE", "RULES_DIR", "SECRET_KEY", "PUBLIC_URL", "CDS_CLIENTS", "CORS_ORIGINS",
          "PAMA_GCODE", "TESTING", "TRUSTED_PROXIES", "AUTH_FAILURE_LIMIT",
          "AUTH_FAILURE_WINDOW_S", "METRICS_PUBLIC", "LOG_FORMAT", "LOG_LEVEL",
          "AUDIT_QUERY_TIMEOUT_MS", "EMERGENCY_NUMBER", "FEVER_THRESHOLD", "EVALUATION_TIME"}
