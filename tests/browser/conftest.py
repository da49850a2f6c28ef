"""Real-browser harness: the real app served on 127.0.0.1 and Debian's headless Chromium.

Playwright cannot download its own browser here, so it drives ``/usr/bin/chromium`` (install
it with ``scripts/install-chromium.sh``). Under ``CI=true`` a missing Chromium fails the run;
elsewhere the browser tests skip and say why.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from referral_api.config import PROJECT_ROOT
from referral_api.enums import ROLES
from tests.browser.live import LiveServer
from tests.factories import build_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"


def _require_chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    message = (f"{CHROMIUM} not found: run `bash scripts/install-chromium.sh` as root "
               "(Debian's chromium package)")
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests must run under CI=true, but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium launched once for the session."""
    executable = _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable),
                                             args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real app on a temporary database, served by werkzeug in a background thread."""
    app = build_app(tmp_path_factory.mktemp("browser-db"))
    store = app.extensions["referral_api"].keys
    keys = {role: store.create([role], f"browser-{role}")[1]
            for role in ROLES}
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, base_url=f"http://127.0.0.1:{server.server_port}", keys=keys)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        app.extensions["referral_api"].log.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page per test."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots for review go (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
