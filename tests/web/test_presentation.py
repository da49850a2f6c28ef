"""The headline, the plan and the handout on hand-written decisions shaped like the API's
response (api-v1.md; vocabulary-2026.2.0-delta.md §7), cases taken from issue 11 and from the
criteria's §13 examples."""

from __future__ import annotations

from typing import Any

import pytest

from referral_api.clinical.vocabulary import load_vocabulary
from referral_api.config import PROJECT_ROOT
from referral_api.presentation import build_handout, build_plan, headline

VOCABULARY = load_vocabulary(PROJECT_ROOT / "rules" / "vocabulary.yaml")


def proc(code: str, rating: str = "usually_appropriate", step: int | None = None
         ) -> dict[str, Any]:
    item: dict[str, Any] = {"code": code, "cpt": ["00000"], "rating": rating}
    if step is not None:
        item["step"] = step
    return item


def decision(*, appropriateness: str, urgency: str, requested: str, plan: list[dict[str, Any]],
             status: str = "clear", alerts: list[dict[str, Any]] | None = None,
             scenario: str = "lumbar.uncomplicated", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "decision_id": "00000000-0000-4000-8000-000000000000",
        "appropriateness": appropriateness,
        "urgency": urgency,
        "requested_procedure": {"code": requested, "cpt": ["00000"], "rating": appropriateness},
        "scenario": {"id": scenario, "title": "A scenario", "sources": []},
        "recommended_procedures": plan,
        "safety": {"status": status, "alerts": alerts or []},
        "reasons": [], "would_change_if": [], "assumptions": [], "also_matched": [],
    }
    body.update(extra)
    return body


MR_UNSAFE = decision(  # criteria §13 T14, 2026.2.0 shape: MRI substitution already applied
    appropriateness="usually_appropriate", urgency="emergent",
    requested="mri_lumbar_without_contrast", scenario="lumbar.cauda_equina",
    plan=[proc("ct_myelography_lumbar", "may_be_appropriate", 1),
          proc("ct_lumbar_without_contrast", "may_be_appropriate", 1),
          proc("mri_lumbar_without_contrast", step=1),
          proc("mri_lumbar_without_and_with_contrast", step=1)],
    status="contraindicated",
    alerts=[{"code": "mr_unsafe_implant", "level": "contraindicated",
             "message": "An implant labelled MR Unsafe: MRI is contraindicated; the non-MRI "
                        "studies come first."}],
)

MR_UNSAFE_V1 = decision(  # issue 11: a 2026.1.0 decision, MRIs first, no levels, no steps
    appropriateness="usually_appropriate", urgency="urgent",
    requested="mri_lumbar_without_contrast", scenario="lumbar.suspected_malignancy",
    plan=[proc("mri_lumbar_without_contrast"), proc("mri_lumbar_without_and_with_contrast")],
    status="contraindicated",
    alerts=[{"code": "mr_unsafe_implant", "message": "MR Unsafe implant: MRI contraindicated."}],
)

PACEMAKER_V1 = decision(  # issue 11: the caution names "the non-MRI alternative" but none listed
    appropriateness="usually_appropriate", urgency="routine",
    requested="mri_lumbar_without_contrast", scenario="lumbar.surgical_candidate",
    plan=[proc("mri_lumbar_without_contrast")],
    status="caution",
    alerts=[{"code": "non_conditional_cardiac_device",
             "message": "Non-MR-conditional device: MRI only under a dedicated protocol; "
                        "otherwise choose the non-MRI alternative."},
            {"code": "renal_impairment", "message": "eGFR 20: avoid contrast."}],
)

CHILD_CES_V1 = decision(  # issue 11: a 10-year-old with cauda equina signs under 2026.1.0
    appropriateness="not_covered", urgency="emergent", requested="mri_lumbar_without_contrast",
    scenario="lumbar.pediatric", plan=[],
)

CHILD_CES = decision(  # 2026.2.0: the child serious-pathology row governs
    appropriateness="usually_appropriate", urgency="emergent",
    requested="mri_lumbar_without_contrast", scenario="lumbar.child_serious_pathology",
    plan=[proc("mri_lumbar_without_and_with_contrast", step=1),
          proc("mri_lumbar_without_contrast", step=1),
          proc("mri_thoracic_without_and_with_contrast", step=2),
          proc("mri_thoracic_without_contrast", step=2)],
)

UNCOMPLICATED = decision(
    appropriateness="usually_not_appropriate", urgency="none",
    requested="mri_lumbar_without_contrast", plan=[],
    patient_information={
        "locale": "en-US",
        "headline": "Your back pain is very likely to get better without a scan.",
        "what_is_happening": "Most back pain comes from the muscles, joints and discs.",
        "why_this_decision": "Your care team checked you for warning signs.",
        "about_the_scan": "An MRI shows bones, discs and nerves in detail.",
        "meanwhile": ["Keep moving.", "Use heat."],
        "come_back_if": [
            {"sign": "Numbness between your legs.", "level": "emergency",
             "action": "Emergency: call 911 or go to the emergency department now."},
            {"sign": "Fever or chills.", "level": "today", "action": "Get seen today."},
            {"sign": "You have had cancer.", "level": "week",
             "action": "See your doctor within a week."},
            {"sign": "New trouble starting to pee.", "level": "emergency",
             "action": "Emergency: call {emergency_number} now."},
        ],
        "questions_to_ask": ["Do I really need this test?"],
        "if_scan_booked": None,
    },
)

TRAUMA_STEPS = decision(  # criteria §13 T04: CT now, then MRI of three regions
    appropriateness="usually_appropriate", urgency="emergent",
    requested="mri_thoracic_without_contrast", scenario="thoracic.trauma_with_deficit",
    plan=[proc("ct_thoracic_without_contrast", step=1),
          proc("mri_thoracic_without_contrast", step=2),
          proc("mri_thoracic_without_and_with_contrast", step=2),
          proc("mri_cervical_without_and_with_contrast", step=3),
          proc("mri_cervical_without_contrast", step=3)],
    contributing_scenarios=["thoracic.trauma_with_deficit", "thoracic.suspected_mscc"],
)


def test_mr_unsafe_headline_is_red_and_names_the_contraindication_and_first_study() -> None:
    top = headline(MR_UNSAFE, VOCABULARY)
    assert top.tone == "emergency" and not top.is_green
    assert top.text == ("Emergency: MRI contraindicated (MR Unsafe implant): "
                        "CT myelography, lumbar spine first, today")


def test_mr_unsafe_mris_carry_contraindicated_badges_not_ratings() -> None:
    plan = build_plan(MR_UNSAFE, VOCABULARY)
    badges = {item.code: item.badge for item in plan.steps[0].items}
    assert badges["mri_lumbar_without_contrast"] == "contraindicated"
    assert badges["mri_lumbar_without_and_with_contrast"] == "contraindicated"
    assert badges["ct_myelography_lumbar"] == "may_be_appropriate"
    assert plan.requested is not None and plan.requested.badge == "contraindicated"


def test_legacy_decision_without_levels_is_never_green_under_a_contraindication() -> None:
    top = headline(MR_UNSAFE_V1, VOCABULARY)
    assert top.tone == "danger"
    assert "MRI contraindicated (MR Unsafe implant)" in top.text
    assert all(i.badge == "contraindicated" for i in top.plan.steps[0].items)


def test_pacemaker_caution_shows_the_named_alternative_in_the_plan() -> None:
    plan = build_plan(PACEMAKER_V1, VOCABULARY)
    step = plan.steps[0]
    assert [f.code for f in step.fallbacks] == ["ct_myelography_lumbar"]
    assert step.fallback_reasons == ("non_conditional_cardiac_device",)
    assert step.items[0].status == "caution"
    top = headline(PACEMAKER_V1, VOCABULARY)
    assert top.tone == "caution" and "conservative care" not in top.text
    assert top.text == ("MRI lumbar spine without contrast (routine) — caution: "
                        "Non-MR-conditional cardiac device")


def test_caution_naming_an_exact_study_offers_that_study() -> None:
    body = dict(PACEMAKER_V1)
    body["safety"] = {"status": "caution", "alerts": [{
        "code": "non_conditional_cardiac_device", "level": "caution",
        "message": "Pacemaker: MRI only under a dedicated protocol; otherwise "
                   "CT lumbar spine without contrast."}]}
    plan = build_plan(body, VOCABULARY)
    assert [f.code for f in plan.steps[0].fallbacks] == ["ct_lumbar_without_contrast"]


@pytest.mark.parametrize("urgency,expected", [("emergent", ["ct_myelography_lumbar"]),
                                              ("routine", [])])
def test_claustrophobia_names_an_alternative_only_for_an_emergency(urgency: str,
                                                                   expected: list[str]) -> None:
    body = decision(appropriateness="usually_appropriate", urgency=urgency,
                    requested="mri_lumbar_without_contrast",
                    plan=[proc("mri_lumbar_without_contrast", step=1)], status="caution",
                    alerts=[{"code": "severe_claustrophobia", "level": "caution",
                             "message": "Severe claustrophobia: offer a wide-bore scanner; for "
                                        "an emergency sedation, or CT myelography if MRI "
                                        "cannot be done in time."}])
    assert [f.code for f in build_plan(body, VOCABULARY).steps[0].fallbacks] == expected


def test_child_with_cauda_equina_signs_not_covered_is_never_conservative_care() -> None:
    top = headline(CHILD_CES_V1, VOCABULARY)
    assert top.text == "Not covered by adult criteria — same-day specialist assessment"
    assert top.tone == "emergency"
    assert "conservative" not in top.text.lower()


def test_child_serious_pathology_headline_gives_the_mri_today_then_the_next_step() -> None:
    top = headline(CHILD_CES, VOCABULARY)
    assert top.text.startswith("Emergency: MRI lumbar spine without and with contrast today")
    assert ", then MRI thoracic spine" in top.text
    assert top.tone == "emergency"


def test_child_trauma_under_16_names_paediatric_trauma_criteria() -> None:
    body = decision(appropriateness="not_covered", urgency="routine",
                    requested="mri_lumbar_without_contrast", plan=[],
                    scenario="lumbar.child_trauma_under_16")
    assert headline(body, VOCABULARY).text == (
        "Not covered: injured child under 16 — routine specialist assessment with paediatric "
        "trauma criteria")


@pytest.mark.parametrize("urgency", ["emergent", "urgent"])
def test_empty_plan_with_urgency_never_says_conservative_care(urgency: str) -> None:
    body = decision(appropriateness="usually_not_appropriate", urgency=urgency,
                    requested="mri_lumbar_without_contrast", plan=[])
    top = headline(body, VOCABULARY)
    assert "conservative" not in top.text.lower()
    assert top.tone in ("emergency", "urgent")


def test_uncomplicated_headline_is_conservative_care_with_a_reassessment_time() -> None:
    top = headline(UNCOMPLICATED, VOCABULARY, {"symptom_duration_weeks": 1})
    assert top.text == "No imaging now: conservative care, reassess at 6 weeks"
    assert top.tone == "neutral"
    later = headline(UNCOMPLICATED, VOCABULARY, {"symptom_duration_weeks": 10})
    assert later.text.endswith("reassess if symptoms persist or change")


def test_green_only_when_requested_appropriate_and_safety_clear() -> None:
    routine = decision(appropriateness="usually_appropriate", urgency="routine",
                       requested="mri_lumbar_without_contrast",
                       plan=[proc("mri_lumbar_without_contrast", step=1)])
    assert headline(routine, VOCABULARY).tone == "ok"
    assert headline(routine, VOCABULARY).text == "MRI lumbar spine without contrast (routine)"
    info_only = dict(routine, safety={"status": "clear", "alerts": [
        {"code": "breastfeeding", "level": "info", "message": "No need to stop."}]})
    assert headline(info_only, VOCABULARY).tone == "ok"
    caution = dict(routine, safety={"status": "caution", "alerts": [
        {"code": "pregnancy", "level": "caution", "message": "Pregnant."}]})
    assert headline(caution, VOCABULARY).tone == "caution"
    maybe = dict(routine, appropriateness="may_be_appropriate")
    assert headline(maybe, VOCABULARY).tone == "neutral"


def test_plan_is_numbered_steps_with_or_between_alternatives() -> None:
    plan = build_plan(TRAUMA_STEPS, VOCABULARY)
    assert [s.number for s in plan.steps] == [1, 2, 3]
    assert plan.text == (
        "1. CT thoracic spine without contrast now → 2. MRI thoracic spine without contrast or "
        "MRI thoracic spine without and with contrast → 3. MRI cervical spine without and with "
        "contrast or MRI cervical spine without contrast")
    top = headline(TRAUMA_STEPS, VOCABULARY)
    assert top.text == ("Emergency: CT thoracic spine without contrast today, then MRI thoracic "
                        "spine without contrast")


def test_requested_study_not_in_plan_is_named_as_not_the_one() -> None:
    body = decision(appropriateness="usually_not_appropriate", urgency="routine",
                    requested="mri_thoracic_without_contrast",
                    plan=[proc("xray_thoracic", step=1)])
    assert headline(body, VOCABULARY).text == (
        "Radiographs, thoracic spine (routine) — not MRI thoracic spine without contrast")


def test_gadolinium_caution_marks_only_contrast_mri() -> None:
    body = decision(appropriateness="usually_appropriate", urgency="emergent",
                    requested="mri_lumbar_without_and_with_contrast",
                    plan=[proc("mri_lumbar_without_contrast", step=1),
                          proc("mri_lumbar_without_and_with_contrast", step=1)],
                    status="caution",
                    alerts=[{"code": "renal_gadolinium", "level": "caution", "message": "x"}])
    statuses = {i.code: i.status for i in build_plan(body, VOCABULARY).steps[0].items}
    assert statuses == {"mri_lumbar_without_contrast": "clear",
                        "mri_lumbar_without_and_with_contrast": "caution"}


def test_card_summary_fits_under_140_characters() -> None:
    top = headline(MR_UNSAFE, VOCABULARY)
    assert len(top.summary()) < 140
    assert len(top.summary(40)) == 40 and top.summary(40).endswith("…")


def test_handout_groups_come_back_signs_by_level_and_fills_placeholders() -> None:
    handout = build_handout(UNCOMPLICATED, VOCABULARY, {"emergency_number": "911"})
    assert handout is not None
    assert handout.headline.startswith("Your back pain")
    assert [g.level for g in handout.come_back] == ["emergency", "today", "week"]
    assert [i["sign"] for i in handout.come_back[0].items] == [
        "Numbness between your legs.", "New trouble starting to pee."]
    assert handout.come_back[0].items[1]["action"] == "Emergency: call 911 now."
    assert handout.plan_lines == () and handout.scan_blocks == ()
    assert handout.max_pages == 1


def test_handout_plan_in_plain_words_skips_contraindicated_mri() -> None:
    body = dict(MR_UNSAFE, patient_information=dict(
        UNCOMPLICATED["patient_information"],
        if_scan_booked={"ct_myelography": {"title": "If you are having a CT myelogram",
                                           "points": ["A thin needle goes into your back."]}}))
    handout = build_handout(body, VOCABULARY)
    assert handout is not None
    assert handout.plan_lines == ("You need: a CT myelogram of your lower back, today. This is "
                                  "a CT scan. First, dye goes into your spine through a thin "
                                  "needle.",)
    # the MRI texts give way: the headline follows the plan, the block explains the myelogram
    assert handout.headline == "You need a CT myelogram of your lower back, today."
    assert handout.scan_blocks[0].title == "If you are having a CT myelogram"
    assert "thin needle" in handout.scan_blocks[0].points[0]
    assert handout.max_pages == 2
    assert handout.safety_note.startswith("An MRI scan is not safe for you.")
    assert build_handout(UNCOMPLICATED, VOCABULARY).safety_note == ""


def test_no_handout_without_patient_information() -> None:
    assert build_handout(MR_UNSAFE_V1, VOCABULARY) is None


def test_presentation_is_pure() -> None:
    """No Flask, no storage, nothing above it: only the standard library and its own modules."""
    import ast
    from pathlib import Path

    package = PROJECT_ROOT / "referral_api" / "presentation"
    for path in Path(package).glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 1 or node.module in ("__future__", "collections.abc",
                                                          "dataclasses", "typing"), path
            elif isinstance(node, ast.Import):
                assert all(alias.name in ("re",) for alias in node.names), path
