"""A measuring instrument for ``make bench``, never served: the decision service with its log
replaced by an in-memory recorder.

Everything else is the real request path (authentication, JSON and marshmallow validation,
the engine with counterfactuals, the record and the 201 body with its headers). Its rate
against the bare echo is the ceiling that no design of the durable write path can exceed:
``scripts/bench_http.py --ceiling`` reports it next to the real service.
"""

from __future__ import annotations

import itertools
import uuid

from referral_api import create_app
from referral_api.store.canonical import GENESIS_HASH
from referral_api.store.interface import NewDecision
from referral_api.store.records import decision_record
from referral_api.store.timestamps import utc_timestamp


class InMemoryRecorder:
    """Builds the record ``SQLiteDecisionLog.append`` would return, and keeps nothing."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)

    def append(self, new: NewDecision) -> tuple[dict, bool]:
        """The record of ``new`` as if appended: no serialisation, no hash, no write."""
        row = {
            "seq": next(self._seq), "decision_id": str(uuid.uuid4()),
            "created_at": utc_timestamp(), "channel": new.channel, "client": new.client,
            "ordering_clinician": new.ordering_clinician,
            "engine_version": new.engine_version, "latency_ms": new.latency_ms,
            "hook_instance": new.hook_instance, "prev_hash": GENESIS_HASH,
            "hash": GENESIS_HASH,
        }
        return decision_record(row, parsed=(new.input, new.output)), True


app = create_app()
app.extensions["referral_api"].decisions.log = InMemoryRecorder()
