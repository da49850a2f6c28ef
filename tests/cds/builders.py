"""Builders for the CDS Hooks tests: FHIR resources, hook requests, tokens, JSON walking.

The conformance files are read in place from ``../shared/conformance`` (never copied).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

CONFORMANCE = Path(__file__).parents[2].parent / "shared" / "conformance"
EXAMPLE_ISSUER = "https://fhir-ehr.example.com/"
PUBLIC_URL = "https://cds.example.org"
EHR_ORIGIN = "https://ehr.example.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10WHO = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
LOINC = "http://loinc.org"


def conformance(name: str) -> Any:
    """A conformance file, parsed when it is JSON."""
    text = (CONFORMANCE / name).read_text(encoding="utf-8")
    return json.loads(text) if name.endswith(".json") else text.strip()


def today() -> date:
    """Today in UTC (the service computes ages and durations at this date)."""
    return datetime.now(UTC).date()


def days_ago(days: int) -> str:
    """A FHIR date ``days`` before today."""
    return (today() - timedelta(days=days)).isoformat()


def condition(code: str, system: str = ICD10CM, *, clinical: str | None = "active",
              verification: str | None = None, onset: str | None = None,
              recorded: str | None = None, cid: str | None = None) -> dict[str, Any]:
    """A Condition with one coding."""
    resource: dict[str, Any] = {"resourceType": "Condition", "id": cid or uuid.uuid4().hex[:12],
                                "code": {"coding": [{"system": system, "code": code}]}}
    if clinical is not None:
        resource["clinicalStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": clinical}]}
    if verification is not None:
        resource["verificationStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": verification}]}
    if onset is not None:
        resource["onsetDateTime"] = onset
    if recorded is not None:
        resource["recordedDate"] = recorded
    return resource


def egfr_observation(value: float, when: str, code: str = "33914-3") -> dict[str, Any]:
    """An eGFR Observation."""
    return {"resourceType": "Observation", "id": uuid.uuid4().hex[:12], "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": "mL/min/{1.73_m2}"}}


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    """A searchset Bundle of ``resources``."""
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r} for r in resources]}


def patient(birth_date: str | None = "1980-06-15", gender: str | None = "female"
            ) -> dict[str, Any]:
    """A Patient."""
    resource: dict[str, Any] = {"resourceType": "Patient", "id": "pat-1"}
    if birth_date is not None:
        resource["birthDate"] = birth_date
    if gender is not None:
        resource["gender"] = gender
    return resource


def service_request(code: str = "72148", system: str = CPT, *, rid: str = "sr-1",
                    reasons: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A draft ServiceRequest."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": rid, "status": "draft", "intent": "order",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/pat-1"}}
    if reasons:
        resource["reasonCode"] = [{"coding": [{"system": s, "code": c}]} for s, c in reasons]
    return resource


def hook_request(*orders: dict[str, Any], hook: str = "order-select",
                 prefetch: dict[str, Any] | None = None, hook_instance: str | None = None
                 ) -> dict[str, Any]:
    """A CDS Hooks request carrying ``orders`` as draftOrders."""
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": hook_instance or str(uuid.uuid4()),
        "fhirServer": "https://ehr.example.org/fhir",
        "context": {"userId": "Practitioner/dr-1", "patientId": "pat-1",
                    "draftOrders": bundle(*orders)},
    }
    if hook == "order-select":
        body["context"]["selections"] = [f"ServiceRequest/{o['id']}" for o in orders]
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def walk_for_empty(value: Any, path: str = "$") -> list[str]:
    """Paths of every null, empty string, empty list or empty object inside ``value``."""
    bad: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if item is None or item == "" or item == [] or item == {}:
                bad.append(f"{path}.{key}")
            bad += walk_for_empty(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if item is None or item == "" or item == [] or item == {}:
                bad.append(f"{path}[{index}]")
            bad += walk_for_empty(item, f"{path}[{index}]")
    return bad


def mint(private_key: Any, audience: str, *, issuer: str = EXAMPLE_ISSUER,
         algorithm: str = "ES384", kid: str = "example-kid", lifetime: int = 300,
         jti: str | None = None, **claims: Any) -> str:
    """A client token signed with ``private_key``."""
    now = int(time.time())
    payload = {"iss": issuer, "sub": "example-client", "aud": audience, "iat": now,
               "exp": now + lifetime, "jti": jti or str(uuid.uuid4()), **claims}
    return jwt.encode(payload, private_key, algorithm=algorithm, headers={"kid": kid})


def count_decisions(app: Any) -> int:
    """Decisions in the log of ``app`` (the chain has no gaps: its head's count), on either
    backend."""
    return app.extensions["referral_api"].log.head()["count"]
