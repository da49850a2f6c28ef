"""Safety modifiers: order, re-ordering rules, alerts; ratings never change."""

from __future__ import annotations

from referral_api.clinical import safety
from referral_api.clinical.engine import evaluate


def codes(result):
    return [p["code"] for p in result["recommended_procedures"]]


def alert_codes(result):
    return [a["code"] for a in result["safety"]["alerts"]]


def test_clear_without_contraindications(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", findings=["urinary_retention"]), ruleset, vocabulary)
    assert result["safety"] == {"status": "clear", "alerts": []}


def test_mr_unsafe_puts_non_mri_first(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", 66, 2, ["history_of_cancer", "radiculopathy"],
                          contraindications=["mr_unsafe_implant"]), ruleset, vocabulary)
    assert result["safety"]["status"] == "contraindicated"
    assert alert_codes(result) == ["mr_unsafe_implant"]
    assert codes(result) == [
        "ct_lumbar_without_contrast", "ct_myelography_lumbar",
        "mri_lumbar_without_and_with_contrast", "mri_lumbar_without_contrast",
        "mri_thoracic_without_and_with_contrast", "mri_cervical_without_and_with_contrast",
    ]
    # ratings unchanged: the requested MRI keeps its rating; the CTs are MBA
    assert result["appropriateness"] == "usually_appropriate"
    assert result["recommended_procedures"][0]["rating"] == "may_be_appropriate"


def test_orbital_metal_uses_ua_then_mba_non_mri(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", 72, 2, [], contraindications=["orbital_metal_foreign_body"]),
                      ruleset, vocabulary)
    # fracture_risk: UA XR, MRI w/o, CT w/o; MBA MRI w/wo, CTM
    assert codes(result) == ["xray_lumbar", "ct_lumbar_without_contrast",
                             "ct_myelography_lumbar", "mri_lumbar_without_contrast"]
    assert alert_codes(result) == ["orbital_metal_foreign_body"]


def test_ctm_leads_when_scenario_names_no_non_mri(vocabulary):
    out = safety.non_mri_first(
        ["mri_thoracic_without_contrast", "mri_lumbar_without_contrast"],
        ["mri_thoracic_without_contrast", "mri_lumbar_without_contrast"],
        ["mri_thoracic_without_and_with_contrast"], "thoracic", vocabulary)
    assert out == ["ct_myelography_thoracic", "mri_thoracic_without_contrast",
                   "mri_lumbar_without_contrast"]


def test_contraindicated_empty_stays_empty(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", 40, 2, [], contraindications=["mr_unsafe_implant"]),
                      ruleset, vocabulary)
    assert result["recommended_procedures"] == [] and result["urgency"] == "none"
    assert result["safety"]["status"] == "contraindicated"


def test_caution_rows_do_not_reorder(ruleset, vocabulary, req):
    base = evaluate(req("lumbar", 60, 2, ["history_of_cancer"]), ruleset, vocabulary)
    for code in ("non_conditional_cardiac_device", "mr_conditional_implant",
                 "severe_claustrophobia"):
        result = evaluate(req("lumbar", 60, 2, ["history_of_cancer"], contraindications=[code]),
                          ruleset, vocabulary)
        assert result["safety"]["status"] == "caution"
        assert alert_codes(result) == [code]
        assert codes(result) == codes(base)


def test_pregnancy_moves_mri_without_contrast_first(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", 35, 2, ["history_of_cancer"], contraindications=["pregnancy"]),
                      ruleset, vocabulary)
    assert codes(result) == ["mri_lumbar_without_contrast", "mri_lumbar_without_and_with_contrast"]
    assert result["safety"]["status"] == "caution"
    assert "ionising" not in result["safety"]["alerts"][0]["message"]
    assert result["appropriateness"] == "usually_appropriate"


def test_pregnancy_move_only_within_region(ruleset, vocabulary, req):
    # cross-region whole-spine studies keep their places; the lumbar w/o moves before lumbar w/wo
    result = evaluate(req("lumbar", 35, 2, ["history_of_cancer", "radiculopathy"],
                          contraindications=["pregnancy"]), ruleset, vocabulary)
    assert codes(result) == ["mri_lumbar_without_contrast",
                             "mri_lumbar_without_and_with_contrast",
                             "mri_thoracic_without_and_with_contrast",
                             "mri_cervical_without_and_with_contrast"]


def test_pregnancy_ionising_alert(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", 35, 2, ["night_pain"], contraindications=["pregnancy"]),
                      ruleset, vocabulary)
    # MBA list XR first: no UA MRI w/o, so no move; the alert names ionising radiation
    assert codes(result)[0] == "xray_lumbar"
    assert "ionising radiation" in result["safety"]["alerts"][0]["message"]


def test_no_move_when_mri_without_is_not_ua(vocabulary):
    out = safety.prefer_mri_without_contrast(
        ["mri_lumbar_without_and_with_contrast", "mri_lumbar_without_contrast"],
        ["mri_lumbar_without_and_with_contrast"], "lumbar", vocabulary)
    assert out == ["mri_lumbar_without_and_with_contrast", "mri_lumbar_without_contrast"]


def test_gadolinium_reaction_moves_too(ruleset, vocabulary, req):
    result = evaluate(req("cervical", 50, 2, ["recent_bacterial_infection"],
                          contraindications=["prior_gadolinium_reaction"]), ruleset, vocabulary)
    assert codes(result) == ["mri_cervical_without_contrast",
                             "mri_cervical_without_and_with_contrast"]
    assert alert_codes(result) == ["prior_gadolinium_reaction"]
    assert "premedicate" in result["safety"]["alerts"][0]["message"]


def test_renal_only_when_contrast_involved(ruleset, vocabulary, req):
    # neck pain: XR recommended, MRI w/o requested -> no contrast anywhere -> no renal alert
    none = evaluate(req("cervical", 50, 2, [], egfr=20.0), ruleset, vocabulary)
    assert none["safety"] == {"status": "clear", "alerts": []}
    # infection: MRI w/wo recommended -> alert
    low = evaluate(req("cervical", 50, 2, ["recent_bacterial_infection"], egfr=20.0),
                   ruleset, vocabulary)
    assert alert_codes(low) == ["renal_impairment"] and low["safety"]["status"] == "caution"
    # requested study with contrast, nothing with contrast recommended -> alert
    requested = evaluate(req("cervical", 50, 2, [], contraindications=["dialysis"],
                             requested_procedure="ct_myelography_cervical"), ruleset, vocabulary)
    assert alert_codes(requested) == ["renal_impairment"]
    # eGFR 30 is not below 30
    ok = evaluate(req("cervical", 50, 2, ["recent_bacterial_infection"], egfr=30.0),
                  ruleset, vocabulary)
    assert ok["safety"]["alerts"] == []
    aki = evaluate(req("lumbar", 50, 2, ["fever", "iv_drug_use"],
                       contraindications=["acute_kidney_injury"]), ruleset, vocabulary)
    assert alert_codes(aki) == ["renal_impairment"]


def test_modifiers_apply_in_order(ruleset, vocabulary, req):
    result = evaluate(req("lumbar", 45, 1, ["urinary_retention"],
                          contraindications=["pregnancy", "dialysis", "mr_unsafe_implant",
                                             "severe_claustrophobia"]), ruleset, vocabulary)
    assert alert_codes(result) == ["mr_unsafe_implant", "severe_claustrophobia", "pregnancy",
                                   "renal_impairment"]
    assert result["safety"]["status"] == "contraindicated"
    assert codes(result)[:2] == ["ct_myelography_lumbar", "ct_lumbar_without_contrast"]
    assert "ionising radiation" in result["safety"]["alerts"][2]["message"]


def test_child_gets_the_adult_safety_alerts_without_a_recommendation(ruleset, vocabulary, req):
    """Rule 7: "safety alerts apply as for adults" — worked out on the adult recommendation."""
    findings = ["urinary_retention"]
    adult = evaluate(req("lumbar", 40, 1, findings, egfr=20), ruleset, vocabulary)
    child = evaluate(req("lumbar", 12, 1, findings, egfr=20), ruleset, vocabulary)
    assert [a["code"] for a in adult["safety"]["alerts"]] == ["renal_impairment"]
    assert child["safety"] == adult["safety"]
    assert child["recommended_procedures"] == []
    assert child["appropriateness"] == "not_covered"
    assert child["urgency"] == "emergent"
