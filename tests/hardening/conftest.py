"""The hardening suite drives the scripts in ``scripts/`` (gunicorn harness, load and fault
tests): they are made importable here. Database fixtures are shared (tests/conftest.py)."""

from __future__ import annotations

import sys

from referral_api.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
