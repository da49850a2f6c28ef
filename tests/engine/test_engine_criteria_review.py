"""Independent review of spine-imaging 2026.1.0 against /work/shared/clinical/criteria.md.

Every expectation here was written from the criteria text (tables, derived facts, combination
rules 1-7, safety modifiers), not from the YAML rule files or their embedded tests, so that a
mis-encoded row (a missed cauda equina, infection or cord compression, or a needless MRI)
shows up as a failing test. Procedures are written in the criteria's own shorthand ("MRI w/o",
"thoracic MRI w/wo", "CTM", ...) and translated to vocabulary codes by `proc`.

Only the public engine API is used: `evaluate(request, ruleset, vocabulary)` on the published
rule set, and `load_registry` for a draft copy that reaches safety branches the published
tables cannot (a scenario naming no non-MRI study).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from referral_api.clinical.engine import evaluate
from referral_api.clinical.versions import load_registry

UA = "usually_appropriate"
MBA = "may_be_appropriate"
UNA = "usually_not_appropriate"
NOT_COVERED = "not_covered"

REGIONS = ("cervical", "thoracic", "lumbar")
RULES_DIR = Path(__file__).resolve().parents[2] / "rules"

# The criteria's abbreviations ("MRI w/o is MRI without contrast, ..., CTM CT myelography,
# XR radiography, all of the request's region unless another region is named").
_SHORTHAND = {
    "MRI w/o": "mri_{r}_without_contrast",
    "MRI w/": "mri_{r}_with_contrast",
    "MRI w/wo": "mri_{r}_without_and_with_contrast",
    "CT w/o": "ct_{r}_without_contrast",
    "CT w/": "ct_{r}_with_contrast",
    "CT w/wo": "ct_{r}_without_and_with_contrast",
    "CTM": "ct_myelography_{r}",
    "XR": "xray_{r}",
}


def proc(region: str, text: str) -> str:
    """Vocabulary code of a criteria-table item such as 'MRI w/o' or 'thoracic MRI w/wo'."""
    first, _, rest = text.partition(" ")
    if first in REGIONS:
        region, text = first, rest
    return _SHORTHAND[text].format(r=region)


def procs(region: str, items: list[str]) -> list[str]:
    """Codes of a list of criteria-table items, in order."""
    return [proc(region, item) for item in items]


def make(region: str, age: float, weeks: float, findings: list[str] | tuple[str, ...] = (),
         *, care: float = 0, candidate: bool = False, contra: list[str] | tuple[str, ...] = (),
         egfr: float | None = None, requested: str | None = None) -> dict[str, Any]:
    """A validated request as the web layer would pass it (defaults applied)."""
    request: dict[str, Any] = {
        "patient": {"age": age},
        "region": region,
        "symptom_duration_weeks": weeks,
        "conservative_care_weeks": care,
        "intervention_candidate": candidate,
        "findings": list(findings),
        "contraindications": list(contra),
    }
    if egfr is not None:
        request["egfr"] = egfr
    if requested is not None:
        request["requested_procedure"] = proc(region, requested)
    return request


def rec(result: dict[str, Any]) -> list[str]:
    """The recommended procedure codes, in order."""
    return [p["code"] for p in result["recommended_procedures"]]


def alert_codes(result: dict[str, Any]) -> list[str]:
    """The safety alert codes, in order."""
    return [a["code"] for a in result["safety"]["alerts"]]


@pytest.fixture
def run(ruleset, vocabulary):
    """evaluate() on the published 2026.1.0 rule set."""
    def _run(request: dict[str, Any]) -> dict[str, Any]:
        return evaluate(request, ruleset, vocabulary)
    return _run


@pytest.fixture
def rating_of(run):
    """Rating of one requested study (criteria shorthand) for an otherwise identical request."""
    def _rating(request: dict[str, Any], item: str) -> str:
        again = dict(request, requested_procedure=proc(request["region"], item))
        result = run(again)
        assert result["appropriateness"] == result["requested_procedure"]["rating"]
        return result["appropriateness"]
    return _rating


# --------------------------------------------------------------------------------------------
# Scenario rows. Each row: (criteria row id, age, weeks, findings, extra request fields,
# urgency, rating of the region's MRI w/o, recommendation (criteria shorthand), ratings of other
# listed/unlisted studies). Requests are built from the row's condition text.
# --------------------------------------------------------------------------------------------

LUMBAR_ROWS = [
    ("lumbar.ankylosed_spine_trauma", 62, 0.5, ["ankylosed_spine", "minor_trauma"], {},
     "emergent", UA, ["CT w/o", "MRI w/o", "XR"], {"CTM": UNA, "MRI w/wo": UNA}),
    ("lumbar.trauma_with_deficit", 30, 0, ["significant_trauma", "severe_motor_deficit"], {},
     "emergent", UA, ["CT w/o", "MRI w/o"], {"CTM": MBA, "XR": UNA}),
    ("lumbar.major_trauma", 30, 0, ["significant_trauma"], {},
     "emergent", UNA, ["CT w/o"], {"XR": MBA, "CT w/o": UA}),
    ("lumbar.cauda_equina", 40, 1, ["saddle_anesthesia"], {},
     "emergent", UA, ["MRI w/o", "MRI w/wo"], {"CTM": MBA, "CT w/o": MBA, "XR": UNA}),
    ("lumbar.suspected_mscc", 66, 1, ["history_of_cancer", "neurologic_deficit"], {},
     "emergent", UA, ["MRI w/wo", "MRI w/o", "thoracic MRI w/wo", "cervical MRI w/wo"],
     {"CT w/o": MBA, "CTM": MBA, "XR": UNA}),
    ("lumbar.infection_with_deficit", 40, 1, ["immunosuppression", "radiculopathy"], {},
     "emergent", UA, ["MRI w/wo", "MRI w/o"], {"CT w/": MBA, "CTM": MBA, "CT w/o": UNA}),
    ("lumbar.cord_compression", 55, 2, ["myelopathy_signs"], {},
     "emergent", MBA, ["cervical MRI w/o", "thoracic MRI w/o"],
     {"MRI w/wo": UNA, "CTM": UNA}),
    ("lumbar.febrile_infection", 40, 1, ["fever", "iv_drug_use"], {},
     "emergent", UA, ["MRI w/wo", "MRI w/o"], {"CT w/": MBA, "CT w/o": MBA, "XR": MBA,
                                               "CTM": UNA}),
    ("lumbar.severe_or_progressive_deficit", 40, 1, ["progressive_neurologic_deficit"], {},
     "emergent", UA, ["MRI w/o", "MRI w/wo"], {"CT w/o": MBA, "CTM": MBA, "XR": UNA}),
    ("lumbar.suspected_infection", 40, 3, ["recent_bacterial_infection"], {},
     "urgent", UA, ["MRI w/wo", "MRI w/o"], {"CT w/o": MBA, "CT w/": MBA, "XR": MBA,
                                             "CTM": UNA}),
    ("lumbar.suspected_malignancy", 45, 2, ["history_of_cancer"], {},
     "urgent", UA, ["MRI w/wo", "MRI w/o"], {"CT w/o": MBA, "CT w/": MBA, "XR": MBA,
                                             "CTM": UNA}),
    ("lumbar.fracture_with_deficit", 72, 2, ["neurologic_deficit"], {},
     "urgent", UA, ["MRI w/o", "CT w/o", "XR"], {"CTM": MBA, "MRI w/wo": UNA}),
    ("lumbar.prior_surgery", 45, 3, ["prior_spine_surgery"], {},
     "routine", UA, ["MRI w/wo", "MRI w/o", "XR"], {"CT w/o": MBA, "CTM": MBA, "CT w/": UNA}),
    ("lumbar.fracture_risk", 60, 2, ["long_term_corticosteroids"], {},
     "routine", UA, ["XR", "MRI w/o", "CT w/o"], {"MRI w/wo": MBA, "CTM": MBA, "CT w/": UNA}),
    ("lumbar.weak_malignancy_risk", 45, 2, ["unexplained_weight_loss"], {},
     "routine", MBA, ["XR", "MRI w/o", "MRI w/wo"], {"CT w/o": UNA}),
    ("lumbar.surgical_candidate", 45, 6, ["radiculopathy"], {"care": 6, "candidate": True},
     "routine", UA, ["MRI w/o"], {"MRI w/wo": MBA, "CT w/o": MBA, "CTM": MBA, "XR": MBA,
                                  "CT w/": UNA}),
    ("lumbar.uncomplicated", 45, 2, [], {},
     "none", UNA, [], {"XR": UNA, "CT w/o": UNA, "MRI w/wo": UNA}),
]

THORACIC_ROWS = [
    ("thoracic.ankylosed_spine_trauma", 62, 0.5, ["ankylosed_spine", "minor_trauma"], {},
     "emergent", UA, ["CT w/o", "MRI w/o", "XR"], {"CTM": UNA}),
    ("thoracic.trauma_with_deficit", 30, 0, ["significant_trauma", "urinary_retention"], {},
     "emergent", UA, ["CT w/o", "MRI w/o"], {"CTM": MBA, "XR": UNA}),
    ("thoracic.major_trauma", 30, 0, ["significant_trauma"], {},
     "emergent", UNA, ["CT w/o"], {"XR": MBA}),
    ("thoracic.cauda_equina", 40, 1, ["bowel_or_bladder_incontinence"], {},
     "emergent", UA, ["MRI w/o", "lumbar MRI w/o"], {"MRI w/wo": MBA, "CTM": MBA,
                                                     "CT w/o": UNA}),
    ("thoracic.suspected_mscc", 45, 1, ["history_of_cancer", "radiculopathy"], {},
     "emergent", UA, ["MRI w/wo", "MRI w/o", "cervical MRI w/wo", "lumbar MRI w/wo"],
     {"CT w/o": MBA, "CTM": MBA, "XR": UNA}),
    ("thoracic.infection_with_deficit", 40, 1, ["elevated_inflammatory_markers",
                                                "radiculopathy"], {},
     "emergent", UA, ["MRI w/wo", "MRI w/o"], {"CT w/": MBA, "CTM": MBA, "CT w/o": UNA}),
    ("thoracic.cord_compression", 45, 2, ["neurologic_deficit"], {},
     "emergent", UA, ["MRI w/o", "MRI w/wo"], {"CTM": MBA, "CT w/o": MBA, "CT w/": MBA,
                                              "XR": UNA}),
    ("thoracic.febrile_infection", 40, 1, ["fever", "immunosuppression"], {},
     "emergent", UA, ["MRI w/wo", "MRI w/o"], {"CT w/": MBA, "CT w/o": MBA, "XR": MBA}),
    ("thoracic.severe_or_progressive_deficit", 40, 1, ["severe_motor_deficit"], {},
     "emergent", UA, ["MRI w/o", "MRI w/wo"], {"CT w/o": MBA, "CTM": MBA, "XR": UNA}),
    ("thoracic.suspected_infection", 40, 3, ["iv_drug_use"], {},
     "urgent", UA, ["MRI w/wo", "MRI w/o"], {"CT w/o": MBA, "CT w/": MBA, "XR": MBA}),
    ("thoracic.suspected_malignancy", 52, 2, ["unexplained_weight_loss"], {},
     "urgent", UA, ["MRI w/wo", "MRI w/o"], {"CT w/o": MBA, "CT w/": MBA, "XR": MBA}),
    # thoracic.fracture_with_deficit: see test_thoracic_fracture_with_deficit_row below.
    ("thoracic.prior_surgery", 45, 3, ["prior_spine_surgery"], {},
     "routine", UA, ["MRI w/wo", "MRI w/o", "XR"], {"CT w/o": MBA, "CTM": MBA}),
    ("thoracic.fracture_risk", 45, 2, ["osteoporosis"], {},
     "routine", UA, ["XR", "MRI w/o", "CT w/o"], {"MRI w/wo": MBA, "CTM": MBA}),
    ("thoracic.weak_malignancy_risk", 45, 2, ["night_pain"], {},
     "routine", MBA, ["XR", "MRI w/o", "MRI w/wo"], {"CT w/o": UNA}),
    ("thoracic.surgical_candidate", 45, 10, [], {"care": 8, "candidate": True},
     "routine", UA, ["MRI w/o"], {"MRI w/wo": MBA, "CT w/o": MBA, "CTM": MBA, "XR": MBA}),
    ("thoracic.uncomplicated", 45, 2, [], {},
     "none", UNA, [], {"XR": UNA}),
]

CERVICAL_ROWS = [
    # distracting_injury alone is an injury in the cervical region (trauma's extension).
    ("cervical.ankylosed_spine_trauma", 60, 0, ["ankylosed_spine", "distracting_injury"], {},
     "emergent", UA, ["CT w/o", "MRI w/o", "XR"], {"CTM": UNA}),
    ("cervical.trauma_with_deficit", 40, 0, ["minor_trauma", "neurologic_deficit"], {},
     "emergent", UA, ["CT w/o", "MRI w/o"], {"CTM": MBA, "XR": UNA}),
    ("cervical.trauma_imaging_indicated", 40, 0, ["minor_trauma",
                                                  "midline_cervical_tenderness"], {},
     "emergent", UNA, ["CT w/o"], {"XR": MBA}),
    ("cervical.suspected_mscc", 55, 2, ["unexplained_weight_loss", "radiculopathy"], {},
     "emergent", UA, ["MRI w/wo", "MRI w/o", "thoracic MRI w/wo", "lumbar MRI w/wo"],
     {"CT w/o": MBA, "CTM": MBA, "XR": UNA}),
    ("cervical.infection_with_deficit", 40, 1, ["elevated_inflammatory_markers",
                                                "myelopathy_signs"], {},
     "emergent", UA, ["MRI w/wo", "MRI w/o"], {"CT w/": MBA, "CTM": MBA, "XR": UNA}),
    ("cervical.cord_compression", 60, 20, ["myelopathy_signs"], {},
     "urgent", UA, ["MRI w/o", "MRI w/wo"], {"CTM": MBA, "CT w/o": MBA, "CT w/": MBA,
                                            "XR": UNA}),
    ("cervical.febrile_infection", 40, 1, ["fever", "recent_bacterial_infection"], {},
     "emergent", UA, ["MRI w/wo", "MRI w/o"], {"CT w/": MBA, "XR": MBA, "CT w/o": UNA}),
    ("cervical.severe_or_progressive_deficit", 40, 1, ["severe_motor_deficit"], {},
     "emergent", UA, ["MRI w/o", "MRI w/wo"], {"CTM": MBA, "CT w/o": MBA, "XR": UNA}),
    ("cervical.suspected_infection", 40, 2, ["iv_drug_use"], {},
     "urgent", UA, ["MRI w/wo", "MRI w/o"], {"CT w/": MBA, "XR": MBA, "CT w/o": UNA}),
    ("cervical.suspected_malignancy", 40, 2, ["history_of_cancer"], {},
     "urgent", UA, ["MRI w/wo", "MRI w/o"], {"XR": MBA, "CT w/o": MBA, "CT w/": UNA}),
    ("cervical.prior_surgery", 40, 3, ["prior_spine_surgery"], {},
     "routine", MBA, ["XR", "CT w/o"], {"MRI w/wo": MBA, "CTM": MBA, "CT w/": UNA}),
    ("cervical.fracture_risk", 40, 3, ["osteoporosis"], {},
     "routine", MBA, ["XR", "CT w/o"], {"MRI w/wo": UNA, "CTM": UNA}),
    ("cervical.degenerative_on_radiographs", 50, 13, ["degenerative_changes_on_radiographs"],
     {}, "routine", UA, ["MRI w/o"], {"CT w/o": MBA, "CTM": MBA, "XR": UNA}),
    ("cervical.radiculopathy", 40, 3, ["radiculopathy"], {},
     "routine", UA, ["MRI w/o"], {"XR": MBA, "CT w/o": MBA, "MRI w/wo": UNA}),
    ("cervical.trauma_low_risk", 40, 0, ["minor_trauma"], {},
     "none", UNA, [], {"XR": UNA, "CT w/o": UNA}),
    ("cervical.neck_pain", 40, 2, [], {},
     "routine", MBA, ["XR"], {"CT w/o": MBA, "MRI w/wo": UNA, "CTM": UNA}),
]

ALL_ROWS = LUMBAR_ROWS + THORACIC_ROWS + CERVICAL_ROWS


@pytest.mark.parametrize(
    "row, age, weeks, findings, extra, urgency, mri_rating, recommended, others",
    ALL_ROWS, ids=[r[0] for r in ALL_ROWS])
def test_scenario_row(run, rating_of, row, age, weeks, findings, extra, urgency, mri_rating,
                      recommended, others):
    region = row.split(".")[0]
    request = make(region, age, weeks, findings, **extra)
    result = run(request)
    assert result["scenario"]["id"] == row
    assert result["urgency"] == urgency
    assert result["appropriateness"] == mri_rating
    assert result["requested_procedure"]["code"] == f"mri_{region}_without_contrast"
    assert rec(result) == procs(region, recommended)
    assert result["safety"] == {"status": "clear", "alerts": []}
    for item, expected in others.items():
        assert rating_of(request, item) == expected, item
    # MRI with contrast only and CT without and with contrast are UNA in every scenario.
    assert rating_of(request, "MRI w/") == UNA
    assert rating_of(request, "CT w/wo") == UNA


def test_scenario_rows_cover_every_criteria_row(ruleset):
    """Every scenario of the rule files is a row tested above (thoracic.fracture_with_deficit
    has its own test), and no row is missing from the rule files."""
    tested = {r[0] for r in ALL_ROWS} | {"thoracic.fracture_with_deficit"}
    encoded = {s.id for region in ruleset.regions.values() for s in region.scenarios}
    assert encoded == tested


def test_scenario_order_follows_the_criteria_tables(ruleset):
    """Rule 2: among equal urgency the row listed first governs, so rule order is clinical."""
    lumbar_order = [r[0] for r in LUMBAR_ROWS]
    thoracic_order = [r[0] for r in THORACIC_ROWS]
    thoracic_order.insert(thoracic_order.index("thoracic.prior_surgery"),
                          "thoracic.fracture_with_deficit")
    cervical_order = [r[0] for r in CERVICAL_ROWS]
    assert [s.id for s in ruleset.regions["lumbar"].scenarios] == lumbar_order
    assert [s.id for s in ruleset.regions["thoracic"].scenarios] == thoracic_order
    assert [s.id for s in ruleset.regions["cervical"].scenarios] == cervical_order


def test_thoracic_fracture_with_deficit_row(run, rating_of):
    """thoracic.fracture_with_deficit: as lumbar (fracture risk and a deficit, urgent).

    In the thoracic table `neurologic_deficit` also makes thoracic.cord_compression match
    (listed earlier, emergent or urgent), and the other deficits make
    severe_or_progressive_deficit (emergent) match, so this row matches but never governs.
    """
    request = make("thoracic", 72, 20, ["neurologic_deficit"])
    result = run(request)
    assert result["scenario"]["id"] == "thoracic.cord_compression"
    assert result["urgency"] == "urgent"
    assert "thoracic.fracture_with_deficit" in result["also_matched"]
    assert rec(result) == procs("thoracic", ["MRI w/o", "MRI w/wo"])
    result = run(make("thoracic", 72, 20, ["severe_motor_deficit"]))
    assert result["scenario"]["id"] == "thoracic.severe_or_progressive_deficit"
    assert result["also_matched"] == ["thoracic.fracture_with_deficit",
                                      "thoracic.fracture_risk"]


# --------------------------------------------------------------------------------------------
# Conditional urgencies
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("region", ["lumbar", "thoracic", "cervical"])
@pytest.mark.parametrize("weeks, extra, urgency", [
    (3.9, [], "emergent"),                                   # acute
    (4, [], "urgent"),                                       # subacute
    (30, [], "urgent"),                                      # chronic
    (30, ["progressive_neurologic_deficit"], "emergent"),    # progressive deficit
])
def test_cord_compression_conditional_urgency(run, region, weeks, extra, urgency):
    result = run(make(region, 45, weeks, ["myelopathy_signs", *extra]))
    assert result["scenario"]["id"] == f"{region}.cord_compression"
    assert result["urgency"] == urgency


def test_thoracic_cord_compression_neurologic_deficit_chronic_is_urgent(run):
    result = run(make("thoracic", 45, 8, ["neurologic_deficit"]))
    assert result["scenario"]["id"] == "thoracic.cord_compression"
    assert result["urgency"] == "urgent"


@pytest.mark.parametrize("sign", ["saddle_anesthesia", "urinary_retention",
                                  "bowel_or_bladder_incontinence"])
def test_cervical_cord_compression_cauda_equina_sign_is_emergent_even_when_chronic(run, sign):
    result = run(make("cervical", 45, 30, [sign]))
    assert result["scenario"]["id"] == "cervical.cord_compression"
    assert result["urgency"] == "emergent"
    assert rec(result) == procs("cervical", ["MRI w/o", "MRI w/wo"])


# --------------------------------------------------------------------------------------------
# Derived facts and their boundaries
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("sign", ["saddle_anesthesia", "urinary_retention",
                                  "bowel_or_bladder_incontinence"])
def test_fact_cauda_equina_sign_each_finding(run, region, sign):
    result = run(make(region, 45, 1, [sign]))
    expected = "cervical.cord_compression" if region == "cervical" else f"{region}.cauda_equina"
    assert result["scenario"]["id"] == expected
    assert result["urgency"] == "emergent"


@pytest.mark.parametrize("deficit", ["neurologic_deficit", "progressive_neurologic_deficit",
                                     "severe_motor_deficit"])
def test_fact_deficit_each_finding(run, deficit):
    # trauma with neurology needs a deficit; fracture with deficit needs a deficit
    result = run(make("lumbar", 40, 0, ["minor_trauma", deficit]))
    assert result["scenario"]["id"] == "lumbar.trauma_with_deficit"
    result = run(make("lumbar", 40, 0, ["osteoporosis", deficit]))
    assert "lumbar.fracture_with_deficit" in [result["scenario"]["id"], *result["also_matched"]]


@pytest.mark.parametrize("finding, severe", [
    ("neurologic_deficit", False),
    ("progressive_neurologic_deficit", True),
    ("severe_motor_deficit", True),
])
def test_fact_severe_deficit(run, finding, severe):
    result = run(make("lumbar", 45, 3, [finding]))
    if severe:
        assert result["scenario"]["id"] == "lumbar.severe_or_progressive_deficit"
        assert result["urgency"] == "emergent"
    else:
        # "a stable mild deficit alone does not make lumbar MRI appropriate"
        assert result["scenario"]["id"] == "lumbar.uncomplicated"
        assert result["appropriateness"] == UNA
        assert result["urgency"] == "none"


@pytest.mark.parametrize("finding", ["radiculopathy", "neurologic_deficit",
                                     "progressive_neurologic_deficit", "severe_motor_deficit",
                                     "myelopathy_signs", "saddle_anesthesia",
                                     "urinary_retention", "bowel_or_bladder_incontinence"])
def test_fact_neurological_finding_each_finding(run, finding):
    mscc = run(make("lumbar", 45, 1, ["history_of_cancer", finding]))
    assert "lumbar.suspected_mscc" in [mscc["scenario"]["id"], *mscc["also_matched"]]
    infection = run(make("lumbar", 45, 1, ["iv_drug_use", finding]))
    assert "lumbar.infection_with_deficit" in [infection["scenario"]["id"],
                                               *infection["also_matched"]]


@pytest.mark.parametrize("finding", ["unexplained_weight_loss", "night_pain",
                                     "degenerative_changes_on_radiographs", "osteoporosis"])
def test_fact_neurological_finding_excludes_other_findings(run, finding):
    result = run(make("lumbar", 45, 1, ["history_of_cancer", finding]))
    assert result["scenario"]["id"] == "lumbar.suspected_malignancy"
    assert "lumbar.suspected_mscc" not in result["also_matched"]


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("sign", ["fever", "iv_drug_use", "recent_bacterial_infection",
                                  "elevated_inflammatory_markers", "immunosuppression"])
def test_fact_infection_signs_each_finding(run, region, sign):
    result = run(make(region, 45, 3, [sign]))
    assert result["scenario"]["id"] == f"{region}.suspected_infection"
    assert result["urgency"] == "urgent"


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("other", ["iv_drug_use", "recent_bacterial_infection",
                                   "elevated_inflammatory_markers", "immunosuppression"])
def test_fact_febrile_infection_fever_with_another_sign(run, region, other):
    result = run(make(region, 45, 3, ["fever", other]))
    assert result["scenario"]["id"] == f"{region}.febrile_infection"
    assert result["urgency"] == "emergent"
    assert f"{region}.suspected_infection" in result["also_matched"]


def test_fact_febrile_infection_needs_fever(run):
    result = run(make("lumbar", 45, 3, ["iv_drug_use", "immunosuppression"]))
    assert result["scenario"]["id"] == "lumbar.suspected_infection"
    assert result["urgency"] == "urgent"


@pytest.mark.parametrize("age, weeks, findings, suspected", [
    (30, 1, ["history_of_cancer"], True),
    (49, 3.9, ["unexplained_weight_loss"], False),       # no clause met
    (50, 3.9, ["unexplained_weight_loss"], True),        # age >= 50
    (49, 4, ["unexplained_weight_loss"], True),          # duration >= 4 weeks
    (30, 1, ["unexplained_weight_loss", "night_pain"], True),  # night pain
    (80, 30, ["night_pain"], False),                     # night pain alone is weak risk
])
def test_fact_malignancy_suspected_clauses(run, age, weeks, findings, suspected):
    result = run(make("cervical", age, weeks, findings))
    if suspected:
        assert result["scenario"]["id"] == "cervical.suspected_malignancy"
        assert result["urgency"] == "urgent"
    else:
        assert result["scenario"]["id"] == "cervical.neck_pain"
    lumbar = run(make("lumbar", min(age, 69), weeks, findings))
    expected = "lumbar.suspected_malignancy" if suspected else "lumbar.weak_malignancy_risk"
    assert lumbar["scenario"]["id"] == expected


@pytest.mark.parametrize("findings, weak", [
    (["unexplained_weight_loss"], True),
    (["night_pain"], True),
    (["night_pain", "history_of_cancer"], False),
    (["unexplained_weight_loss", "night_pain"], False),
])
def test_fact_weak_malignancy_risk_only_when_malignancy_not_suspected(run, findings, weak):
    result = run(make("lumbar", 40, 2, findings))
    assert (result["scenario"]["id"] == "lumbar.weak_malignancy_risk") is weak
    assert ("lumbar.weak_malignancy_risk" in result["also_matched"]) is False


@pytest.mark.parametrize("finding", ["midline_cervical_tenderness", "altered_mental_status",
                                     "distracting_injury"])
def test_fact_trauma_cervical_extension(run, finding):
    result = run(make("cervical", 40, 0, [finding]))
    assert result["scenario"]["id"] == "cervical.trauma_imaging_indicated"
    assert rec(result) == [proc("cervical", "CT w/o")]
    with_deficit = run(make("cervical", 40, 0, [finding, "neurologic_deficit"]))
    assert with_deficit["scenario"]["id"] == "cervical.trauma_with_deficit"
    # outside the cervical region these findings are not an injury
    for region in ("lumbar", "thoracic"):
        other = run(make(region, 40, 0, ["ankylosed_spine", finding]))
        assert other["scenario"]["id"] == f"{region}.uncomplicated"


@pytest.mark.parametrize("region", ["lumbar", "thoracic"])
def test_fact_trauma_with_neurology_excludes_radiculopathy(run, region):
    # radiculopathy is a neurological finding, but not part of "trauma with neurology"
    result = run(make(region, 40, 0, ["minor_trauma", "radiculopathy"]))
    assert result["scenario"]["id"] == f"{region}.uncomplicated"


@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("neuro", ["myelopathy_signs", "urinary_retention"])
def test_fact_trauma_with_neurology_myelopathy_or_cauda_equina(run, region, neuro):
    result = run(make(region, 40, 0, ["minor_trauma", neuro]))
    assert result["scenario"]["id"] == f"{region}.trauma_with_deficit"
    assert result["urgency"] == "emergent"


@pytest.mark.parametrize("region", ["lumbar", "thoracic"])
@pytest.mark.parametrize("age, findings, risk", [
    (45, ["osteoporosis"], True),
    (45, ["long_term_corticosteroids"], True),
    (69, [], False),
    (70, [], True),
    (49, ["minor_trauma"], False),
    (50, ["minor_trauma"], True),
])
def test_fact_fracture_risk_boundaries(run, region, age, findings, risk):
    result = run(make(region, age, 1, findings))
    expected = f"{region}.fracture_risk" if risk else f"{region}.uncomplicated"
    assert result["scenario"]["id"] == expected
    assert result["appropriateness"] == (UA if risk else UNA)


@pytest.mark.parametrize("age, findings, expected", [
    (70, [], "cervical.neck_pain"),                       # no age clause in the cervical row
    (55, ["minor_trauma"], "cervical.trauma_low_risk"),   # no minor-trauma clause either
    (55, ["long_term_corticosteroids"], "cervical.fracture_risk"),
    (55, ["osteoporosis", "minor_trauma"], "cervical.trauma_low_risk"),  # "without trauma"
    (55, ["osteoporosis", "midline_cervical_tenderness"],
     "cervical.trauma_imaging_indicated"),
])
def test_fact_fracture_risk_is_lumbar_thoracic_only(run, age, findings, expected):
    result = run(make("cervical", age, 1, findings))
    assert result["scenario"]["id"] == expected


@pytest.mark.parametrize("age, expected, urgency", [
    (64, "cervical.trauma_low_risk", "none"),
    (65, "cervical.trauma_imaging_indicated", "emergent"),
])
def test_cervical_trauma_age_65_boundary(run, age, expected, urgency):
    result = run(make("cervical", age, 0, ["minor_trauma"]))
    assert result["scenario"]["id"] == expected
    assert result["urgency"] == urgency
    # age alone, without an injury, is not a trauma criterion
    assert run(make("cervical", age, 0))["scenario"]["id"] == "cervical.neck_pain"


@pytest.mark.parametrize("findings, expected", [
    (["minor_trauma", "radiculopathy"], "cervical.trauma_imaging_indicated"),
    (["minor_trauma", "significant_trauma"], "cervical.trauma_imaging_indicated"),
    (["significant_trauma"], "cervical.trauma_imaging_indicated"),
    (["minor_trauma", "altered_mental_status"], "cervical.trauma_imaging_indicated"),
    (["minor_trauma", "prior_spine_surgery"], "cervical.prior_surgery"),
])
def test_cervical_trauma_low_risk_only_without_other_trauma_or_neurology(run, findings,
                                                                         expected):
    result = run(make("cervical", 40, 0, findings))
    assert result["scenario"]["id"] == expected
    if expected == "cervical.prior_surgery":
        assert result["also_matched"] == ["cervical.trauma_low_risk"]


@pytest.mark.parametrize("region", ["lumbar", "thoracic"])
@pytest.mark.parametrize("weeks, care, candidate, governs", [
    (6, 6, True, True),
    (5.9, 6, True, False),
    (6, 5.9, True, False),
    (52, 52, False, False),   # not a candidate: uncomplicated also after 6 weeks
])
def test_surgical_candidate_boundaries(run, region, weeks, care, candidate, governs):
    result = run(make(region, 45, weeks, ["radiculopathy"], care=care, candidate=candidate))
    expected = f"{region}.surgical_candidate" if governs else f"{region}.uncomplicated"
    assert result["scenario"]["id"] == expected
    assert result["appropriateness"] == (UA if governs else UNA)
    assert result["urgency"] == ("routine" if governs else "none")


@pytest.mark.parametrize("weeks, degenerative_governs, ct_rating", [
    (12, False, MBA),
    (12.1, True, UNA),
])
def test_cervical_twelve_week_boundaries(run, rating_of, weeks, degenerative_governs,
                                         ct_rating):
    """degenerative_on_radiographs needs duration > 12; neck_pain's CT w/o needs <= 12."""
    result = run(make("cervical", 50, weeks, ["degenerative_changes_on_radiographs"]))
    expected = ("cervical.degenerative_on_radiographs" if degenerative_governs
                else "cervical.neck_pain")
    assert result["scenario"]["id"] == expected
    neck = make("cervical", 50, weeks)
    assert run(neck)["scenario"]["id"] == "cervical.neck_pain"
    assert rating_of(neck, "CT w/o") == ct_rating
    assert rating_of(neck, "MRI w/o") == MBA


def test_cervical_radiculopathy_row_also_for_neurologic_deficit(run):
    result = run(make("cervical", 45, 3, ["neurologic_deficit"]))
    assert result["scenario"]["id"] == "cervical.radiculopathy"
    assert result["appropriateness"] == UA


def test_lumbar_radiculopathy_alone_is_uncomplicated(run):
    result = run(make("lumbar", 45, 10, ["radiculopathy"]))
    assert result["scenario"]["id"] == "lumbar.uncomplicated"
    assert result["appropriateness"] == UNA
    assert rec(result) == []


# --------------------------------------------------------------------------------------------
# Combination rules 1-7
# --------------------------------------------------------------------------------------------

def test_rule1_default_matches_only_when_nothing_else(run):
    result = run(make("lumbar", 45, 2, ["night_pain"]))
    assert result["scenario"]["id"] == "lumbar.weak_malignancy_risk"
    assert "lumbar.uncomplicated" not in result["also_matched"]
    neck = run(make("cervical", 45, 2, ["radiculopathy"]))
    assert "cervical.neck_pain" not in [neck["scenario"]["id"], *neck["also_matched"]]


def test_rule2_rule_order_among_equal_urgency_trauma_first(run):
    result = run(make("lumbar", 40, 0, ["significant_trauma", "urinary_retention"]))
    assert result["scenario"]["id"] == "lumbar.trauma_with_deficit"
    assert result["also_matched"] == ["lumbar.major_trauma", "lumbar.cauda_equina"]
    assert rec(result) == procs("lumbar", ["CT w/o", "MRI w/o"])


@pytest.mark.parametrize("region", ["cervical", "thoracic"])
def test_rule2_higher_urgency_beats_rule_order(run, region):
    # chronic myelopathy (urgent cord compression, listed earlier) with a severe motor deficit
    # (emergent, listed later): the emergent row governs
    result = run(make(region, 45, 10, ["myelopathy_signs", "severe_motor_deficit"]))
    assert result["scenario"]["id"] == f"{region}.severe_or_progressive_deficit"
    assert result["urgency"] == "emergent"
    assert f"{region}.cord_compression" in result["also_matched"]


def test_rule2_also_matched_in_rule_order(run):
    result = run(make("lumbar", 72, 8, ["prior_spine_surgery", "night_pain", "radiculopathy"],
                      care=8, candidate=True))
    assert result["scenario"]["id"] == "lumbar.prior_surgery"
    assert result["also_matched"] == ["lumbar.fracture_risk", "lumbar.weak_malignancy_risk",
                                      "lumbar.surgical_candidate"]


def test_rule3_requested_study_of_another_listed_or_unlisted_kind(run, rating_of):
    request = make("lumbar", 40, 1, ["urinary_retention"])
    assert rating_of(request, "MRI w/wo") == UA
    assert rating_of(request, "CT w/o") == MBA
    assert rating_of(request, "CT w/") == UNA
    # the rating is independent of which study was requested: the recommendation is the same
    assert rec(run(dict(request, requested_procedure="xray_lumbar"))) == rec(run(request))


def test_rule4_other_region_studies_carry_their_rating(run):
    result = run(make("lumbar", 45, 2, ["myelopathy_signs"]))
    assert [(p["code"], p["rating"]) for p in result["recommended_procedures"]] == [
        ("mri_cervical_without_contrast", UA), ("mri_thoracic_without_contrast", UA)]
    assert result["recommended_procedures"][0]["cpt"] == ["72141"]


def test_rule4_mba_list_when_ua_empty(run):
    result = run(make("thoracic", 45, 2, ["unexplained_weight_loss"]))
    assert [(p["code"], p["rating"]) for p in result["recommended_procedures"]] == [
        ("xray_thoracic", MBA), ("mri_thoracic_without_contrast", MBA),
        ("mri_thoracic_without_and_with_contrast", MBA)]


def test_rule6_would_change_if_lists_red_flags_for_uncomplicated(run):
    result = run(make("lumbar", 45, 2, ["radiculopathy"]))
    changes = {c["finding"]: c for c in result["would_change_if"]}
    assert "radiculopathy" not in changes                      # only absent findings
    assert changes["urinary_retention"]["scenario"] == "lumbar.cauda_equina"
    assert changes["urinary_retention"]["urgency"] == "emergent"
    assert changes["urinary_retention"]["appropriateness"] == UA
    assert changes["history_of_cancer"]["scenario"] == "lumbar.suspected_mscc"
    assert changes["fever"]["scenario"] == "lumbar.infection_with_deficit"
    # a finding that cannot change this answer is not listed
    assert "degenerative_changes_on_radiographs" not in changes
    assert "midline_cervical_tenderness" not in changes


@pytest.mark.parametrize("age, covered", [(17, False), (18, True)])
@pytest.mark.parametrize("findings, scenario, urgency, recommended", [
    (["urinary_retention"], "lumbar.cauda_equina", "emergent", ["MRI w/o", "MRI w/wo"]),
    (["iv_drug_use"], "lumbar.suspected_infection", "urgent", ["MRI w/wo", "MRI w/o"]),
])
def test_rule7_age_boundary_17_vs_18(run, age, covered, findings, scenario, urgency,
                                     recommended):
    result = run(make("lumbar", age, 1, findings))
    assert result["scenario"]["id"] == scenario
    assert result["urgency"] == urgency
    if covered:
        assert result["appropriateness"] == UA
        assert rec(result) == procs("lumbar", recommended)
        if urgency == "urgent":
            # adding fever would make it emergent (febrile infection)
            assert "fever" in [c["finding"] for c in result["would_change_if"]]
    else:
        assert result["appropriateness"] == NOT_COVERED
        assert result["requested_procedure"]["rating"] == NOT_COVERED
        assert rec(result) == []
        assert result["would_change_if"] == []
        assert any("specialist" in r for r in result["reasons"])


@pytest.mark.parametrize("region, findings, weeks, scenario, urgency", [
    ("lumbar", ["iv_drug_use"], 2, "lumbar.suspected_infection", "urgent"),
    ("cervical", ["history_of_cancer"], 2, "cervical.suspected_malignancy", "urgent"),
    ("thoracic", ["significant_trauma"], 0, "thoracic.major_trauma", "emergent"),
    ("lumbar", ["prior_spine_surgery"], 2, "lumbar.prior_surgery", "none"),
    ("cervical", [], 2, "cervical.neck_pain", "none"),
    ("lumbar", [], 2, "lumbar.uncomplicated", "none"),
])
def test_rule7_under_18_urgency_only_for_red_flags(run, region, findings, weeks, scenario,
                                                    urgency):
    result = run(make(region, 12, weeks, findings))
    assert result["scenario"]["id"] == scenario
    assert result["urgency"] == urgency
    assert result["appropriateness"] == NOT_COVERED
    assert rec(result) == []
    assert result["would_change_if"] == []


def test_rule7_under_18_safety_alerts_apply(run):
    result = run(make("lumbar", 16, 1, ["urinary_retention"],
                      contra=["mr_unsafe_implant", "pregnancy"]))
    assert result["safety"]["status"] == "contraindicated"
    assert alert_codes(result) == ["mr_unsafe_implant", "pregnancy"]
    assert rec(result) == []                       # empty stays empty
    assert result["urgency"] == "emergent"


# --------------------------------------------------------------------------------------------
# Safety modifiers
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("contra", ["mr_unsafe_implant", "orbital_metal_foreign_body"])
def test_safety_mri_contraindicated_non_mri_first(run, contra):
    result = run(make("lumbar", 40, 1, ["saddle_anesthesia"], contra=[contra]))
    # cauda_equina: UA MRI w/o, MRI w/wo; MBA CTM, CT w/o
    assert rec(result) == procs("lumbar", ["CTM", "CT w/o", "MRI w/o", "MRI w/wo"])
    assert result["safety"]["status"] == "contraindicated"
    assert alert_codes(result) == [contra]
    assert result["appropriateness"] == UA                     # rating never changes
    assert [p["rating"] for p in result["recommended_procedures"]] == [MBA, MBA, UA, UA]


@pytest.mark.parametrize("row, age, weeks, findings, expected", [
    # UA non-MRI first, then MBA non-MRI, without duplicates, then the recommendation's MRIs
    ("lumbar.suspected_infection", 40, 3, ["fever"],
     ["CT w/o", "CT w/", "XR", "MRI w/wo", "MRI w/o"]),
    ("lumbar.suspected_mscc", 60, 1, ["history_of_cancer", "radiculopathy"],
     ["CT w/o", "CTM", "MRI w/wo", "MRI w/o", "thoracic MRI w/wo", "cervical MRI w/wo"]),
    ("lumbar.major_trauma", 30, 0, ["significant_trauma"], ["CT w/o", "XR"]),
    ("lumbar.fracture_risk", 72, 1, [], ["XR", "CT w/o", "CTM", "MRI w/o"]),
    ("lumbar.weak_malignancy_risk", 40, 1, ["night_pain"], ["XR", "MRI w/o", "MRI w/wo"]),
    ("lumbar.cord_compression", 40, 1, ["myelopathy_signs"],
     ["cervical CTM", "thoracic CTM", "cervical MRI w/o", "thoracic MRI w/o"]),
    ("thoracic.cauda_equina", 40, 1, ["urinary_retention"],
     ["CTM", "MRI w/o", "lumbar MRI w/o"]),
    ("cervical.neck_pain", 40, 8, [], ["XR", "CT w/o"]),
    ("cervical.neck_pain", 40, 13, [], ["XR"]),
    ("cervical.radiculopathy", 40, 3, ["radiculopathy"], ["XR", "CT w/o", "MRI w/o"]),
    ("cervical.ankylosed_spine_trauma", 60, 0, ["ankylosed_spine", "significant_trauma"],
     ["CT w/o", "XR", "MRI w/o"]),
])
def test_safety_mri_contraindicated_reordering_per_row(run, row, age, weeks, findings,
                                                      expected):
    region = row.split(".")[0]
    result = run(make(region, age, weeks, findings, contra=["orbital_metal_foreign_body"]))
    assert result["scenario"]["id"] == row
    assert rec(result) == procs(region, expected)


@pytest.mark.parametrize("region, findings", [
    ("lumbar", []), ("thoracic", []), ("cervical", ["minor_trauma"])])
def test_safety_mri_contraindicated_empty_stays_empty(run, region, findings):
    result = run(make(region, 40, 1, findings, contra=["mr_unsafe_implant"]))
    assert rec(result) == []
    assert result["urgency"] == "none"
    assert result["safety"]["status"] == "contraindicated"
    assert alert_codes(result) == ["mr_unsafe_implant"]


def test_safety_both_mri_contraindications_alert_each(run):
    result = run(make("lumbar", 40, 1, ["saddle_anesthesia"],
                      contra=["orbital_metal_foreign_body", "mr_unsafe_implant"]))
    assert sorted(alert_codes(result)) == ["mr_unsafe_implant", "orbital_metal_foreign_body"]
    assert rec(result) == procs("lumbar", ["CTM", "CT w/o", "MRI w/o", "MRI w/wo"])


@pytest.mark.parametrize("contra, words", [
    ("non_conditional_cardiac_device", ["1.5 t", "protocol", "non-mri"]),
    ("mr_conditional_implant", ["labelled conditions"]),
    ("severe_claustrophobia", ["sedation", "open scanner"]),
])
def test_safety_caution_rows_without_reordering(run, contra, words):
    result = run(make("lumbar", 40, 1, ["saddle_anesthesia"], contra=[contra]))
    assert rec(result) == procs("lumbar", ["MRI w/o", "MRI w/wo"])
    assert result["safety"]["status"] == "caution"
    assert alert_codes(result) == [contra]
    message = result["safety"]["alerts"][0]["message"].lower()
    for word in words:
        assert word in message


@pytest.mark.parametrize("contra", ["pregnancy", "prior_gadolinium_reaction"])
@pytest.mark.parametrize("region, age, weeks, findings, expected", [
    ("lumbar", 40, 3, ["fever"], ["MRI w/o", "MRI w/wo"]),
    ("lumbar", 60, 1, ["history_of_cancer", "radiculopathy"],
     ["MRI w/o", "MRI w/wo", "thoracic MRI w/wo", "cervical MRI w/wo"]),
    ("thoracic", 60, 1, ["history_of_cancer", "radiculopathy"],
     ["MRI w/o", "MRI w/wo", "cervical MRI w/wo", "lumbar MRI w/wo"]),
    ("cervical", 40, 3, ["history_of_cancer"], ["MRI w/o", "MRI w/wo"]),
    ("lumbar", 40, 3, ["prior_spine_surgery"], ["MRI w/o", "MRI w/wo", "XR"]),
    # already first: unchanged
    ("lumbar", 40, 1, ["saddle_anesthesia"], ["MRI w/o", "MRI w/wo"]),
    # no MRI w/o of the region in the recommendation: unchanged
    ("lumbar", 40, 1, ["myelopathy_signs"], ["cervical MRI w/o", "thoracic MRI w/o"]),
    # MRI w/o is only MBA here, and already before MRI w/wo: unchanged
    ("lumbar", 40, 1, ["night_pain"], ["XR", "MRI w/o", "MRI w/wo"]),
])
def test_safety_gadolinium_moves_mri_without_contrast(run, contra, region, age, weeks,
                                                      findings, expected):
    result = run(make(region, age, weeks, findings, contra=[contra]))
    assert rec(result) == procs(region, expected)
    assert result["safety"]["status"] == "caution"
    assert alert_codes(result) == [contra]


@pytest.mark.parametrize("findings, weeks, ionising", [
    (["fever"], 3, False),                  # MRIs only
    (["significant_trauma"], 0, True),      # CT w/o
    ([], 2, None),                          # nothing recommended
    (["osteoporosis"], 2, True),            # XR first
])
def test_safety_pregnancy_ionising_radiation_alert(run, findings, weeks, ionising):
    result = run(make("lumbar", 30, weeks, findings, contra=["pregnancy"]))
    message = result["safety"]["alerts"][0]["message"].lower()
    assert "gadolinium" in message
    assert ("ionising" in message or "ionizing" in message) is bool(ionising)


def test_safety_prior_gadolinium_reaction_mentions_premedication(run):
    result = run(make("thoracic", 40, 3, ["history_of_cancer"],
                      contra=["prior_gadolinium_reaction"]))
    assert rec(result) == procs("thoracic", ["MRI w/o", "MRI w/wo"])
    assert "premedicat" in result["safety"]["alerts"][0]["message"].lower()


def test_safety_contraindicated_then_pregnancy(run):
    result = run(make("lumbar", 30, 3, ["fever"],
                      contra=["pregnancy", "mr_unsafe_implant"]))
    assert rec(result) == procs("lumbar", ["CT w/o", "CT w/", "XR", "MRI w/o", "MRI w/wo"])
    assert result["safety"]["status"] == "contraindicated"
    assert alert_codes(result) == ["mr_unsafe_implant", "pregnancy"]
    assert "ionis" in result["safety"]["alerts"][1]["message"].lower()


@pytest.mark.parametrize("egfr, alert", [(29.9, True), (30, False), (5, True), (90, False)])
def test_safety_renal_egfr_boundary(run, egfr, alert):
    # cauda_equina recommends MRI w/wo (contrast)
    result = run(make("lumbar", 60, 1, ["saddle_anesthesia"], egfr=egfr))
    assert alert_codes(result) == (["renal_impairment"] if alert else [])
    assert result["safety"]["status"] == ("caution" if alert else "clear")
    assert rec(result) == procs("lumbar", ["MRI w/o", "MRI w/wo"])     # no re-ordering
    if alert:
        message = result["safety"]["alerts"][0]["message"].lower()
        assert "group ii" in message and "hydrat" in message


@pytest.mark.parametrize("contra", ["dialysis", "acute_kidney_injury"])
def test_safety_renal_dialysis_or_aki(run, contra):
    result = run(make("cervical", 60, 2, ["iv_drug_use"], contra=[contra]))
    assert alert_codes(result) == ["renal_impairment"]
    assert result["safety"]["status"] == "caution"
    assert rec(result) == procs("cervical", ["MRI w/wo", "MRI w/o"])


@pytest.mark.parametrize("region, findings, weeks, requested, alert", [
    ("lumbar", ["significant_trauma"], 0, None, False),       # CT w/o only
    ("lumbar", ["osteoporosis"], 2, None, False),             # XR, MRI w/o, CT w/o
    ("cervical", [], 2, None, False),                         # XR
    ("lumbar", [], 2, None, False),                           # nothing recommended
    ("lumbar", [], 2, "CT w/", True),                         # the requested study
    ("lumbar", [], 2, "CTM", True),                           # intrathecal contrast
    ("lumbar", [], 2, "MRI w/", True),
    ("lumbar", [], 2, "CT w/wo", True),
    ("lumbar", ["night_pain"], 2, None, True),                # MBA MRI w/wo recommended
])
def test_safety_renal_only_when_contrast_requested_or_recommended(run, region, findings, weeks,
                                                                  requested, alert):
    result = run(make(region, 60, weeks, findings, egfr=12, requested=requested))
    assert alert_codes(result) == (["renal_impairment"] if alert else [])
    assert result["safety"]["status"] == ("caution" if alert else "clear")


def test_safety_renal_after_contraindicated_reordering_adds_ctm(run):
    # fracture_risk recommends no contrast; the MRI contraindication brings CTM in
    result = run(make("lumbar", 72, 1, [], contra=["mr_unsafe_implant"], egfr=20))
    assert rec(result) == procs("lumbar", ["XR", "CT w/o", "CTM", "MRI w/o"])
    assert alert_codes(result) == ["mr_unsafe_implant", "renal_impairment"]
    assert result["safety"]["status"] == "contraindicated"


def test_safety_rows_apply_in_criteria_order(run):
    contra = ["acute_kidney_injury", "prior_gadolinium_reaction", "pregnancy",
              "severe_claustrophobia", "mr_conditional_implant",
              "non_conditional_cardiac_device", "orbital_metal_foreign_body"]
    result = run(make("lumbar", 40, 3, ["fever"], contra=contra))
    assert alert_codes(result) == ["orbital_metal_foreign_body",
                                   "non_conditional_cardiac_device", "mr_conditional_implant",
                                   "severe_claustrophobia", "pregnancy",
                                   "prior_gadolinium_reaction", "renal_impairment"]
    assert result["safety"]["status"] == "contraindicated"
    assert result["appropriateness"] == UA
    assert result["urgency"] == "urgent"


# --------------------------------------------------------------------------------------------
# Safety branches the published tables cannot reach: a draft copy of the rules whose lumbar
# weak-malignancy row names only MRIs, MRI w/wo before MRI w/o (so MRI w/o is MBA, not UA).
# --------------------------------------------------------------------------------------------

@pytest.fixture
def mri_only_draft(tmp_path: Path):
    """(ruleset, vocabulary) of a draft version whose lumbar.weak_malignancy_risk MBA list is
    [MRI w/wo, MRI w/o]."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    source = rules / "spine-imaging" / "2026.1.0"
    draft = rules / "spine-imaging" / "9999.0.0"
    shutil.copytree(source, draft)
    meta = yaml.safe_load((draft / "ruleset.yaml").read_text())
    meta["version"] = "9999.0.0"
    meta["status"] = "draft"
    (draft / "ruleset.yaml").write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
    lumbar = yaml.safe_load((draft / "lumbar.yaml").read_text())
    for scenario in lumbar["scenarios"]:
        if scenario["id"] == "lumbar.weak_malignancy_risk":
            scenario["may_be_appropriate"] = ["mri_lumbar_without_and_with_contrast",
                                              "mri_lumbar_without_contrast"]
    (draft / "lumbar.yaml").write_text(yaml.safe_dump(lumbar, sort_keys=False,
                                                      allow_unicode=True))
    registry = load_registry(rules)
    return registry.get("9999.0.0"), registry.vocabulary


def test_safety_ctm_of_region_leads_when_scenario_names_no_non_mri(mri_only_draft):
    ruleset, vocabulary = mri_only_draft
    result = evaluate(make("lumbar", 40, 1, ["night_pain"], contra=["mr_unsafe_implant"]),
                      ruleset, vocabulary)
    assert result["scenario"]["id"] == "lumbar.weak_malignancy_risk"
    assert rec(result) == procs("lumbar", ["CTM", "MRI w/wo", "MRI w/o"])
    assert result["safety"]["status"] == "contraindicated"


@pytest.mark.parametrize("contra", ["pregnancy", "prior_gadolinium_reaction"])
def test_safety_gadolinium_no_move_when_mri_without_is_not_ua(mri_only_draft, contra):
    ruleset, vocabulary = mri_only_draft
    result = evaluate(make("lumbar", 40, 1, ["night_pain"], contra=[contra]),
                      ruleset, vocabulary)
    assert rec(result) == procs("lumbar", ["MRI w/wo", "MRI w/o"])
    assert result["safety"]["status"] == "caution"


# --------------------------------------------------------------------------------------------
# Complete UA / MBA lists of every row, transcribed from the criteria tables. The MBA order is
# visible only through the MRI-contraindication re-ordering, so every row is checked with it.
# cervical.neck_pain's conditional CT w/o is included: the row requests use 2 weeks.
# --------------------------------------------------------------------------------------------

_LUMBAR_LISTS = {
    "ankylosed_spine_trauma": (["CT w/o", "MRI w/o", "XR"], []),
    "trauma_with_deficit": (["CT w/o", "MRI w/o"], ["CTM"]),
    "major_trauma": (["CT w/o"], ["XR"]),
    "cauda_equina": (["MRI w/o", "MRI w/wo"], ["CTM", "CT w/o"]),
    "suspected_mscc": (["MRI w/wo", "MRI w/o", "thoracic MRI w/wo", "cervical MRI w/wo"],
                       ["CT w/o", "CTM"]),
    "infection_with_deficit": (["MRI w/wo", "MRI w/o"], ["CT w/", "CTM"]),
    "cord_compression": (["cervical MRI w/o", "thoracic MRI w/o"],
                         ["MRI w/o", "cervical CTM", "thoracic CTM"]),
    "febrile_infection": (["MRI w/wo", "MRI w/o"], ["CT w/", "CT w/o", "XR"]),
    "severe_or_progressive_deficit": (["MRI w/o", "MRI w/wo"], ["CT w/o", "CTM"]),
    "suspected_infection": (["MRI w/wo", "MRI w/o"], ["CT w/o", "CT w/", "XR"]),
    "suspected_malignancy": (["MRI w/wo", "MRI w/o"], ["CT w/o", "CT w/", "XR"]),
    "fracture_with_deficit": (["MRI w/o", "CT w/o", "XR"], ["CTM"]),
    "prior_surgery": (["MRI w/wo", "MRI w/o", "XR"], ["CT w/o", "CTM"]),
    "fracture_risk": (["XR", "MRI w/o", "CT w/o"], ["MRI w/wo", "CTM"]),
    "weak_malignancy_risk": ([], ["XR", "MRI w/o", "MRI w/wo"]),
    "surgical_candidate": (["MRI w/o"], ["MRI w/wo", "CT w/o", "CTM", "XR"]),
    "uncomplicated": ([], []),
}

CRITERIA_LISTS: dict[str, tuple[list[str], list[str]]] = {
    f"lumbar.{name}": lists for name, lists in _LUMBAR_LISTS.items()}
CRITERIA_LISTS.update({
    # thoracic: "as lumbar" with thoracic studies, except the rows the table spells out
    f"thoracic.{name}": lists for name, lists in _LUMBAR_LISTS.items()
    if name not in ("cauda_equina", "suspected_mscc", "cord_compression")})
CRITERIA_LISTS.update({
    "thoracic.cauda_equina": (["MRI w/o", "lumbar MRI w/o"], ["MRI w/wo", "CTM"]),
    "thoracic.suspected_mscc": (["MRI w/wo", "MRI w/o", "cervical MRI w/wo",
                                 "lumbar MRI w/wo"], ["CT w/o", "CTM"]),
    "thoracic.cord_compression": (["MRI w/o", "MRI w/wo"], ["CTM", "CT w/o", "CT w/"]),
    "cervical.ankylosed_spine_trauma": (["CT w/o", "MRI w/o", "XR"], []),
    "cervical.trauma_with_deficit": (["CT w/o", "MRI w/o"], ["CTM"]),
    "cervical.trauma_imaging_indicated": (["CT w/o"], ["XR"]),
    "cervical.suspected_mscc": (["MRI w/wo", "MRI w/o", "thoracic MRI w/wo",
                                 "lumbar MRI w/wo"], ["CT w/o", "CTM"]),
    "cervical.infection_with_deficit": (["MRI w/wo", "MRI w/o"], ["CT w/", "CTM"]),
    "cervical.cord_compression": (["MRI w/o", "MRI w/wo"], ["CTM", "CT w/o", "CT w/"]),
    "cervical.febrile_infection": (["MRI w/wo", "MRI w/o"], ["CT w/", "XR"]),
    "cervical.severe_or_progressive_deficit": (["MRI w/o", "MRI w/wo"], ["CTM", "CT w/o"]),
    "cervical.suspected_infection": (["MRI w/wo", "MRI w/o"], ["CT w/", "XR"]),
    "cervical.suspected_malignancy": (["MRI w/wo", "MRI w/o"], ["XR", "CT w/o"]),
    "cervical.prior_surgery": (["XR", "CT w/o"], ["MRI w/o", "MRI w/wo", "CTM"]),
    "cervical.fracture_risk": (["XR", "CT w/o"], ["MRI w/o"]),
    "cervical.degenerative_on_radiographs": (["MRI w/o"], ["CT w/o", "CTM"]),
    "cervical.radiculopathy": (["MRI w/o"], ["XR", "CT w/o"]),
    "cervical.trauma_low_risk": ([], []),
    "cervical.neck_pain": (["XR"], ["MRI w/o", "CT w/o"]),
})

_ROW_REQUESTS = {r[0]: r[1:5] for r in ALL_ROWS}
_LIST_ROWS = [row for row in CRITERIA_LISTS if row in _ROW_REQUESTS]


def _row_request(row: str, **extra: Any) -> dict[str, Any]:
    age, weeks, findings, fields = _ROW_REQUESTS[row]
    return make(row.split(".")[0], age, weeks, findings, **fields, **extra)


def test_criteria_lists_cover_every_row():
    assert set(CRITERIA_LISTS) == {r[0] for r in ALL_ROWS} | {"thoracic.fracture_with_deficit"}


@pytest.mark.parametrize("row", _LIST_ROWS)
def test_row_rates_every_procedure_of_the_region(run, vocabulary, row):
    """Rule 3 for every procedure of the region: UA list, MBA list, else UNA."""
    region = row.split(".")[0]
    ua, mba = (procs(region, items) for items in CRITERIA_LISTS[row])
    for code, procedure in vocabulary.procedures.items():
        if procedure.region != region:
            continue
        result = run(dict(_row_request(row), requested_procedure=code))
        assert result["scenario"]["id"] == row
        expected = UA if code in ua else MBA if code in mba else UNA
        assert result["appropriateness"] == expected, code
    # recommended studies of other regions carry the scenario's rating too
    result = run(_row_request(row))
    for item in result["recommended_procedures"]:
        assert item["rating"] == (UA if item["code"] in ua else MBA), item["code"]


@pytest.mark.parametrize("row", _LIST_ROWS)
def test_row_with_mri_contraindication(run, vocabulary, row):
    """Safety row 1 on every scenario row, expected order computed from the criteria lists."""
    region = row.split(".")[0]
    ua, mba = (procs(region, items) for items in CRITERIA_LISTS[row])
    recommendation = ua or mba
    non_mri: list[str] = []
    for code in ua + mba:
        if not vocabulary.procedures[code].is_mri and code not in non_mri:
            non_mri.append(code)
    expected: list[str] = []
    if recommendation:
        expected = non_mri or [proc(region, "CTM")]
        expected = expected + [c for c in recommendation
                               if vocabulary.procedures[c].is_mri and c not in expected]
    result = run(_row_request(row, contra=["mr_unsafe_implant"]))
    assert result["scenario"]["id"] == row
    assert rec(result) == expected
    assert result["safety"]["status"] == "contraindicated"
