"""Export rows of the decision log: CSV with stable columns, or NDJSON with whole records.

Both formats are produced by generators that hold one record at a time (the store hands
records over in chunks of short read transactions), so an export of a million decisions runs
in constant memory. The CSV columns below are part of the public interface: new columns may
be appended at the end in a later version, existing ones never change name, order or meaning.

| column | content |
|---|---|
| decision_id | the decision's uuid |
| created_at | UTC, ISO 8601 with milliseconds and ``Z`` |
| channel | ``api`` / ``cds-hooks`` / ``form`` |
| client | the credential's label or the JWT issuer |
| ordering_clinician | as given, or empty |
| patient_hash | the keyed hash of the patient reference, or empty (never the clear id) |
| region | ``cervical`` / ``thoracic`` / ``lumbar`` |
| patient_age, patient_sex | from the validated input |
| symptom_duration_weeks, conservative_care_weeks, intervention_candidate, egfr | input |
| findings, contraindications | input codes, ``;``-separated, sorted |
| requested_procedure | procedure code |
| appropriateness | rating of the requested study |
| urgency | ``emergent`` / ``urgent`` / ``routine`` / ``none`` |
| scenario | governing scenario id |
| also_matched | other matching scenario ids, ``;``-separated |
| recommended_procedures | ``code:rating`` items, ``;``-separated, in order of preference |
| safety_status | ``clear`` / ``caution`` / ``contraindicated`` |
| safety_alerts | alert codes, ``;``-separated |
| assumptions | fields assumed (CDS Hooks), ``;``-separated |
| ruleset_id, ruleset_version, ruleset_sha256, engine_version | what decided |
| latency_ms | evaluation time |
| hook_instance | CDS Hooks hookInstance, or empty |
| feedback | the latest feedback outcome: ``accepted`` / ``overridden`` / ``none`` |
| feedback_count | number of feedback entries |
| override_reason | the latest override reason's code or display, or empty |
| chain_seq, chain_prev_hash, chain_hash | the record's place in the hash chain |
| days_since_injury | input (rule set 2026.2.0 and later), or empty |
| contributing_scenarios | ids merged into the plan (several emergencies), ``;``-separated |
| recommended_steps | plan step of each ``recommended_procedures`` item, same order, ``;`` |
| safety_alert_levels | level of each ``safety_alerts`` item, same order, ``;`` |

The last two are empty for 2026.1.0 decisions (no steps, no alert levels).

Cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab
or carriage return) are prefixed with ``'``; only free-text columns can start that way.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from referral_api.store.records import scenario_id

CSV_COLUMNS: tuple[str, ...] = (
    "decision_id", "created_at", "channel", "client", "ordering_clinician", "patient_hash",
    "region", "patient_age", "patient_sex", "symptom_duration_weeks", "conservative_care_weeks",
    "intervention_candidate", "egfr", "findings", "contraindications", "requested_procedure",
    "appropriateness", "urgency", "scenario", "also_matched", "recommended_procedures",
    "safety_status", "safety_alerts", "assumptions", "ruleset_id", "ruleset_version",
    "ruleset_sha256", "engine_version", "latency_ms", "hook_instance", "feedback",
    "feedback_count", "override_reason", "chain_seq", "chain_prev_hash", "chain_hash",
    # Appended with rule set 2026.2.0 (vocabulary-2026.2.0-delta §7):
    "days_since_injury", "contributing_scenarios", "recommended_steps", "safety_alert_levels",
)  # fmt: skip

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Rows are written to the output in batches: one yield per row would cost a WSGI write (and
# a syscall) per decision.
ROWS_PER_WRITE = 200


def _joined(values: Iterable[Any]) -> str:
    return ";".join(str(v) for v in values)


def _safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _override_reason(feedback: Mapping[str, Any] | None) -> str:
    if not feedback or feedback.get("outcome") != "overridden":
        return ""
    reason = feedback.get("override_reason")
    if isinstance(reason, Mapping):
        # CDS Hooks 2.0 overrideReason: {"reason": Coding, "userComment": …}; the comment is
        # free text, so only the coded reason is exported.
        inner = reason.get("reason")
        coding = inner if isinstance(inner, Mapping) else reason
        return str(coding.get("code") or coding.get("display") or "")
    return "" if reason is None else str(reason)


def _bool_cell(value: Any) -> str:
    return "" if value is None else ("true" if value else "false")


def csv_row(record: Mapping[str, Any]) -> list[Any]:
    """The record as CSV cells, in :data:`CSV_COLUMNS` order (None becomes an empty cell)."""
    given = record.get("input") or {}
    patient = given.get("patient") or {}
    requested = record.get("requested_procedure") or {}
    safety = record.get("safety") or {}
    ruleset = record.get("ruleset") or {}
    feedback = record.get("feedback") or []
    latest = feedback[-1] if feedback else None
    chain = record.get("chain") or {}
    cells = {
        "decision_id": record.get("decision_id"),
        "created_at": record.get("created_at"),
        "channel": record.get("channel"),
        "client": record.get("client"),
        "ordering_clinician": record.get("ordering_clinician"),
        "patient_hash": patient.get("reference"),
        "region": record.get("region"),
        "patient_age": patient.get("age"),
        "patient_sex": patient.get("sex"),
        "symptom_duration_weeks": given.get("symptom_duration_weeks"),
        "conservative_care_weeks": given.get("conservative_care_weeks"),
        "intervention_candidate": _bool_cell(given.get("intervention_candidate")),
        "egfr": given.get("egfr"),
        "findings": _joined(sorted(given.get("findings") or ())),
        "contraindications": _joined(sorted(given.get("contraindications") or ())),
        "requested_procedure": requested.get("code"),
        "appropriateness": record.get("appropriateness"),
        "urgency": record.get("urgency"),
        "scenario": scenario_id(record) or "",
        "also_matched": _joined(record.get("also_matched") or ()),
        "recommended_procedures": _joined(
            f"{p.get('code')}:{p.get('rating')}" for p in record.get("recommended_procedures") or ()
        ),
        "safety_status": safety.get("status"),
        "safety_alerts": _joined(a.get("code") for a in safety.get("alerts") or ()),
        "assumptions": _joined(a.get("field") for a in record.get("assumptions") or ()),
        "ruleset_id": ruleset.get("id"),
        "ruleset_version": ruleset.get("version"),
        "ruleset_sha256": ruleset.get("sha256"),
        "engine_version": record.get("engine_version"),
        "latency_ms": record.get("latency_ms"),
        "hook_instance": record.get("hook_instance"),
        "feedback": latest.get("outcome") if latest else "none",
        "feedback_count": len(feedback),
        "override_reason": _override_reason(latest),
        "chain_seq": chain.get("seq"),
        "chain_prev_hash": chain.get("prev_hash"),
        "chain_hash": chain.get("hash"),
        "days_since_injury": given.get("days_since_injury"),
        "contributing_scenarios": _joined(record.get("contributing_scenarios") or ()),
        "recommended_steps": _joined(
            p["step"] for p in record.get("recommended_procedures") or () if "step" in p),
        "safety_alert_levels": _joined(
            a["level"] for a in safety.get("alerts") or () if "level" in a),
    }
    return [_safe_cell(cells[name]) for name in CSV_COLUMNS]


def iter_csv(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """CSV text (header first, CRLF line ends as RFC 4180), a few hundred rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    pending = 0
    for record in records:
        writer.writerow(csv_row(record))
        pending += 1
        if pending >= ROWS_PER_WRITE:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def iter_ndjson(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """One whole decision record (api-v1.md "Decision records") per line."""
    lines: list[str] = []
    for record in records:
        lines.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        if len(lines) >= ROWS_PER_WRITE:
            yield "\n".join(lines) + "\n"
            lines.clear()
    if lines:
        yield "\n".join(lines) + "\n"


def iter_export(fmt: str, records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The export in ``fmt`` (``csv`` or ``ndjson``); ValueError for another format."""
    if fmt == "csv":
        return iter_csv(records)
    if fmt == "ndjson":
        return iter_ndjson(records)
    raise ValueError(f"unknown export format {fmt!r}")
