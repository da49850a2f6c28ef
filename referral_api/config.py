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
from typing import Any

#: The repository root: defaults are relative to it so ``make run`` works from a clean clone.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
#: /readyz answers 503 below this much free space next to the database: a full disk still
#: lets a write transaction be opened (no page is written), so the write probe alone cannot
#: see it. 16 MiB leaves room for the WAL to reach its checkpoint size (~4 MB) several times.
READY_MIN_FREE_BYTES = 16 * 1024 * 1024


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
    def db_dir(self) -> Path:
        """Folder holding the database and, when no secret is configured, ``secret.key``."""
        return self.database.parent


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.replace(",", " ").split() if part.strip())


def _path(value: str | os.PathLike[str] | None, default: Path | None) -> Path | None:
    if value in (None, ""):
        return default
    path = Path(value)
    return path if path.is_absolute() else (Path.cwd() / path)


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Build :class:`Settings` from ``REFERRAL_API_*`` variables, then ``overrides``.

    ``overrides`` uses the short names of ``create_app(test_config)``: ``DATABASE``,
    ``RULES_DIR``, ``SECRET_KEY``, ``PUBLIC_URL``, ``CDS_CLIENTS``, ``CORS_ORIGINS``,
    ``PAMA_GCODE``, ``TESTING``.
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
        extra={k: v for k, v in (overrides or {}).items() if k not in _KNOWN},
        emergency_number=merged.get("EMERGENCY_NUMBER") or None,
        fever_threshold=merged.get("FEVER_THRESHOLD") or None,
        evaluation_time=pinned if isinstance(pinned, datetime) else None,
    )


_KNOWN = {"DATABASE", "RULES_DIR", "SECRET_KEY", "PUBLIC_URL", "CDS_CLIENTS", "CORS_ORIGINS",
          "PAMA_GCODE", "TESTING", "EMERGENCY_NUMBER", "FEVER_THRESHOLD", "EVALUATION_TIME"}
