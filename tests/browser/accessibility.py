"""axe-core in the browser tests: inject the engine installed from the npm registry
(``tests/browser/package.json``, installed by ``scripts/install-chromium.sh``) and fail on any
serious or critical violation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def axe_source() -> str:
    """The axe-core script; skips (fails under CI=true) when it is not installed."""
    if not AXE.exists():
        message = f"{AXE} not found: run `bash scripts/install-chromium.sh` (npm ci)"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return AXE.read_text(encoding="utf-8")


def violations(page: Any) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (WCAG 2.x A and AA rules and best practice).

    The script is evaluated through the DevTools protocol, which the page's Content Security
    Policy (``script-src 'self'``) does not govern, so the pages need no exception for it.
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source() + "\n;undefined")
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return list(result)


def assert_accessible(page: Any, where: str) -> list[dict[str, Any]]:
    """No serious or critical violation on the page; returns the minor/moderate ones."""
    found = violations(page)
    blocking = [v for v in found if v.get("impact") in BLOCKING]
    detail = "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n.get("target")) for n in v.get("nodes", [])[:3])
        for v in blocking)
    assert not blocking, f"axe-core on {where}: {detail}"
    return [v for v in found if v not in blocking]
