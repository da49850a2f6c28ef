"""Benchmark a CDS Hooks service call: p50/p99 latency with a realistic prefetch.

Usage: .venv/bin/python scripts/bench_cds.py [--rounds 300]

In-process (Flask test client): it measures the service's own work - body parsing, FHIR
mapping, engine, the durable decision-log append (SQLite, synchronous=FULL), card and PAMA
building, authentication - but not the network or gunicorn. Each call uses a new hookInstance,
so each logs a new decision; a repeated hookInstance (answered from the log) is measured
separately. Runs on a temporary database; nothing under db/ is touched.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402

from referral_api import create_app  # noqa: E402
from referral_api.store.sqlite.db import connect  # noqa: E402
from referral_api.store.sqlite.migrations import migrate  # noqa: E402

SHARED = ROOT.parent / "shared" / "conformance"
ISSUER = "https://fhir-ehr.example.com/"
PUBLIC_URL = "https://cds.example.org"
PATH = "/cds-services/spine-mri-appropriateness"


def _day(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


def _condition(code: str, system: str, onset_days: int, status: str = "active") -> dict:
    return {"resourceType": "Condition", "id": uuid.uuid4().hex[:10],
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": status}]},
            "code": {"coding": [{"system": system, "code": code}]},
            "onsetDateTime": _day(onset_days), "recordedDate": _day(onset_days)}


def realistic_request() -> dict[str, Any]:
    """An order-select for lumbar MRI with a problem list of 24 Conditions and an eGFR."""
    icd = "http://hl7.org/fhir/sid/icd-10-cm"
    sct = "http://snomed.info/sct"
    problems = [("I10", icd), ("E11.9", icd), ("E78.5", icd), ("J45.909", icd),
                ("K21.9", icd), ("F32.9", icd), ("M17.11", icd), ("G47.33", icd),
                ("N40.0", icd), ("H52.4", icd), ("Z87.891", icd), ("E66.9", icd),
                ("38341003", sct), ("44054006", sct), ("195967001", sct), ("35489007", sct)]
    conditions = [_condition(code, system, 300 + 40 * i) for i, (code, system) in
                  enumerate(problems)]
    conditions += [_condition("M54.16", icd, 49), _condition("279039007", sct, 60),
                   _condition("M51.16", icd, 45), _condition("R32", icd, 900),
                   _condition("C61", icd, 1500), _condition("Z33.1", icd, 700, "resolved"),
                   _condition("M81.0", icd, 2000), _condition("R63.4", icd, 20)]
    observation = {"resourceType": "Observation", "id": "egfr-1", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]},
                   "effectiveDateTime": _day(12),
                   "valueQuantity": {"value": 52, "unit": "mL/min/{1.73_m2}"}}
    order = {"resourceType": "ServiceRequest", "id": "sr-bench", "status": "draft",
             "intent": "order",
             "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]},
             "subject": {"reference": "Patient/pat-bench"},
             "reasonCode": [{"coding": [{"system": icd, "code": "M54.16"}]}]}
    medication = {"resourceType": "MedicationRequest", "id": "mr-1", "status": "draft",
                  "intent": "order", "medicationCodeableConcept": {"text": "ibuprofen"}}
    return {
        "hook": "order-select",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://ehr.example.org/fhir",
        "context": {"userId": "Practitioner/dr-bench", "patientId": "pat-bench",
                    "selections": ["ServiceRequest/sr-bench"],
                    "draftOrders": {"resourceType": "Bundle", "entry": [
                        {"resource": order}, {"resource": medication}]}},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "pat-bench", "gender": "male",
                        "birthDate": "1958-03-02"},
            "conditions": {"resourceType": "Bundle", "type": "searchset",
                           "entry": [{"resource": c} for c in conditions]},
            "egfr": {"resourceType": "Bundle", "type": "searchset",
                     "entry": [{"resource": observation}]},
        },
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _run(client: Any, rounds: int, headers: Any, repeat: bool = False) -> list[float]:
    body = realistic_request()
    timings = []
    for _ in range(rounds):
        if not repeat:
            body["hookInstance"] = str(uuid.uuid4())
        started = time.perf_counter()
        response = client.post(PATH, json=body, headers=headers())
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"unexpected status {response.status_code}: "
                             f"{response.get_data(as_text=True)[:300]}")
    return timings


def main() -> None:
    """Measure and print p50/p99 (ms) per variant."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "bench.sqlite"
        db = connect(database)
        migrate(db)
        db.close()
        clients = Path(tmp) / "clients.json"
        jwks = json.loads((SHARED / "cds-hooks-2.0.1-example.jwks.json").read_text())
        clients.write_text(json.dumps({ISSUER: {"jwks": jwks}}))
        app = create_app({"DATABASE": str(database), "RULES_DIR": str(ROOT / "rules"),
                          "SECRET_KEY": "bench-secret-key-of-sufficient-length-0123",
                          "PUBLIC_URL": PUBLIC_URL, "CDS_CLIENTS": str(clients)})
        if "cds" not in app.blueprints:
            from referral_api.cds.blueprint import bp

            app.register_blueprint(bp)
        key = app.extensions["referral_api"].keys.create(["evaluator"], "bench")[1]
        private = jwt.PyJWK(json.loads(
            (SHARED / "cds-hooks-2.0.1-example.private-jwk.json").read_text())).key

        def key_headers() -> dict[str, str]:
            return {"Authorization": f"Bearer {key}"}

        def jwt_headers() -> dict[str, str]:
            now = int(time.time())
            token = jwt.encode({"iss": ISSUER, "aud": PUBLIC_URL + PATH, "iat": now,
                                "exp": now + 300, "jti": str(uuid.uuid4())}, private,
                               algorithm="ES384", headers={"kid": "example-kid"})
            return {"Authorization": f"Bearer {token}"}

        client = app.test_client()
        size = len(json.dumps(realistic_request()))
        _run(client, 20, key_headers)  # warm-up
        print(f"CDS Hooks order-select, in-process (Flask test client), body {size} bytes, "
              f"{args.rounds} calls each")
        for name, headers, repeat in (("new decision, API key", key_headers, False),
                                      ("new decision, client JWT (ES384)", jwt_headers, False),
                                      ("repeated hookInstance, API key", key_headers, True)):
            timings = _run(client, args.rounds, headers, repeat)
            print(f"  {name:36s} p50 {statistics.median(timings):7.2f} ms   "
                  f"p99 {_percentile(timings, 0.99):7.2f} ms")
        app.extensions["referral_api"].log.close()


if __name__ == "__main__":
    main()
