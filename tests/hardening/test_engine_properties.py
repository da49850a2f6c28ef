"""Property-based tests of the engine (hypothesis) over the published rule set.

Requests are generated valid by construction and then passed through the API's own request
loader, so every example is one the service could receive.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from referral_api.clinical.engine import evaluate
from referral_api.clinical.model import URGENCY_RANK
from referral_api.clinical.versions import load_registry
from referral_api.config import PROJECT_ROOT
from referral_api.schemas import RequestLoader

REGISTRY = load_registry(PROJECT_ROOT / "rules")
VOCAB = REGISTRY.vocabulary
# The properties below are those of rule language 1 (e.g. "under 18: not_covered"): they run
# on 2026.1.0 with its vocabulary; 2026.2.0 is in force from 2026-12-01.
RULESET = REGISTRY.in_force(datetime(2026, 11, 30, tzinfo=UTC))
LOADER = RequestLoader(VOCAB)
FINDINGS = list(VOCAB.findings)
RED_FLAGS = [code for code, f in VOCAB.findings.items() if f.group == "red_flags"]
CONTRAINDICATIONS = list(VOCAB.contraindications)
REGIONS = ("cervical", "thoracic", "lumbar")
APPROPRIATENESS = {"usually_appropriate", "may_be_appropriate", "usually_not_appropriate",
                   "not_covered"}
URGENCIES = {"emergent", "urgent", "routine", "none"}
SAFETY = {"clear", "caution", "contraindicated"}
FIELDS = {"region", "requested_procedure", "appropriateness", "urgency", "scenario",
          "also_matched", "recommended_procedures", "reasons", "safety", "would_change_if",
          "assumptions", "ruleset"}

# Weeks near the criteria's thresholds are where rules flip; draw them often.
WEEKS = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 26, 52, 5200]),
                  st.floats(0, 5200, allow_nan=False, allow_infinity=False))
AGES = st.one_of(st.sampled_from([0, 12, 17, 18, 19, 49, 50, 51, 64, 65, 70, 120]),
                 st.integers(0, 120))


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A validated request (defaults applied) as the engine receives it."""
    region = draw(st.sampled_from(REGIONS))
    body: dict[str, Any] = {
        "patient": {"age": draw(AGES)},
        "region": region,
        "symptom_duration_weeks": draw(WEEKS),
        "conservative_care_weeks": draw(WEEKS),  # capped below (422 when above the duration)
        "intervention_candidate": draw(st.booleans()),
        "findings": draw(st.lists(st.sampled_from(FINDINGS), max_size=6, unique=True)),
        "contraindications": draw(st.lists(st.sampled_from(CONTRAINDICATIONS), max_size=3,
                                           unique=True)),
    }
    body["conservative_care_weeks"] = min(body["conservative_care_weeks"],
                                          body["symptom_duration_weeks"])
    if draw(st.booleans()):
        body["egfr"] = draw(st.sampled_from([10, 29, 30, 44, 45, 60, 90, 200]))
    if draw(st.booleans()):
        body["requested_procedure"] = draw(st.sampled_from(
            [p.code for p in VOCAB.procedures_of_region(region)]))
    return LOADER.load(body)


def run(request: dict[str, Any]) -> dict[str, Any]:
    return evaluate(request, RULESET, VOCAB)


def with_finding(request: dict[str, Any], code: str) -> dict[str, Any]:
    changed = copy.deepcopy(request)
    changed["findings"] = [*changed["findings"], code]
    return changed


PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(requests())
def test_decision_is_well_formed_and_deterministic(request: dict[str, Any]) -> None:
    snapshot = copy.deepcopy(request)
    result = run(request)
    assert request == snapshot  # the engine does not mutate its input
    assert set(result) >= FIELDS
    assert result["region"] == request["region"]
    assert result["appropriateness"] in APPROPRIATENESS
    assert result["appropriateness"] == result["requested_procedure"]["rating"]
    assert result["requested_procedure"]["code"] == request["requested_procedure"]
    assert result["urgency"] in URGENCIES
    assert result["scenario"]["id"].startswith(request["region"] + ".")
    assert result["scenario"]["id"] not in result["also_matched"]
    assert result["safety"]["status"] in SAFETY
    assert all({"code", "message"} <= set(a) for a in result["safety"]["alerts"])
    assert result["reasons"] and all(isinstance(r, str) and r for r in result["reasons"])
    for proc in result["recommended_procedures"]:
        assert proc["code"] in VOCAB.procedures
        assert proc["rating"] in APPROPRIATENESS
    if request["patient"]["age"] < 18:
        assert result["appropriateness"] == "not_covered"
        assert result["recommended_procedures"] == [] and result["would_change_if"] == []
    elif not result["recommended_procedures"]:
        assert result["urgency"] == "none"
    present = set(request["findings"])
    for entry in result["would_change_if"]:
        assert entry["finding"] in VOCAB.findings and entry["finding"] not in present
    # Same input, same answer; and the order of findings does not matter.
    assert run(copy.deepcopy(request)) == result
    shuffled = copy.deepcopy(request)
    shuffled["findings"] = list(reversed(shuffled["findings"]))
    shuffled["contraindications"] = list(reversed(shuffled["contraindications"]))
    again = run(shuffled)
    for key in ("appropriateness", "urgency", "scenario", "recommended_procedures", "safety",
                "would_change_if"):
        assert again[key] == result[key], key


@PROPERTY
@given(requests(), st.sampled_from(RED_FLAGS))
def test_adding_a_red_flag_never_lowers_urgency(request: dict[str, Any], flag: str) -> None:
    before = run(request)["urgency"]
    after = run(with_finding(request, flag))["urgency"]
    assert URGENCY_RANK[after] >= URGENCY_RANK[before], (flag, before, after)


@PROPERTY
@given(requests())
def test_would_change_if_entries_change_the_result(request: dict[str, Any]) -> None:
    result = run(request)
    listed = {entry["finding"]: entry for entry in result["would_change_if"]}
    for code, entry in listed.items():
        changed = run(with_finding(request, code))
        assert changed["appropriateness"] == entry["appropriateness"]
        assert changed["urgency"] == entry["urgency"]
        assert changed["scenario"]["id"] == entry["scenario"]
        assert (changed["appropriateness"], changed["urgency"]) != (
            result["appropriateness"], result["urgency"])
    if request["patient"]["age"] >= 18:
        # Completeness (criteria rule 6): every absent finding that changes the answer is listed.
        for code in FINDINGS:
            if code in request["findings"] or code in listed:
                continue
            changed = run(with_finding(request, code))
            assert (changed["appropriateness"], changed["urgency"]) == (
                result["appropriateness"], result["urgency"]), code
