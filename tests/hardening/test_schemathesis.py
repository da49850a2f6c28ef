"""Schemathesis against the served OpenAPI document (/openapi.json), every operation.

Requests carry an admin key (admin may call everything), so the fuzzer reaches the handlers
rather than the 401. Checks: no 5xx, and every response (status, content type, headers,
body) conforms to what the document declares. Bounded: a few examples per operation.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@pytest.fixture
def served(make_app):
    app = make_app()
    _, key = app.extensions["referral_api"].keys.create(["admin"], "schemathesis")
    return schemathesis.openapi.from_wsgi("/openapi.json", app), key


@pytest.mark.slow
def test_every_operation_conforms(served) -> None:
    # The schemathesis pytest plugin's lazy loader does not work with pytest 9 (it reads a
    # private node attribute), so each operation's strategy is driven here directly.
    schema, key = served
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    failures: dict[str, str] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def conforms(case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

        try:
            conforms()
        except (Exception, BaseExceptionGroup) as exc:  # every operation reported together
            failures[operation.label] = str(exc).splitlines()[0:12].__str__()
    assert not failures, "\n".join(f"{k}: {v}" for k, v in failures.items())
