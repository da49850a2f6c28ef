"""Helpers for the browser tests: the live server handle and signing in through the page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class LiveServer:
    """The app under test, where it listens, and one access key per role."""

    app: Any
    base_url: str
    keys: dict[str, str]

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on the live server."""
        return self.base_url + path

    def decision_count(self) -> int:
        """Decisions in the log (walking the chain, which must hold)."""
        result = self.app.extensions["referral_api"].log.verify()
        assert all(chain["ok"] for chain in result.values()), result
        return result["decisions"]["checked"]


def sign_in(page: Any, server: LiveServer, role: str) -> None:
    """Sign in through the page with the key of ``role``."""
    page.goto(server.url("/"))
    page.get_by_label("Access key").fill(server.keys[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
