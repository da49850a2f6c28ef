"""Property-based tests (hypothesis) of rule set 2026.2.0 with its own vocabulary: every answer
is well formed and deterministic, a red flag never lowers the urgency, and every
`would_change_if` entry is what adding that finding gives."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from referral_api.clinical.engine import evaluate
from referral_api.clinical.model import URGENCY_RANK
from referral_api.clinical.versions import load_registry
from referral_api.config import PROJECT_ROOT
from referral_api.schemas import RequestLoader

REGISTRY = load_registry(PROJECT_ROOT / "rules")
RULESET = REGISTRY.get("2026.2.0")
VOCAB = RULESET.vocabulary
LOADER = RequestLoader(VOCAB)
FINDINGS = list(VOCAB.findings)
RED_FLAGS = [f.code for f in VOCAB.red_flags()]
CONTRAINDICATIONS = list(VOCAB.contraindications)
WEEKS = st.one_of(st.sampled_from([0, 1, 3, 4, 5, 6, 12, 13, 26]), st.floats(0, 200))
AGES = st.one_of(st.sampled_from([2, 4, 5, 12, 15, 16, 17, 18, 50, 64, 65, 69, 70]),
                 st.integers(0, 120))
DAYS = st.one_of(st.none(), st.sampled_from([0, 7, 8, 28, 29, 400]))
PROPERTY = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    region = draw(st.sampled_from(("cervical", "thoracic", "lumbar")))
    weeks = draw(WEEKS)
    body: dict[str, Any] = {
        "patient": {"age": draw(AGES)},
        "region": region,
        "symptom_duration_weeks": weeks,
        "conservative_care_weeks": min(weeks, draw(WEEKS)),
        "intervention_candidate": draw(st.booleans()),
        "findings": draw(st.lists(st.sampled_from(FINDINGS), max_size=5, unique=True)),
        "contraindications": draw(st.lists(st.sampled_from(CONTRAINDICATIONS), max_size=3,
                                           unique=True)),
    }
    days = draw(DAYS)
    if days is not None:
        body["days_since_injury"] = days
    if draw(st.booleans()):
        body["egfr"] = draw(st.sampled_from([10, 29, 30, 44, 45, 90]))
    if draw(st.booleans()):
        body["requested_procedure"] = draw(st.sampled_from(
            [p.code for p in VOCAB.procedures_of_region(region)]))
    return LOADER.load(body)


def run(request: dict[str, Any]) -> dict[str, Any]:
    return evaluate(request, RULESET)


def with_finding(request: dict[str, Any], code: str) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    changed["findings"] = [*changed["findings"], code]
    return changed


@PROPERTY
@given(requests())
def test_answer_is_well_formed_and_deterministic(request: dict[str, Any]) -> None:
    result = run(request)
    steps = [p["step"] for p in result["recommended_procedures"]]
    assert steps == sorted(steps) and (not steps or steps[0] == 1)
    assert len({p["code"] for p in result["recommended_procedures"]}) == len(steps)
    if result["appropriateness"] == "not_covered":
        assert result["scenario"]["id"].endswith("child_trauma_under_16")
        assert result["would_change_if"] == []
    elif not steps:
        assert result["urgency"] == "none"
    if result["urgency"] == "emergent":
        assert not any("conservative care" in r for r in result["reasons"])
    assert len(result["contributing_scenarios"]) != 1
    levels = {a["level"] for a in result["safety"]["alerts"]}
    status = result["safety"]["status"]
    assert status == ("contraindicated" if "contraindicated" in levels else
                      "caution" if "caution" in levels else "clear")
    shuffled = copy.deepcopy(request)
    shuffled["findings"].reverse()
    shuffled["contraindications"].reverse()
    assert run(shuffled) == result


@PROPERTY
@given(requests(), st.sampled_from(RED_FLAGS))
def test_adding_a_red_flag_never_lowers_urgency(request: dict[str, Any], flag: str) -> None:
    before = run(request)["urgency"]
    after = run(with_finding(request, flag))["urgency"]
    assert URGENCY_RANK[after] >= URGENCY_RANK[before], (flag, before, after)


@PROPERTY
@given(requests())
def test_would_change_if_entries_are_what_adding_the_finding_gives(
        request: dict[str, Any]) -> None:
    result = run(request)
    for entry in result["would_change_if"]:
        changed = run(with_finding(request, entry["finding"]))
        assert (changed["appropriateness"], changed["urgency"], changed["scenario"]["id"]) == (
            entry["appropriateness"], entry["urgency"], entry["scenario"])
