"""Fixtures of the audit API tests: seeded logs, a draft rule set version, the access log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Importing the module registers the audit routes on the API blueprint; it must happen before
# any app is created (Flask refuses new routes on a blueprint already registered). The lead
# imports it from referral_api/api/__init__.py as well: importing twice is harmless.
import referral_api.api.audit  # noqa: F401
from referral_api.clinical import engine
from referral_api.store.interface import NewDecision
from tests.audit.fixtures.draft_ruleset import make_draft_rules
from tests.factories import BEFORE_2026_2_0, FakeClock, lumbar_request

CAUDA = {"findings": ["urinary_retention"]}


@pytest.fixture
def app(make_app: Callable[..., Any], clock: FakeClock) -> Any:
    """The service on a temporary database; its log records ``clock``'s time."""
    return make_app(STORE_CLOCK=clock)


@pytest.fixture
def svc(app):
    """The app's services."""
    return app.extensions["referral_api"]


@pytest.fixture
def decide(svc) -> Callable[..., dict]:
    """Record one decision through the service (as every channel does); returns the record."""

    def make(channel: str = "api", client: str = "test-client", **changes: Any) -> dict:
        extra = {k: changes.pop(k) for k in ("hook_instance", "order_ref", "ordering_clinician")
                 if k in changes}
        request = svc.request_schema.load(lumbar_request(**changes))
        record, created = svc.decisions.decide(request, channel=channel, client=client, **extra)
        assert created
        return record

    return make


@pytest.fixture
def varied(decide) -> list[dict]:
    """Eight decisions differing in every filterable field, oldest first."""
    records = [
        decide(),
        decide(**CAUDA, ordering_clinician="dr-house"),
        decide(region="cervical", patient={"age": 60, "reference": "MRN-0002"}),
        decide(channel="form", client="clinician-a", ordering_clinician="dr-house"),
        decide(channel="cds-hooks", client="https://ehr.example.org",
               hook_instance="hook-1", order_ref="ServiceRequest/1", **CAUDA),
        decide(region="thoracic", findings=["history_of_cancer"]),
        decide(patient={"age": 30, "reference": "MRN-0002"}),
        decide(channel="cds-hooks", client="https://ehr.example.org",
               hook_instance="hook-2", order_ref="ServiceRequest/2"),
    ]
    return records


@pytest.fixture
def bulk_append(svc: Any) -> Callable[..., None]:
    """``bulk_append(count, into=None)``: append ``count`` copies of one evaluated decision
    fast (``append_many`` batches) to the app's log, or to the log of the services ``into``."""
    batch = 2000

    def append(count: int, into: Any = None) -> None:
        target = into or svc
        request = target.request_schema.load(lumbar_request())
        output = target.decisions.evaluate(request)
        stored = {**request, "patient": {"age": 45, "sex": "female"}}
        done = 0
        while done < count:
            size = min(batch, count - done)
            target.log.append_many([
                NewDecision(channel="api", client="bulk", ordering_clinician=None,
                            patient_hash=None, input=stored, output=output,
                            ruleset_version=output["ruleset"]["version"],
                            ruleset_sha256=output["ruleset"]["sha256"],
                            engine_version=engine.ENGINE_VERSION, latency_ms=0.1)
                for _ in range(size)])
            done += size

    return append


@pytest.fixture
def draft_rules(tmp_path: Path) -> Path:
    """A copy of rules/ with the draft version 2026.9.0 added."""
    return make_draft_rules(tmp_path / "rules")


@pytest.fixture
def draft_app(make_app: Callable[..., Any], draft_rules: Path) -> Any:
    """The service with the draft version loaded and its clock pinned: 2026.1.0 in force."""
    return make_app(RULES_DIR=str(draft_rules), EVALUATION_TIME=BEFORE_2026_2_0)


@pytest.fixture
def access_actions(svc: Any) -> Callable[..., list[str]]:
    """``access_actions(of=None)``: the access-log actions of the app (or of the services
    ``of``), oldest first."""

    def read(of: Any = None) -> list[str]:
        return [e["action"] for e in reversed((of or svc).log.access_log(limit=1000))]

    return read
