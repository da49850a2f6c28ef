"""The per-app services, built once by ``create_app`` and reached through :func:`services`."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .config import Settings
from .decision_log import SQLiteDecisionLog
from .keys import KeyStore
from .ruleset import RuleRegistry
from .schemas import RequestLoader
from .service import DecisionService
from .vocabulary import Vocabulary

EXTENSION = "referral_api"


@dataclass
class Services:
    """Everything a request handler needs; no connection is opened until first use."""

    settings: Settings
    registry: RuleRegistry
    vocabulary: Vocabulary
    log: SQLiteDecisionLog
    keys: KeyStore
    decisions: DecisionService
    request_schema: RequestLoader
    patient_key: bytes
    session_key: bytes


def services() -> Services:
    """The services of the current app."""
    return current_app.extensions[EXTENSION]
