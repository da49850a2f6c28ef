"""Helpers for the HTML page tests: sign in through the page like a browser does (CSRF token
included), read tokens from pages, count logged decisions, a cauda equina form."""

from __future__ import annotations

import re
from typing import Any

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
SUBMISSION_RE = re.compile(r'name="submission_id" value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The CSRF token embedded in a page's forms."""
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def sign_in(client: Any, key: str, next_url: str = "") -> Any:
    """Open the sign-in page, then post the key with the page's token; return the response."""
    page = client.get("/sign-in")
    assert page.status_code == 200
    return client.post("/sign-in", data={"key": key, "next": next_url,
                                         "csrf_token": csrf_from(page.get_data(as_text=True))})


def decision_count(app: Any) -> int:
    """How many decisions the log holds (walks the chain: also proves it is intact)."""
    result = app.extensions["referral_api"].log.verify()
    assert all(chain["ok"] for chain in result.values()), result
    return result["decisions"]["checked"]


def cauda_equina_form(**changes: Any) -> dict[str, Any]:
    """Form fields for a lumbar cauda equina referral (urinary retention)."""
    form: dict[str, Any] = {
        "age": "52",
        "sex": "female",
        "region": "lumbar",
        "symptom_duration_weeks": "1",
        "conservative_care_weeks": "0",
        "findings": ["urinary_retention"],
    }
    form.update(changes)
    return form
