"""The two pages that read one decision (audit detail, patient handout) share one reader:
a log that cannot be read is a 503 page, an unknown or over-long id a 404 page."""

from __future__ import annotations

from typing import Any

import pytest

from referral_api.store.interface import LogUnavailable
from tests.web.pages import sign_in

PAGES = [("auditor", "/audit/decisions/{id}"), ("clinician", "/decisions/{id}/patient")]


@pytest.mark.parametrize(("role", "path"), PAGES)
def test_log_unavailable_is_a_503_page(web_app: Any, browser: Any, keys: dict[str, str],
                                       monkeypatch: pytest.MonkeyPatch, role: str,
                                       path: str) -> None:
    sign_in(browser, keys[role])
    log = web_app.extensions["referral_api"].log

    def down(decision_id: str) -> None:
        raise LogUnavailable("disk gone")

    monkeypatch.setattr(log, "get", down)
    response = browser.get(path.format(id="0" * 36))
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert "cannot be read right now" in response.get_data(as_text=True)


@pytest.mark.parametrize(("role", "path"), PAGES)
@pytest.mark.parametrize("decision_id", ["0" * 36, "x" * 65])
def test_unknown_or_overlong_id_is_a_404_page(browser: Any, keys: dict[str, str], role: str,
                                              path: str, decision_id: str) -> None:
    sign_in(browser, keys[role])
    response = browser.get(path.format(id=decision_id))
    assert response.status_code == 404
    assert response.mimetype == "text/html"
