"""Unit tests of referral_api.clinical.readability (pure: no app, no database)."""

from __future__ import annotations

import copy
import subprocess
import sys
from importlib import metadata

import pytest

from referral_api.clinical import readability
from referral_api.clinical.readability import (
    DEFAULT_PLACEHOLDERS,
    check_patient_information,
    check_scenario,
    grade,
    placeholders_in,
    substitute,
)

HARD = (
    "Lumbosacral radiculopathy secondary to intervertebral disc herniation necessitates "
    "multidisciplinary evaluation, particularly when conservative management demonstrates "
    "insufficient therapeutic efficacy."
)
EASY = "Keep moving. Walk a little more each day. Use heat on your back."

ENTRY = {
    "headline": "Your back pain is very likely to get better without a scan.",
    "what_is_happening": "Most back pain comes from the muscles of the back. It gets better.",
    "why_this_decision": "Your care team found no warning signs. A scan would not help now.",
    "about_the_scan": "An MRI shows bones and discs. It does not treat pain.",
    "meanwhile": ["Keep moving.", "Walk a little more each day."],
    "come_back_if": [
        {
            "sign": "New trouble starting to pee.",
            "level": "emergency",
            "action": "Emergency: call {emergency_number} or go to the emergency department now.",
        },
        {"sign": "Fever.", "level": "today", "action": "Get seen today."},
    ],
    "questions_to_ask": ["Do I need this test?", "What are the risks?", "What if I wait?"],
    "if_scan_booked": None,
}
DOC = {
    "locale": "en-US",
    "placeholders": dict(DEFAULT_PLACEHOLDERS),
    "scenarios": {"lumbar.uncomplicated": ENTRY},
}


def _doc(**changes):
    doc = copy.deepcopy(DOC)
    doc["scenarios"]["lumbar.uncomplicated"].update(changes)
    return doc


# -- grade ----------------------------------------------------------------------------------------


def test_a_known_hard_sentence_is_above_grade_8():
    assert grade(HARD) > 8.0
    assert grade(HARD) > 16.0  # far above, not borderline


def test_plain_sentences_are_below_grade_8():
    assert grade(EASY) < 8.0


def test_grade_is_the_textstat_flesch_kincaid_grade():
    import textstat

    assert grade(EASY) == pytest.approx(textstat.flesch_kincaid_grade(EASY))


def test_placeholders_are_measured_as_their_defaults():
    text = "Call {emergency_number} now."
    assert grade(text) == pytest.approx(grade("Call 911 now."))
    # A long value changes the grade: the value, not the name, is measured.
    long_value = {"emergency_number": "the interdisciplinary neurosurgical coordination office"}
    assert grade(text, long_value) > grade(text)


def test_substitute_leaves_unknown_names_alone():
    assert substitute("{a} and {b}", {"a": "1"}) == "1 and {b}"
    assert placeholders_in("Call {emergency_number} at {fever_threshold}") == [
        "emergency_number",
        "fever_threshold",
    ]


def test_textstat_is_the_pinned_version():
    # 0.7.10+ loads NLTK data at run time and fails offline.
    assert metadata.version("textstat") == "0.7.8"


def test_grade_works_without_network_or_nltk():
    """textstat 0.7.8 needs no downloaded data: grading works with NLTK absent."""
    code = (
        "import sys; sys.modules['nltk'] = None\n"
        "from referral_api.clinical.readability import grade\n"
        "print(grade('Keep moving and walk a little more each day.'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 8.0


# -- check_patient_information ------------------------------------------------------------------


def test_a_good_document_has_no_problems():
    assert check_patient_information(DOC, ["lumbar.uncomplicated"]) == []


def test_missing_and_extra_scenarios_are_reported():
    problems = check_patient_information(DOC, ["lumbar.uncomplicated", "lumbar.cauda_equina"])
    assert problems == ["lumbar.cauda_equina: no patient information for this scenario"]
    problems = check_patient_information(DOC, [])
    assert problems == ["lumbar.uncomplicated: patient information for an unknown scenario"]


def test_missing_and_unknown_fields_are_reported():
    doc = _doc(colour="blue")
    del doc["scenarios"]["lumbar.uncomplicated"]["meanwhile"]
    problems = check_patient_information(doc, ["lumbar.uncomplicated"])
    assert "lumbar.uncomplicated: missing field(s) meanwhile" in problems
    assert "lumbar.uncomplicated: unknown field(s) colour" in problems


def test_wrong_types_are_reported():
    problems = check_patient_information(
        _doc(headline=None, meanwhile="Keep moving.", if_scan_booked=3),
        ["lumbar.uncomplicated"],
    )
    assert "lumbar.uncomplicated.headline: must be a string" in problems
    assert "lumbar.uncomplicated.meanwhile: must be a non-empty list of strings" in problems
    assert "lumbar.uncomplicated.if_scan_booked: must be a string or null" in problems


def test_about_the_scan_and_if_scan_booked_may_be_null():
    assert (
        check_patient_information(
            _doc(about_the_scan=None, if_scan_booked=None), ["lumbar.uncomplicated"]
        )
        == []
    )


def test_unknown_level_and_wrong_action_phrase_are_reported():
    come_back = [
        {"sign": "Fever.", "level": "soon", "action": "Get seen today."},
        {"sign": "Pain at night.", "level": "week", "action": "Get seen today."},
        {"sign": "Fever.", "level": "today"},
    ]
    problems = check_patient_information(_doc(come_back_if=come_back), ["lumbar.uncomplicated"])
    where = "lumbar.uncomplicated.come_back_if"
    assert f"{where}[0]: unknown level 'soon' (emergency, today or week)" in problems
    assert (
        f"{where}[1].action: a 'week' action begins with 'See your doctor within a week'"
        in problems
    )
    assert f"{where}[2]: missing action" in problems


def test_unknown_placeholder_is_reported():
    problems = check_patient_information(
        _doc(headline="Call {ambulance_number} if worse."), ["lumbar.uncomplicated"]
    )
    assert "lumbar.uncomplicated.headline: unknown placeholder {ambulance_number}" in problems


def test_a_declared_extra_placeholder_is_allowed():
    doc = _doc(headline="Call {clinic_phone} if worse.")
    doc["placeholders"]["clinic_phone"] = "555 0100"
    assert check_patient_information(doc, ["lumbar.uncomplicated"]) == []


def test_a_field_above_the_grade_is_reported():
    problems = check_patient_information(_doc(about_the_scan=HARD), ["lumbar.uncomplicated"])
    assert any(
        p.startswith("lumbar.uncomplicated.about_the_scan: grade ") and "above 8" in p
        for p in problems
    ), problems


def test_each_list_item_is_graded_on_its_own():
    problems = check_patient_information(
        _doc(meanwhile=["Keep moving.", HARD]), ["lumbar.uncomplicated"]
    )
    graded = [p for p in problems if " grade " in p]
    assert len(graded) == 1 and graded[0].startswith("lumbar.uncomplicated.meanwhile[1]: grade")


def test_a_come_back_item_is_graded_as_sign_and_action_together():
    item = {"sign": HARD, "level": "today", "action": "Get seen today."}
    problems = check_patient_information(_doc(come_back_if=[item]), ["lumbar.uncomplicated"])
    assert any(p.startswith("lumbar.uncomplicated.come_back_if[0]: grade") for p in problems)


def test_max_grade_is_a_parameter():
    assert check_patient_information(DOC, ["lumbar.uncomplicated"], max_grade=30.0) == []
    assert check_patient_information(DOC, ["lumbar.uncomplicated"], max_grade=-5.0) != []


def test_conservative_care_wording_is_refused():
    problems = check_patient_information(
        _doc(why_this_decision="You need conservative care. Rest is good."),
        ["lumbar.uncomplicated"],
    )
    assert "lumbar.uncomplicated.why_this_decision: forbidden wording 'conservative care'" in (
        problems
    )


def test_long_headlines_and_sentences_are_reported():
    words = " ".join(["word"] * 16) + "."
    problems = check_scenario("x", {**ENTRY, "headline": words}, DEFAULT_PLACEHOLDERS, 99)
    assert "x.headline: 16 words (at most 15)" in problems
    long_sentence = " ".join(["walk"] * 21) + ". Rest."
    problems = check_scenario(
        "x", {**ENTRY, "what_is_happening": long_sentence}, DEFAULT_PLACEHOLDERS, 99
    )
    assert any(p.startswith("x.what_is_happening: sentence of 21 words") for p in problems)


def test_sentence_and_item_counts_follow_section_12_1():
    problems = check_scenario(
        "x",
        {**ENTRY, "what_is_happening": "One sentence only.", "questions_to_ask": ["Why?"]},
        DEFAULT_PLACEHOLDERS,
        99,
    )
    assert "x.what_is_happening: 1 sentence(s) (§12.1: 2 to 4)" in problems
    assert "x.questions_to_ask: 1 item(s) (§12.1: 3 to 5)" in problems


def test_document_level_shape_is_checked():
    assert check_patient_information([], []) == [
        "patient information: the document must be a mapping"
    ]
    problems = check_patient_information({"placeholders": {"a": 1}, "scenarios": []}, [])
    assert "patient information: 'locale' must be a non-empty string" in problems
    assert "patient information: 'placeholders' must map names to default strings" in problems
    assert "patient information: 'scenarios' must map scenario ids to entries" in problems


def test_the_module_is_pure():
    """clinical/ imports nothing from Flask or storage (GUIDE: pure core)."""
    source = readability.__file__
    with open(source, encoding="utf-8") as handle:
        text = handle.read()
    for forbidden in ("flask", "referral_api.store", "sqlite", "referral_api.web"):
        assert f"import {forbidden}" not in text.lower()
        assert f"from {forbidden}" not in text.lower()
