"""Rule language 2 (2026.2.0): the combination of criteria-2026.2.0 §3 and the safety rows of
§9, unit by unit; the clinical cases themselves are the embedded tests of the rule files."""

from __future__ import annotations

import pytest

from referral_api.clinical import engine
from referral_api.clinical.combine import merge_plans
from referral_api.clinical.model import PlanStep
from referral_api.clinical.safety import mri_substitution, prefer_mri_without


@pytest.fixture(scope="module")
def v2(registry):
    return registry.get("2026.2.0")


def run(v2, region, age=45, weeks=2, findings=(), **extra):
    request = {"patient": {"age": age}, "region": region, "symptom_duration_weeks": weeks,
               "conservative_care_weeks": extra.pop("care", 0),
               "intervention_candidate": extra.pop("candidate", False),
               "findings": list(findings),
               "contraindications": list(extra.pop("contraindications", [])), **extra}
    return engine.evaluate(request, v2)


def plan(out):
    steps: list[list[str]] = []
    for item in out["recommended_procedures"]:
        while len(steps) < item["step"]:
            steps.append([])
        steps[item["step"] - 1].append(item["code"])
    return steps


class _Scenario:
    """A stand-in with the two things merge_plans reads."""

    def __init__(self, steps, recommend=()):
        self.plan = tuple(PlanStep(codes=tuple(s)) for s in steps)
        self.recommend = tuple(recommend)

    def ua_steps(self, mask):
        return tuple(s.codes for s in self.plan)


def test_merge_appends_to_the_first_sharing_step_else_adds_a_step() -> None:
    trauma = _Scenario([["ct"], ["mri"]])
    mscc = _Scenario([["mri_wwo", "mri"], ["c_wwo", "c"], ["l_wwo", "l"]])
    cord = _Scenario([["mri", "mri_wwo"]])
    assert merge_plans([trauma, mscc, cord], 0) == [
        ["ct"], ["mri", "mri_wwo"], ["c_wwo", "c"], ["l_wwo", "l"]]
    # A single scenario without UA: its ★ items, as one step; ★ items never merge.
    assert merge_plans([_Scenario([], ["xr"])], 0) == [["xr"]]
    assert merge_plans([_Scenario([], ["xr"]), _Scenario([["mri"]])], 0) == [["mri"]]


def test_mri_substitution_and_prefer_without(v2) -> None:
    vocab = v2.vocabulary
    steps = [["mri_lumbar_without_contrast"], ["mri_thoracic_without_contrast"],
             ["xray_lumbar", "mri_lumbar_without_contrast"]]
    mba = [["ct_myelography_lumbar", "ct_lumbar_without_contrast", "xray_lumbar"]]
    assert mri_substitution(steps, mba, vocab) == [
        ["ct_myelography_lumbar", "ct_lumbar_without_contrast", "mri_lumbar_without_contrast"],
        ["ct_myelography_thoracic", "mri_thoracic_without_contrast"],
        ["xray_lumbar"]]
    # SI-joint MRI gets no substitute (there is no SI CT code).
    assert mri_substitution([["mri_sacroiliac_joints_without_contrast"]], mba, vocab) == [
        ["mri_sacroiliac_joints_without_contrast"]]
    assert prefer_mri_without([["mri_lumbar_without_and_with_contrast", "xray_lumbar",
                                "mri_lumbar_without_contrast"]], vocab) == [
        ["mri_lumbar_without_contrast", "mri_lumbar_without_and_with_contrast", "xray_lumbar"]]


def test_si_mri_with_an_mr_unsafe_implant_names_the_si_ct_alternative(v2) -> None:
    out = run(v2, "lumbar", age=28, weeks=26, contraindications=["mr_unsafe_implant"],
              findings=["inflammatory_back_pain", "sacroiliac_radiographs_nondiagnostic"])
    assert plan(out) == [["mri_sacroiliac_joints_without_contrast"]]
    (alert,) = out["safety"]["alerts"]
    assert alert["level"] == "contraindicated"
    assert alert["message"].endswith("CT of the sacroiliac joints is the usual alternative.")


def test_legacy_gadolinium_code_applies_only_without_a_graded_one(v2) -> None:
    wwo = "mri_lumbar_without_and_with_contrast"
    legacy = run(v2, "lumbar", contraindications=["prior_gadolinium_reaction"],
                 requested_procedure=wwo)
    assert [a["code"] for a in legacy["safety"]["alerts"]] == ["prior_gadolinium_reaction"]
    assert "Severity not recorded" in legacy["safety"]["alerts"][0]["message"]
    both = run(v2, "lumbar", contraindications=["prior_gadolinium_reaction",
                                                "prior_gadolinium_reaction_mild"],
               requested_procedure=wwo)
    assert [a["code"] for a in both["safety"]["alerts"]] == ["prior_gadolinium_reaction_mild"]
    # No gadolinium in play: no gadolinium alert at all.
    assert run(v2, "lumbar", contraindications=["prior_gadolinium_reaction_severe"])[
        "safety"] == {"status": "clear", "alerts": []}


def test_unknown_implant_text_leads_with_the_emergency_sentence_when_emergent(v2) -> None:
    emergent = run(v2, "lumbar", findings=["urinary_retention"],
                   contraindications=["implant_unknown_mr_status"])
    routine = run(v2, "lumbar", findings=["prior_spine_surgery"],
                  contraindications=["implant_unknown_mr_status"])
    assert emergent["safety"]["alerts"][0]["message"].startswith("In an emergency do not wait")
    assert routine["safety"]["alerts"][0]["message"].startswith("An implant, device or metal")


def test_cardiac_device_names_the_alternative_and_keeps_the_plan(v2) -> None:
    out = run(v2, "lumbar", findings=["urinary_retention"],
              contraindications=["non_conditional_cardiac_device"])
    assert plan(out) == [["mri_lumbar_without_contrast", "mri_lumbar_without_and_with_contrast"]]
    assert out["safety"]["status"] == "caution"
    assert out["safety"]["alerts"][0]["message"].endswith(
        "otherwise CT myelography, lumbar spine.")


@pytest.mark.parametrize(("extra", "level", "start"), [
    ({"egfr": 60}, "info", "No need to stop metformin"),
    ({"egfr": 25}, "caution", "Stop metformin"),
    ({}, "caution", "Check eGFR"),
    ({"contraindications": ["metformin", "dialysis"]}, "caution", "Stop metformin"),
])
def test_metformin_by_kidney_function(v2, extra, level, start) -> None:
    extra.setdefault("contraindications", ["metformin"])
    out = run(v2, "lumbar", requested_procedure="ct_lumbar_with_contrast", **extra)
    metformin = [a for a in out["safety"]["alerts"] if a["code"] == "metformin"]
    assert metformin[0]["level"] == level and metformin[0]["message"].startswith(start)
    if level == "info" and len(out["safety"]["alerts"]) == 1:
        assert out["safety"]["status"] == "clear"


def test_no_renal_or_metformin_advice_for_ct_myelography(v2) -> None:
    out = run(v2, "lumbar", requested_procedure="ct_myelography_lumbar", egfr=20,
              contraindications=["metformin", "acute_kidney_injury"])
    assert out["safety"]["alerts"] == []


def test_pregnancy_adds_the_ionising_sentence_only_when_ionising_is_in_play(v2) -> None:
    ct = run(v2, "lumbar", weeks=0, findings=["significant_trauma"], days_since_injury=0,
             contraindications=["pregnancy"])
    assert "ionising radiation" in ct["safety"]["alerts"][0]["message"]
    mri = run(v2, "lumbar", findings=["saddle_anesthesia"], contraindications=["pregnancy"])
    assert "ionising radiation" not in mri["safety"]["alerts"][0]["message"]


def test_would_change_if_uses_v2_findings_and_skips_deprecated_codes(v2) -> None:
    out = run(v2, "cervical", age=40, weeks=1)
    listed = [c["finding"] for c in out["would_change_if"]]
    assert "midline_cervical_tenderness" not in listed
    assert "midline_spinal_tenderness" in listed
    assert "bilateral_radiculopathy" in listed
    lumbar = run(v2, "lumbar")
    change = {c["finding"]: c for c in lumbar["would_change_if"]}
    assert change["bilateral_radiculopathy"]["urgency"] == "emergent"
    assert change["minor_trauma"]["scenario"] == "lumbar.low_velocity_trauma"


def test_not_covered_has_no_counterfactuals_and_keeps_urgency_by_flag(v2) -> None:
    out = run(v2, "thoracic", age=9, weeks=0, findings=["significant_trauma"],
              days_since_injury=0)
    assert out["appropriateness"] == "not_covered"
    assert out["urgency"] == "emergent"
    assert out["would_change_if"] == [] and out["recommended_procedures"] == []


def test_reasons_follow_the_templates(v2) -> None:
    out = run(v2, "lumbar", findings=["myelopathy_signs", "urinary_retention"])
    assert out["reasons"][0].startswith("Several emergencies apply (Suspected cauda equina "
                                        "syndrome, Signs of cord compression")
    assert "MRI lumbar spine without contrast is usually appropriate." in out["reasons"]
    assert not any("is may be" in r for r in out["reasons"])
    # criteria §11's example: a known cancer after a (high-risk) fall: CT now, MRI in a week.
    fall = run(v2, "lumbar", age=60, weeks=1,
               findings=["significant_trauma", "history_of_cancer"], days_since_injury=1)
    assert fall["scenario"]["id"] == "lumbar.trauma_high_risk"
    also = [r for r in fall["reasons"] if r.startswith("Also matched")]
    assert also == ["Also matched: Suspected malignancy without neurology (urgent): MRI lumbar "
                    "spine without and with contrast or MRI lumbar spine without contrast."]
    assert "Injury 1 day ago." in fall["reasons"]


def test_2026_1_0_output_has_no_new_fields(registry) -> None:
    old = registry.get("2026.1.0")
    out = engine.evaluate({"patient": {"age": 50}, "region": "lumbar",
                           "symptom_duration_weeks": 1, "findings": ["urinary_retention"],
                           "contraindications": ["pregnancy"]}, old)
    assert "contributing_scenarios" not in out and "patient_information" not in out
    assert all("step" not in p for p in out["recommended_procedures"])
    assert all("level" not in a for a in out["safety"]["alerts"])
