"""Every scenario of every region: the tests embedded in the rule files, plus the criteria's
scenario inventory and order, run through the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from referral_api.clinical.check import _mismatch
from referral_api.clinical.engine import evaluate
from referral_api.clinical.versions import load_registry

_RULESET = load_registry(Path(__file__).resolve().parents[2] / "rules").get("2026.1.0")

CRITERIA_ORDER = {
    "lumbar": [
        "ankylosed_spine_trauma", "trauma_with_deficit", "major_trauma", "cauda_equina",
        "suspected_mscc", "infection_with_deficit", "cord_compression", "febrile_infection",
        "severe_or_progressive_deficit", "suspected_infection", "suspected_malignancy",
        "fracture_with_deficit", "prior_surgery", "fracture_risk", "weak_malignancy_risk",
        "surgical_candidate", "uncomplicated",
    ],
    "cervical": [
        "ankylosed_spine_trauma", "trauma_with_deficit", "trauma_imaging_indicated",
        "suspected_mscc", "infection_with_deficit", "cord_compression", "febrile_infection",
        "severe_or_progressive_deficit", "suspected_infection", "suspected_malignancy",
        "prior_surgery", "fracture_risk", "degenerative_on_radiographs", "radiculopathy",
        "trauma_low_risk", "neck_pain",
    ],
}
CRITERIA_ORDER["thoracic"] = CRITERIA_ORDER["lumbar"]


@pytest.mark.parametrize("region", ["lumbar", "thoracic", "cervical"])
def test_scenarios_in_criteria_order(ruleset, region):
    ids = [s.id for s in ruleset.regions[region].scenarios]
    assert ids == [f"{region}.{name}" for name in CRITERIA_ORDER[region]]


@pytest.mark.parametrize(
    "case", _RULESET.tests, ids=[f"{t.scenario_id}:{t.name}" for t in _RULESET.tests]
)
def test_embedded_case(case, ruleset, vocabulary):
    result = evaluate(case.request, ruleset, vocabulary)
    assert _mismatch(dict(case.expect), result) == [], f"{case.file}:{case.line}"


# Direct cases from criteria.md (independent of the embedded tests):
# (region, age, weeks, findings, extra, scenario, urgency, appropriateness of MRI w/o)
DIRECT = [
    ("lumbar", 45, 1, ["saddle_anesthesia"], {}, "lumbar.cauda_equina", "emergent",
     "usually_appropriate"),
    ("lumbar", 70, 0, ["significant_trauma", "ankylosed_spine"], {},
     "lumbar.ankylosed_spine_trauma", "emergent", "usually_appropriate"),
    ("lumbar", 30, 0, ["significant_trauma"], {}, "lumbar.major_trauma", "emergent",
     "usually_not_appropriate"),
    ("lumbar", 55, 8, ["unexplained_weight_loss", "myelopathy_signs"], {},
     "lumbar.suspected_mscc", "emergent", "usually_appropriate"),
    ("lumbar", 40, 5, ["unexplained_weight_loss"], {}, "lumbar.suspected_malignancy", "urgent",
     "usually_appropriate"),
    ("lumbar", 40, 3, ["long_term_corticosteroids", "progressive_neurologic_deficit"], {},
     "lumbar.severe_or_progressive_deficit", "emergent", "usually_appropriate"),
    ("lumbar", 55, 20, ["myelopathy_signs", "progressive_neurologic_deficit"], {},
     "lumbar.cord_compression", "emergent", "may_be_appropriate"),
    ("lumbar", 30, 10, ["radiculopathy", "neurologic_deficit"], {"care": 10},
     "lumbar.uncomplicated", "none", "usually_not_appropriate"),
    ("thoracic", 50, 20, ["myelopathy_signs"], {}, "thoracic.cord_compression", "urgent",
     "usually_appropriate"),
    ("thoracic", 80, 2, [], {}, "thoracic.fracture_risk", "routine", "usually_appropriate"),
    ("cervical", 30, 0, ["altered_mental_status"], {}, "cervical.trauma_imaging_indicated",
     "emergent", "usually_not_appropriate"),
    ("cervical", 30, 0, ["midline_cervical_tenderness", "myelopathy_signs"], {},
     "cervical.trauma_with_deficit", "emergent", "usually_appropriate"),
    ("cervical", 40, 2, ["long_term_corticosteroids"], {}, "cervical.fracture_risk", "routine",
     "may_be_appropriate"),
    ("cervical", 40, 20, ["saddle_anesthesia"], {}, "cervical.cord_compression", "emergent",
     "usually_appropriate"),
]


@pytest.mark.parametrize(
    "region,age,weeks,findings,extra,scenario,urgency,rating", DIRECT,
    ids=[f"{d[5]}-{'+'.join(d[3]) or 'none'}" for d in DIRECT],
)
def test_direct_criteria_case(ruleset, vocabulary, req, region, age, weeks, findings, extra,
                              scenario, urgency, rating):
    result = evaluate(req(region, age, weeks, findings, **extra), ruleset, vocabulary)
    assert result["scenario"]["id"] == scenario
    assert result["urgency"] == urgency
    assert result["appropriateness"] == rating == result["requested_procedure"]["rating"]


def test_every_scenario_has_sources_and_rationale(ruleset):
    for rules in ruleset.regions.values():
        for s in rules.scenarios:
            assert s.sources and all(s.sources), s.id
            assert s.rationale.endswith("."), s.id


def test_thoracic_sources_marked_extrapolated(ruleset):
    for s in ruleset.regions["thoracic"].scenarios:
        if s.id.split(".")[1] in CRITERIA_ORDER["lumbar"][7:] + CRITERIA_ORDER["lumbar"][:3]:
            assert any("extrapolated from lumbar criteria" in src for src in s.sources), s.id
