"""RFC 9457 problem details: the one shape every error of the service takes.

Handlers raise :class:`ProblemError`; the app renders it. Messages name the field and the
reason, never a secret or a patient identifier (callers build ``detail`` from field names and
fixed text only).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Response
from marshmallow import ValidationError

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ProblemError(Exception):
    """An error to be answered as ``application/problem+json``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title or _TITLES.get(status, "Error")
        self.detail = detail
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers) if headers else {}

    def to_dict(self) -> dict[str, Any]:
        """The problem document (``type`` is ``about:blank``: the status says it all)."""
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


def problem_response(error: ProblemError) -> Response:
    """Render a :class:`ProblemError` as a Flask response."""
    response = Response(json.dumps(error.to_dict()), status=error.status, mimetype=PROBLEM_JSON)
    for key, value in error.headers.items():
        response.headers[key] = value
    return response


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"patient.age": ["…"]}``.

    List items are addressed by index (``findings.2``) so the caller sees which entry failed.
    """
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "$"
            flat.update(flatten_errors(value, path))
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            flat.setdefault(prefix or "$", []).extend(messages)
        else:
            for item in messages:
                flat.update(flatten_errors(item, prefix))
    else:
        flat.setdefault(prefix or "$", []).append(str(messages))
    return flat


def validation_problem(err: ValidationError, what: str = "request body") -> ProblemError:
    """A 422 naming every invalid field and why."""
    errors = flatten_errors(err.messages)
    fields = ", ".join(sorted(errors)) or "input"
    return ProblemError(422, f"The {what} has invalid values: {fields}.", errors=errors)
