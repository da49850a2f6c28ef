"""Combination rules 1–7 of criteria.md, counterfactuals and determinism."""

from __future__ import annotations

import random

import pytest

from referral_api.clinical.engine import ENGINE_VERSION, evaluate

KEYS = {
    "region", "requested_procedure", "appropriateness", "urgency", "scenario", "also_matched",
    "recommended_procedures", "reasons", "safety", "would_change_if", "assumptions", "ruleset",
}


def codes(result):
    return [p["code"] for p in result["recommended_procedures"]]


def test_response_shape(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", findings=["urinary_retention"]), ruleset, vocabulary)
    assert set(result) == KEYS
    assert result["requested_procedure"] == {
        "code": "mri_lumbar_without_contrast", "cpt": ["72148"], "rating": "usually_appropriate"}
    assert result["ruleset"] == {"id": "spine-imaging", "version": "2026.1.0",
                                 "sha256": ruleset.sha256}
    assert result["assumptions"] == []
    assert "Urinary retention is present: a cauda equina sign." in result["reasons"]
    assert ENGINE_VERSION


def test_highest_urgency_governs_over_rule_order(ruleset, vocabulary, req):
    # fracture_risk (routine) and suspected_malignancy (urgent) both match: urgent governs.
    result = evaluate(req("lumbar", 75, 2, ["history_of_cancer"]), ruleset, vocabulary)
    assert result["scenario"]["id"] == "lumbar.suspected_malignancy"
    assert result["also_matched"] == ["lumbar.fracture_risk"]


def test_urgency_beats_earlier_listing(ruleset, vocabulary, req):
    # cord_compression (listed 7th) is urgent when not acute; a cauda equina sign (4th) is
    # emergent: the emergent one governs; and conversely an emergent later scenario beats an
    # earlier urgent one.
    result = evaluate(req("lumbar", 50, 10, ["myelopathy_signs", "severe_motor_deficit"]),
                      ruleset, vocabulary)
    assert result["scenario"]["id"] == "lumbar.severe_or_progressive_deficit"
    assert result["urgency"] == "emergent"
    assert result["also_matched"] == ["lumbar.cord_compression"]


def test_equal_urgency_first_listed_wins(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", 40, 0, ["significant_trauma", "urinary_retention"]),
                      ruleset, vocabulary)
    assert result["scenario"]["id"] == "lumbar.trauma_with_deficit"
    assert result["also_matched"] == ["lumbar.major_trauma", "lumbar.cauda_equina"]


def test_default_only_when_nothing_else_matches(ruleset, vocabulary, req):
    alone = evaluate(req("cervical", 40, 2, []), ruleset, vocabulary)
    assert alone["scenario"]["id"] == "cervical.neck_pain" and alone["also_matched"] == []
    # trauma_low_risk (urgency none) matches, so the default does not, even though it is routine
    low = evaluate(req("cervical", 40, 0, ["minor_trauma"]), ruleset, vocabulary)
    assert low["scenario"]["id"] == "cervical.trauma_low_risk"
    assert low["also_matched"] == []
    assert low["urgency"] == "none" and low["recommended_procedures"] == []


def test_unlisted_procedure_is_una(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", findings=["urinary_retention"],
                          requested_procedure="mri_lumbar_with_contrast"), ruleset, vocabulary)
    assert result["appropriateness"] == "usually_not_appropriate"
    ct_ww = evaluate(req("lumbar", findings=["urinary_retention"],
                         requested_procedure="ct_lumbar_without_and_with_contrast"),
                     ruleset, vocabulary)
    assert ct_ww["appropriateness"] == "usually_not_appropriate"


def test_mba_rating_and_fallback_to_mba_list(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", 40, 2, ["night_pain"]), ruleset, vocabulary)
    assert result["appropriateness"] == "may_be_appropriate"
    assert codes(result) == ["xray_lumbar", "mri_lumbar_without_contrast",
                             "mri_lumbar_without_and_with_contrast"]
    assert {p["rating"] for p in result["recommended_procedures"]} == {"may_be_appropriate"}
    assert result["urgency"] == "routine"


def test_empty_recommendation_means_urgency_none(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", 40, 1, []), ruleset, vocabulary)
    assert result["recommended_procedures"] == [] and result["urgency"] == "none"
    assert any("conservative care" in r for r in result["reasons"])


def test_cross_region_recommendation(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", 60, 2, ["history_of_cancer", "myelopathy_signs"]),
                      ruleset, vocabulary)
    assert codes(result) == ["mri_lumbar_without_and_with_contrast",
                             "mri_lumbar_without_contrast",
                             "mri_thoracic_without_and_with_contrast",
                             "mri_cervical_without_and_with_contrast"]
    assert result["requested_procedure"]["code"] == "mri_lumbar_without_contrast"
    assert "The preferred study is MRI lumbar spine without and with contrast." in result["reasons"]


def test_conditional_urgency(ruleset, vocabulary, req):
    assert evaluate(req("lumbar", 50, 3, ["myelopathy_signs"]), ruleset,
                    vocabulary)["urgency"] == "emergent"
    assert evaluate(req("lumbar", 50, 4, ["myelopathy_signs"]), ruleset,
                    vocabulary)["urgency"] == "urgent"


def test_conditional_procedure_item(ruleset, vocabulary, req):
    ct = "ct_cervical_without_contrast"
    at12 = evaluate(req("cervical", 40, 12, requested_procedure=ct), ruleset, vocabulary)
    after = evaluate(req("cervical", 40, 12.5, requested_procedure=ct), ruleset, vocabulary)
    assert at12["appropriateness"] == "may_be_appropriate"
    assert after["appropriateness"] == "usually_not_appropriate"


@pytest.mark.parametrize("findings,urgency,scenario", [
    (["urinary_retention"], "emergent", "lumbar.cauda_equina"),
    (["history_of_cancer"], "urgent", "lumbar.suspected_malignancy"),
])
def test_under_18_keeps_red_flag_urgency(ruleset, vocabulary, req, findings, urgency, scenario):
    result = evaluate(req("lumbar", 12, 1, findings), ruleset, vocabulary)
    assert result["appropriateness"] == "not_covered"
    assert result["requested_procedure"]["rating"] == "not_covered"
    assert result["recommended_procedures"] == []
    assert result["urgency"] == urgency
    assert result["scenario"]["id"] == scenario
    assert result["would_change_if"] == []
    assert any("under 18" in r for r in result["reasons"])
    assert any("prompt specialist assessment" in r for r in result["reasons"])


def test_under_18_routine_becomes_none(ruleset, vocabulary, req):
    result = evaluate(req("cervical", 17, 3, ["radiculopathy"],
                          contraindications=["severe_claustrophobia"]), ruleset, vocabulary)
    assert result["appropriateness"] == "not_covered"
    assert result["urgency"] == "none"
    assert result["scenario"]["id"] == "cervical.radiculopathy"
    assert result["safety"]["status"] == "caution"  # safety alerts apply as for adults
    assert not any("prompt specialist" in r for r in result["reasons"])


def test_age_18_is_adult(ruleset, vocabulary, req):
    assert evaluate(req("lumbar", 18, 1, ["urinary_retention"]), ruleset,
                    vocabulary)["appropriateness"] == "usually_appropriate"


def test_would_change_if_entries_really_change(ruleset, vocabulary, req):
    rng = random.Random(7)
    findings = list(vocabulary.findings)
    for _ in range(150):
        region = rng.choice(["lumbar", "thoracic", "cervical"])
        present = rng.sample(findings, rng.randint(0, 3))
        request = req(region, rng.randint(18, 90), rng.choice([0, 2, 5, 8, 13, 30]), present,
                      care=rng.choice([0, 6]), candidate=rng.random() < 0.5)
        base = evaluate(request, ruleset, vocabulary)
        listed = {e["finding"]: e for e in base["would_change_if"]}
        order = [f for f in findings if f in listed]
        assert list(listed) == order  # vocabulary order
        for code in findings:
            if code in present:
                assert code not in listed
                continue
            alt = evaluate({**request, "findings": [*present, code]}, ruleset, vocabulary,
                           counterfactuals=False)
            changed = (alt["appropriateness"], alt["urgency"]) != (
                base["appropriateness"], base["urgency"])
            assert changed == (code in listed), (request, code)
            if changed:
                assert listed[code] == {"finding": code,
                                        "appropriateness": alt["appropriateness"],
                                        "urgency": alt["urgency"],
                                        "scenario": alt["scenario"]["id"]}


def test_deterministic_and_order_insensitive(ruleset, vocabulary, req):
    a = req("lumbar", 66, 6, ["night_pain", "history_of_cancer", "neurologic_deficit"],
            contraindications=["pregnancy", "mr_unsafe_implant"], egfr=20.0)
    b = req("lumbar", 66, 6, ["neurologic_deficit", "history_of_cancer", "night_pain",
                              "night_pain"],
            contraindications=["mr_unsafe_implant", "pregnancy", "pregnancy"], egfr=20.0)
    first = evaluate(a, ruleset, vocabulary)
    assert all(evaluate(a, ruleset, vocabulary) == first for _ in range(5))
    assert evaluate(b, ruleset, vocabulary) == first


def test_counterfactuals_flag(ruleset, vocabulary, req):
    request = req("lumbar", 40, 2, [])
    assert evaluate(request, ruleset, vocabulary)["would_change_if"]
    assert evaluate(request, ruleset, vocabulary, counterfactuals=False)["would_change_if"] == []


def test_rejects_other_region_procedure(ruleset, vocabulary, req):
    with pytest.raises(ValueError):
        evaluate(req("lumbar", requested_procedure="mri_cervical_without_contrast"),
                 ruleset, vocabulary)


def test_memoised_counterfactuals_equal_computed_ones(ruleset, vocabulary, req):
    """The per-region counterfactual cache returns exactly what a fresh computation does."""
    rng = random.Random(7)
    codes_all = list(vocabulary.findings)
    for _ in range(200):
        region = rng.choice(["cervical", "thoracic", "lumbar"])
        request = req(region, rng.choice([30, 55, 75]), rng.choice([1, 5, 20]),
                      rng.sample(codes_all, rng.randint(0, 3)))
        warm = evaluate(request, ruleset, vocabulary)  # may hit entries of earlier rounds
        for rules in ruleset.regions.values():
            rules.counterfactual_cache.clear()
        cold = evaluate(request, ruleset, vocabulary)
        assert warm == cold
