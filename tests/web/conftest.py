"""Fixtures for the HTML pages: the real app (tests/conftest.py) with the web blueprint.
Helpers that sign in through the page like a browser does are in ``tests/web/pages.py``."""

from __future__ import annotations

import pytest


@pytest.fixture
def web_app(app):
    """The app (``create_app`` registers the web blueprint)."""
    assert "web" in app.blueprints
    return app


@pytest.fixture
def browser(web_app):
    """A test client that keeps cookies, like a browser."""
    return web_app.test_client()
