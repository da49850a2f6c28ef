"""Old decisions stay exact: a log of 2026.1.0 decisions made by the engine *before* rule set
2026.2.0 and its engine additions existed replays under 2026.1.0 with no difference at all.

``fixtures/log-2026.1.0.jsonl`` was generated once, from the code as it was before the
2026.2.0 work began (commit 262f7ec), with ``scripts/generate_log.py``'s request generator
(seed 20261201): one JSON object per line, ``{"input", "output", "engine_version"}``. It must
never be regenerated: it is the witness of the old behaviour.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from referral_api.audit.replay import differences
from referral_api.clinical import engine

FIXTURE = Path(__file__).parent / "fixtures" / "log-2026.1.0.jsonl"


def _records() -> list[dict]:
    with FIXTURE.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_fixture_is_a_real_2026_1_0_log() -> None:
    records = _records()
    assert len(records) == 250
    assert {r["output"]["ruleset"]["version"] for r in records} == {"2026.1.0"}


@pytest.mark.parametrize("index", range(0, 250, 1))
def test_replay_under_2026_1_0_is_identical(index: int, registry) -> None:
    record = _records_cache()[index]
    ruleset = registry.get("2026.1.0")
    replayed = engine.evaluate(record["input"], ruleset, ruleset_vocabulary(registry, ruleset))
    # The whole output, byte for byte as JSON: no new field, no changed text.
    assert json.dumps(replayed, sort_keys=True) == json.dumps(record["output"], sort_keys=True)
    assert differences(record["output"], replayed) == []


_CACHE: list[dict] = []


def _records_cache() -> list[dict]:
    if not _CACHE:
        _CACHE.extend(_records())
    return _CACHE


def ruleset_vocabulary(registry, ruleset):
    """The vocabulary a version is evaluated with (its own when it has one)."""
    return getattr(ruleset, "vocabulary", None) or registry.vocabulary
