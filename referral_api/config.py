"""Settings read from the environment (``REFERRAL_API_*``), with embedded defaults.

The names are binding (``shared/spec/api-v1.md``, Operations). Everything is resolved once,
when the app is created, so a request never touches ``os.environ``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one app instance."""

    #: A SQLite file path, or a ``postgresql://`` URL (kept as given: a URL is not a path).
    database: Path | str
    rules_dir: Path
    secret_key: str | None
    public_url: str | None
    cds_clients: Path | None
    cors_origins: tuple[str, ...] = ()
    pama_gcode: str | None = None
    testing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def db_dir(self) -> Path:
        """Folder holding the database and, when no secret is configured, ``secret.key``
        (``db/`` of the project when the database is a PostgreSQL URL: several hosts then
        need the same ``REFERRAL_API_SECRET_KEY``)."""
        if isinstance(self.database, str):
            return PROJECT_ROOT / "db"
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


def _database(value: str | os.PathLike[str] | None) -> Path | str:
    """A ``postgresql://`` URL as given; anything else a SQLite path (default ``db/``)."""
    if isinstance(value, str) and value.startswith(("postgresql://", "postgres://")):
        return value
    path = _path(value, PROJECT_ROOT / "db" / "decisions.sqlite")
    assert path is not None
    return path


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
    return Settings(
        database=_database(merged.get("DATABASE")),
        rules_dir=_path(merged.get("RULES_DIR"), PROJECT_ROOT / "rules"),
        secret_key=merged.get("SECRET_KEY") or None,
        public_url=public_url.rstrip("/") if public_url else None,
        cds_clients=_path(merged.get("CDS_CLIENTS"), None),
        cors_origins=tuple(cors) if isinstance(cors, list | tuple) else _split(cors),
        pama_gcode=merged.get("PAMA_GCODE") or None,
        testing=bool(merged.get("TESTING", False)),
        extra={k: v for k, v in (overrides or {}).items() if k not in _KNOWN},
    )


_KNOWN = {"DATABASE", "RULES_DIR", "SECRET_KEY", "PUBLIC_URL", "CDS_CLIENTS", "CORS_ORIGINS",
          "PAMA_GCODE", "TESTING"}
