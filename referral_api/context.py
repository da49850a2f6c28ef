"""The per-app services, built once by ``create_app`` and reached through :func:`services`."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from referral_api.clinical.versions import RuleRegistry
from referral_api.clinical.vocabulary import Vocabulary
from referral_api.decide import DecisionService
from referral_api.store.interface import DecisionLog, KeyStore, Store

from .config import Settings
from .metrics import Metrics
from .schemas import RequestLoader
from .throttle import FailureLimiter

EXTENSION = "referral_api"


@dataclass
class Services:
    """Everything a request handler needs; no connection is opened until first use."""

    settings: Settings
    registry: RuleRegistry
    vocabulary: Vocabulary
    store: Store
    log: DecisionLog
    keys: KeyStore
    decisions: DecisionService
    request_schema: RequestLoader
    patient_key: bytes
    session_key: bytes
    metrics: Metrics
    limiter: FailureLimiter


def services() -> Services:
    """The services of the current app."""
    return current_app.extensions[EXTENSION]
