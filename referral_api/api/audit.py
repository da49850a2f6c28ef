"""The audit reviewers' API: list, export, statistics, verification and replay of decisions,
and the access log (api-v1.md, "Decision records").

Every read of the log is recorded in the access log (who, when, which query or record) before
its answer leaves the server: when the access cannot be recorded, nothing is returned (503).
Each read runs in one short read transaction under the store's time limit, so an audit query
can neither stall decision writes nor hold a snapshot for long; past it, the store raises
``QueryTimeout`` and the app answers 503 asking to narrow the query.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import itertools
import json
from typing import Any

from apispec import APISpec
from flask import Response, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from referral_api.audit.export import MEDIA_TYPES, iter_export
from referral_api.audit.filters import (
    AccessLogQuerySchema,
    ExportQuerySchema,
    ListQuerySchema,
    StatsQuerySchema,
    VerifyQuerySchema,
    parse_args,
    storage_filters,
)
from referral_api.audit.replay import ReplayError, replay_record
from referral_api.enums import ADMIN, AUDITOR

from ..auth import current_principal, require_role
from ..context import services
from ..jsonbody import json_response, read_json
from ..problem import ProblemError, validation_problem
from . import bp

_list_schema = ListQuerySchema()
_export_schema = ExportQuerySchema()
_stats_schema = StatsQuerySchema()
_verify_schema = VerifyQuerySchema()
_access_schema = AccessLogQuerySchema()


class ReplayBodySchema(Schema):
    """Body of ``POST /v1/decisions/{id}/replay``."""

    class Meta:
        unknown = RAISE

    ruleset_version = fields.String(required=True, validate=validate.Length(min=1, max=64))


_replay_schema = ReplayBodySchema()


# -- helpers ------------------------------------------------------------------------------


def _query_args(schema: Schema) -> dict[str, Any]:
    try:
        return parse_args(schema, request.args)
    except ValidationError as err:
        raise validation_problem(err, "query") from None


def _cursor_checked(fn: Any, *args: Any) -> Any:
    """Run a store read; a cursor the store refuses (made for other filters) is a 422."""
    try:
        return fn(*args)
    except ValueError as exc:
        # Filters are validated before; what remains is a cursor made for other filters.
        raise ProblemError(422, f"Invalid query: {exc}.",
                           errors={"cursor": [str(exc)]}) from None


def _record(action: str, target: dict[str, Any]) -> None:
    """Append this read to the access log (raises LogUnavailable: then nothing is returned)."""
    services().log.record_access(current_principal().label, action, target)


def _seq_range(items: list[dict]) -> list[int] | None:
    if not items:
        return None
    seqs = [item["chain"]["seq"] for item in items]
    return [min(seqs), max(seqs)]


def _access_cursor(seq: int) -> str:
    payload = json.dumps({"v": 1, "a": seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def _access_before(cursor: str) -> int:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        seq = payload["a"]
        if payload.get("v") != 1 or type(seq) is not int or seq < 1:
            raise ValueError
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise ProblemError(422, "Invalid query: invalid cursor.",
                           errors={"cursor": ["invalid cursor"]}) from None
    return seq


# -- routes -------------------------------------------------------------------------------


@bp.get("/v1/decisions")
@require_role(AUDITOR)
def list_decisions() -> Response:
    """Decision records, newest first, filtered, in keyset-paginated pages."""
    svc = services()
    args = _query_args(_list_schema)
    filters = storage_filters(args, svc.decisions.patient_hash_filter)
    cursor = args.get("cursor")
    items, next_cursor = _cursor_checked(svc.log.query, filters, args["limit"], cursor)
    _record("list_decisions", {"filters": filters, "limit": args["limit"],
                               "cursor": cursor, "returned": len(items),
                               "seq_range": _seq_range(items)})
    return json_response({"items": items, "next_cursor": next_cursor})


@bp.get("/v1/decisions/export")
@require_role(AUDITOR)
def export_decisions() -> Response:
    """Every matching decision, oldest first, streamed as CSV or NDJSON (constant memory)."""
    svc = services()
    args = _query_args(_export_schema)
    fmt = args["format"]
    filters = storage_filters(args, svc.decisions.patient_hash_filter)
    records = svc.log.iter_records(filters)
    # Read the first chunk now: a log that cannot be read is a 503, not a truncated 200.
    first = list(itertools.islice(records, 1))
    _record("export_decisions", {"filters": filters, "format": fmt})
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {"Content-Disposition": f'attachment; filename="decisions-{stamp}.{fmt}"'}
    body = iter_export(fmt, itertools.chain(first, records))
    return Response(body, mimetype=MEDIA_TYPES[fmt].split(";")[0],
                    content_type=MEDIA_TYPES[fmt], headers=headers)


@bp.get("/v1/decisions/stats")
@require_role(AUDITOR)
def decision_stats() -> Response:
    """Counts and override rates grouped by the requested fields."""
    svc = services()
    args = _query_args(_stats_schema)
    filters = storage_filters(args, svc.decisions.patient_hash_filter)
    group_by = args["group_by"]
    result = svc.log.stats(filters, group_by)
    _record("decision_stats", {"filters": filters, "group_by": group_by,
                               "total": result["total"]})
    return json_response(result)


@bp.get("/v1/decisions/verify")
@require_role(AUDITOR)
def verify_chains() -> Response:
    """Walk the decision, feedback and access-log chains; report the first broken record."""
    svc = services()
    args = _query_args(_verify_schema)
    report = svc.log.verify(expect_head=args.get("expect_head"),
                            expect_count=args.get("expect_count"))
    body = {**report["decisions"], "feedback": report["feedback"],
            "access_log": report["access_log"]}
    _record("verify", {"anchor": {k: args[k] for k in ("expect_head", "expect_count")
                                  if k in args},
                       "ok": {name: part["ok"] for name, part in report.items()}})
    return json_response(body)


@bp.post("/v1/decisions/<decision_id>/replay")
@require_role(AUDITOR)
def replay_decision(decision_id: str) -> Response:
    """Re-evaluate a logged decision under another rule set version; writes no decision."""
    svc = services()
    data = read_json(request)
    if not isinstance(data, dict):
        raise ProblemError(422, "The body must be a JSON object.",
                           errors={"$": ["Must be a JSON object."]})
    try:
        body = _replay_schema.load(data)
    except ValidationError as err:
        raise validation_problem(err) from None
    version = body["ruleset_version"]
    record = svc.log.get(decision_id)
    if record is None:
        raise ProblemError(404, "No decision has this id.")
    try:
        ruleset = svc.registry.get(version)
    except KeyError:
        raise ProblemError(404, "No rule set version has this name.") from None
    try:
        result = replay_record(record, ruleset, svc.vocabulary)
    except ReplayError as exc:
        raise ProblemError(422, str(exc)) from None
    _record("replay", {"decision_id": decision_id, "ruleset_version": version,
                       "differences": len(result["differences"])})
    return json_response(result)


@bp.get("/v1/access-log")
@require_role(ADMIN)
def access_log() -> Response:
    """Who read which records or queries, when: newest first, keyset-paginated."""
    svc = services()
    args = _query_args(_access_schema)
    limit = args["limit"]
    before = _access_before(args["cursor"]) if "cursor" in args else None
    entries = svc.log.access_log(limit=limit + 1, before_seq=before)
    more = len(entries) > limit
    entries = entries[:limit]
    next_cursor = _access_cursor(entries[-1]["seq"]) if more else None
    _record("read_access_log", {"limit": limit, "returned": len(entries),
                                "seq_range": [entries[-1]["seq"], entries[0]["seq"]]
                                if entries else None})
    return json_response({"items": entries, "next_cursor": next_cursor})



# -- OpenAPI ------------------------------------------------------------------------------

_SECURED: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _problems(*codes: int) -> dict[str, Any]:
    text = {400: "Malformed body", 401: "Missing or invalid credential",
            403: "Credential lacks the role", 404: "Unknown decision or rule set version",
            415: "Body is not JSON", 422: "Invalid parameter (see `errors`)",
            429: "Too many failed authentications",
            503: "Log unreadable, access not recordable, or query over its time limit"}
    return {str(c): {"description": text[c], "content": _PROBLEM} for c in codes}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


_CHAIN_RESULT: dict[str, Any] = {
    "type": "object",
    "required": ["ok", "checked"],
    "properties": {
        "ok": {"type": "boolean"},
        "checked": {"type": "integer"},
        "head": {"type": "string", "description": "hash of the last record (when ok)"},
        "first_bad": {"description": "decision id (decisions) or seq of the first bad record",
                      "oneOf": [{"type": "string"}, {"type": "integer"}]},
        "first_bad_seq": {"type": "integer"},
        "reason": {"type": "string"},
    },
}


def document(spec: APISpec) -> None:
    """Add the audit paths to the OpenAPI document (idempotent)."""
    if "AuditVerify" in spec.components.schemas:
        return
    record_ref = {"$ref": "#/components/schemas/DecisionRecord"}
    spec.components.schema("AuditPage", _object(
        {"items": {"type": "array", "items": record_ref},
         "next_cursor": {"type": ["string", "null"]}}, ["items", "next_cursor"]))
    spec.components.schema("AuditStats", _object(
        {"total": {"type": "integer"},
         "groups": {"type": "array", "items": {
             "type": "object", "additionalProperties": True,
             "required": ["count", "override_rate"],
             "properties": {"count": {"type": "integer"},
                            "override_rate": {"type": ["number", "null"]}},
             "description": "one property per group_by field, with the group's value"}}},
        ["total", "groups"]))
    spec.components.schema("AuditVerify", {
        **_CHAIN_RESULT,
        "description": "the decision chain's result at top level; the feedback and access-log "
                       "chains under their own keys",
        "properties": {**_CHAIN_RESULT["properties"], "feedback": _CHAIN_RESULT,
                       "access_log": _CHAIN_RESULT},
    })
    spec.components.schema("ReplayRequest", schema=ReplayBodySchema)
    spec.components.schema("ReplayResult", _object(
        {"original": record_ref,
         "replayed": {"$ref": "#/components/schemas/Decision"},
         "differences": {"type": "array", "items": _object(
             {"field": {"type": "string"}, "original": {}, "replayed": {}})},
         "engine_version": _object({"recorded": {"type": "string"},
                                    "current": {"type": "string"}}),
         "ruleset_version": _object({"recorded": {"type": "string"},
                                     "replayed": {"type": "string"}})},
        ["original", "replayed", "differences", "engine_version"]))
    spec.components.schema("AccessLogPage", _object(
        {"items": {"type": "array", "items": _object(
            {"seq": {"type": "integer"}, "at": {"type": "string", "format": "date-time"},
             "actor": {"type": "string"}, "action": {"type": "string"},
             "target": {"type": "object"}, "chain": {"type": "object"}})},
         "next_cursor": {"type": ["string", "null"]}}, ["items", "next_cursor"]))

    def ok(description: str, schema: str) -> dict[str, Any]:
        return {"description": description,
                "content": {"application/json": {"schema": {"$ref":
                                                            f"#/components/schemas/{schema}"}}}}

    auth = (401, 403, 429)
    spec.path("/v1/decisions", operations={"get": {
        "summary": "Decision records, newest first, filtered (auditor)",
        "security": _SECURED,
        "parameters": [{"in": "query", "schema": ListQuerySchema}],
        "responses": {"200": ok("A page; next_cursor null on the last", "AuditPage"),
                      **_problems(*auth, 422, 503)}}})
    spec.path("/v1/decisions/export", operations={"get": {
        "summary": "Every matching decision, streamed as CSV or NDJSON (auditor)",
        "description": "CSV columns are stable; see docs/audit.md.",
        "security": _SECURED,
        "parameters": [{"in": "query", "schema": ExportQuerySchema}],
        "responses": {"200": {"description": "The export, oldest first", "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}}}},
            **_problems(*auth, 422, 503)}}})
    spec.path("/v1/decisions/stats", operations={"get": {
        "summary": "Counts and override rates grouped by fields (auditor)",
        "security": _SECURED,
        "parameters": [{"in": "query", "schema": StatsQuerySchema}],
        "responses": {"200": ok("Groups ordered by their values", "AuditStats"),
                      **_problems(*auth, 422, 503)}}})
    spec.path("/v1/decisions/verify", operations={"get": {
        "summary": "Verify the hash chains; with an anchor, detect a cut tail (auditor)",
        "security": _SECURED,
        "parameters": [{"in": "query", "schema": VerifyQuerySchema}],
        "responses": {"200": ok("The verification report (ok or the first bad record)",
                                "AuditVerify"),
                      **_problems(*auth, 422, 503)}}})
    spec.path("/v1/decisions/{decision_id}/replay", operations={"post": {
        "summary": "Re-evaluate a logged decision under another rule set version (auditor)",
        "description": "Uses the current engine; writes no decision.",
        "security": _SECURED,
        "parameters": [{"in": "path", "name": "decision_id", "required": True,
                        "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ReplayRequest"}}}},
        "responses": {"200": ok("Original, replayed and their differences", "ReplayResult"),
                      **_problems(400, *auth, 404, 415, 422, 503)}}})
    spec.path("/v1/access-log", operations={"get": {
        "summary": "Who read which records or queries, when (admin)",
        "security": _SECURED,
        "parameters": [{"in": "query", "schema": AccessLogQuerySchema}],
        "responses": {"200": ok("Entries, newest first", "AccessLogPage"),
                      **_problems(*auth, 422, 503)}}})


@bp.record_once
def _register_openapi(state: Any) -> None:
    # build_openapi() calls every function listed here after the blueprints are registered.
    state.app.extensions.setdefault("referral_api.openapi_paths", []).append(document)
