"""The OpenAPI document, generated from the same marshmallow schemas that validate requests."""

from __future__ import annotations

import json
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from referral_api.clinical.vocabulary import Vocabulary

from . import schemas

API_VERSION = "1.0.0"

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _problems(*codes: int) -> dict[str, Any]:
    text = {400: "Malformed body", 401: "Missing or invalid credential",
            403: "Credential lacks the role", 404: "Not found", 413: "Body over 64 KiB",
            415: "Body is not JSON", 422: "Invalid values (see `errors`)",
            429: "Too many failed authentications", 503: "Cannot log the decision"}
    return {str(c): {"description": text.get(c, "Error"), "content": PROBLEM} for c in codes}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def build_openapi(app: Flask, vocabulary: Vocabulary) -> str:
    """Build the document once; returns it serialised (served as is)."""
    spec = APISpec(
        title="Spine-MRI referral decision support",
        version=API_VERSION,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": "Is spine MRI appropriate now, how urgently, with or without "
                             "contrast? Every answer is logged with its reasons."},
        servers=[{"url": "/"}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header",
                                                "name": "X-API-Key"})
    request_schema = schemas.build_request_schema_class(vocabulary)
    for name, schema in {
        "DecisionRequest": request_schema,
        "Decision": schemas.DecisionSchema,
        "DecisionRecord": schemas.DecisionRecordSchema,
        "RulesetList": schemas.RulesetListSchema,
        "Problem": schemas.ProblemSchema,
        "Health": schemas.HealthSchema,
        "Ready": schemas.ReadySchema,
    }.items():
        spec.components.schema(name, schema=schema)
    secured: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
    auth_errors = (401, 403, 429)

    spec.path("/v1/decisions", operations={"post": {
        "summary": "Evaluate a referral and record the decision",
        "security": secured,
        "parameters": [{"in": "header", "name": "Idempotency-Key", "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 128}}],
        "requestBody": {"required": True, "content": _json("DecisionRequest")},
        "responses": {
            "201": {"description": "Decision recorded", "content": _json("Decision"),
                    "headers": {"Location": {"schema": {"type": "string"}}}},
            "200": {"description": "Idempotent repeat: the original decision",
                    "content": _json("Decision")},
            **_problems(400, *auth_errors, 413, 415, 422, 503),
        },
    }})
    spec.path("/v1/decisions/{decision_id}", operations={"get": {
        "summary": "One decision record (auditor)",
        "security": secured,
        "parameters": [{"in": "path", "name": "decision_id", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The record", "content": _json("DecisionRecord")},
                      **_problems(*auth_errors, 404)},
    }})
    spec.path("/v1/rulesets", operations={"get": {
        "summary": "Loaded rule set versions and the one in force",
        "security": secured,
        "responses": {"200": {"description": "Versions", "content": _json("RulesetList")},
                      **_problems(*auth_errors)},
    }})
    spec.path("/v1/rulesets/{version}", operations={"get": {
        "summary": "One rule set version: scenarios, sources, ratings",
        "security": secured,
        "parameters": [{"in": "path", "name": "version", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "The rule set",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      **_problems(*auth_errors, 404)},
    }})
    spec.path("/v1/vocabulary", operations={"get": {
        "summary": "Findings, contraindications and procedures with standard codes",
        "description": "The vocabulary of the rule set version in force now (requests are "
                       "validated against it), or of `ruleset_version`. The request schema "
                       "in this document lists the codes in force when the service started.",
        "security": secured,
        "parameters": [{"in": "query", "name": "ruleset_version", "required": False,
                        "schema": {"type": "string"},
                        "description": "a loaded version, e.g. 2026.1.0"}],
        "responses": {"200": {"description": "Vocabulary (with `ruleset_version`)",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      **_problems(*auth_errors, 404)},
    }})
    spec.path("/healthz", operations={"get": {
        "summary": "Liveness", "security": [],
        "responses": {"200": {"description": "Alive", "content": _json("Health")}}}})
    spec.path("/readyz", operations={"get": {
        "summary": "Readiness: log writable, rule set in force", "security": [],
        "responses": {"200": {"description": "Ready", "content": _json("Ready")},
                      "503": {"description": "Not ready", "content": _json("Ready")}}}})
    _document_cds_hooks(spec, secured)
    for extra in app.extensions.get("referral_api.openapi_paths", []):
        extra(spec)
    return json.dumps(spec.to_dict(), separators=(",", ":"))


def _document_cds_hooks(spec: APISpec, secured: list[dict[str, list[str]]]) -> None:
    """CDS Hooks 2.0 endpoints: their bodies are defined by the CDS Hooks specification."""
    service_id = {"in": "path", "name": "service_id", "required": True,
                  "schema": {"type": "string",
                             "enum": ["spine-mri-appropriateness",
                                      "spine-mri-appropriateness-sign"]}}
    any_object = {"application/json": {"schema": {"type": "object"}}}
    cds_auth = [*secured, {"cdsClientJwt": []}]
    spec.components.security_scheme("cdsClientJwt", {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "CDS Hooks client JWT (ES384 or RS384) from a trusted issuer"})
    spec.path("/cds-services", operations={"get": {
        "summary": "CDS Hooks discovery", "security": [],
        "responses": {"200": {"description": "The services and their prefetch templates",
                              "content": {"application/json": {"schema": {
                                  "type": "object", "required": ["services"],
                                  "properties": {"services": {"type": "array"}}}}}}}}})
    spec.path("/cds-services/{service_id}", operations={"post": {
        "summary": "CDS Hooks service call (order-select or order-sign)",
        "security": cds_auth, "parameters": [service_id],
        "requestBody": {"required": True, "content": any_object},
        "responses": {"200": {"description": "Cards and PAMA system actions",
                              "content": {"application/json": {"schema": {
                                  "type": "object", "required": ["cards"],
                                  "properties": {"cards": {"type": "array"}}}}}},
                      **_problems(400, 401, 403, 404, 413, 415, 429, 503)}}})
    spec.path("/cds-services/{service_id}/feedback", operations={"post": {
        "summary": "CDS Hooks feedback on a card (accepted or overridden)",
        "security": cds_auth, "parameters": [service_id],
        "requestBody": {"required": True, "content": any_object},
        "responses": {"200": {"description": "Feedback recorded", "content": any_object},
                      **_problems(400, 401, 403, 404, 413, 415, 429, 503)}}})
