"""Stored rows → the API's records (api-v1.md, "Decision records"), for every backend.

A backend reads its rows (one dict per row, keyed by the column names of ``db/README.md``)
and shapes them here, so that the records an auditor sees are the same whatever stores them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["access_entry", "chain_link", "decision_record", "feedback_item", "scenario_id"]

# jti rows are kept this long after their token's exp, so a token still accepted within the
# JWT library's clock leeway cannot be replayed once its row is purged.
JTI_RETENTION_SECONDS = 600
VERIFY_CHUNK = 1000

# Stored columns, in table order.  The chain hash covers every one of them except `hash`.
DECISION_COLUMNS = (
    "seq", "decision_id", "created_at", "channel", "client", "ordering_clinician",
    "patient_hash", "region", "appropriateness", "urgency", "scenario", "ruleset_version",
    "ruleset_sha256", "engine_version", "latency_ms", "hook_instance", "order_ref",
    "input_json", "output_json", "prev_hash", "hash",
)  # fmt: skip
FEEDBACK_COLUMNS = (
    "seq", "decision_id", "outcome", "override_reason_json", "accepted_suggestions_json",
    "outcome_timestamp", "received_at", "client", "prev_hash", "hash",
)  # fmt: skip
ACCESS_COLUMNS = ("seq", "at", "actor", "action", "target_json", "prev_hash", "hash")


def scenario_id(record: Mapping[str, Any]) -> str | None:
    """The governing scenario's id of an engine output or decision record, or None.

    Records hold the scenario as an object (``{"id": …, …}``); older shapes hold the bare id.
    """
    scenario = record.get("scenario")
    if isinstance(scenario, Mapping):
        found = scenario.get("id")
        return found if isinstance(found, str) else None
    return scenario if isinstance(scenario, str) else None


def chain_link(row: Mapping[str, Any]) -> dict[str, Any]:
    """``{"seq", "prev_hash", "hash"}``: a record's place in its chain."""
    return {"seq": row["seq"], "prev_hash": row["prev_hash"], "hash": row["hash"]}


def _load_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def feedback_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """The API shape of one feedback entry from its stored row."""
    return {
        "outcome": row["outcome"],
        "override_reason": _load_or_none(row["override_reason_json"]),
        "accepted_suggestions": _load_or_none(row["accepted_suggestions_json"]),
        "outcome_timestamp": row["outcome_timestamp"],
        "received_at": row["received_at"],
        "client": row["client"],
        "chain": chain_link(row),
    }


def decision_record(
    row: Mapping[str, Any],
    feedback_rows: Sequence[Mapping[str, Any]] = (),
    *,
    parsed: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The API shape of a decision from its stored row and its feedback rows (oldest first).

    ``parsed`` = ``(input, output)`` when the caller already holds the objects the row's JSON
    columns were serialised from (the append path), so they need not be parsed back.
    """
    if parsed is None:
        input_obj, record = json.loads(row["input_json"]), json.loads(row["output_json"])
    else:
        input_obj, record = parsed[0], dict(parsed[1])
    record.update(
        decision_id=row["decision_id"],
        created_at=row["created_at"],
        channel=row["channel"],
        input=input_obj,
        client=row["client"],
        ordering_clinician=row["ordering_clinician"],
        engine_version=row["engine_version"],
        latency_ms=row["latency_ms"],
        hook_instance=row["hook_instance"],
        feedback=[feedback_item(f) for f in feedback_rows],
        chain=chain_link(row),
    )
    return record


def access_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """The API shape of one access-log entry from its stored row."""
    return {
        "seq": row["seq"],
        "at": row["at"],
        "actor": row["actor"],
        "action": row["action"],
        "target": json.loads(row["target_json"]),
        "chain": chain_link(row),
    }
