"""The patient handout page (``/decisions/{id}/patient``) on logged records: one with
2026.2.0's ``patient_information`` (written to the log as the engine would), grouped signs,
placeholders filled, no code or raw placeholder on the page, and the readability grade of what
the page adds itself."""

from __future__ import annotations

import re
from typing import Any

import pytest

from referral_api.store.sqlite.log import NewDecision
from tests.web.pages import sign_in
from tests.web.test_presentation import MR_UNSAFE, UNCOMPLICATED


@pytest.fixture
def app(make_app):
    """The app with a configured emergency number (a deployment's own)."""
    return make_app(EMERGENCY_NUMBER="112")


def log_decision(app: Any, output: dict[str, Any]) -> str:
    """Append ``output`` as a form decision (the page reads records, whatever made them)."""
    body = {k: v for k, v in output.items() if k != "decision_id"}
    body["ruleset"] = {"id": "spine-imaging", "version": "2026.2.0", "sha256": "0" * 64}
    body["region"] = "lumbar"
    record, _ = app.extensions["referral_api"].log.append(NewDecision(
        channel="form", client="test", ordering_clinician=None, patient_hash=None,
        input={"patient": {"age": 40}, "region": "lumbar", "symptom_duration_weeks": 1},
        output=body, ruleset_version="2026.2.0", ruleset_sha256="0" * 64,
        engine_version="test", latency_ms=1.0))
    return record["decision_id"]


def test_handout_page_sections_and_grouped_signs(web_app, browser, keys) -> None:
    decision_id = log_decision(web_app, UNCOMPLICATED)
    sign_in(browser, keys["clinician"])
    response = browser.get(f"/decisions/{decision_id}/patient")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="handout-headline">Your back pain is very likely' in html
    for heading in ("What is happening", "Why this decision", "About the scan",
                    "What to do now", "When to get help", "Questions you can ask"):
        assert f">{heading}</h2>" in html
    order = [html.index(h) for h in ("Go to the emergency department now if",
                                     "Get seen today if", "See your doctor within a week if")]
    assert order == sorted(order)
    assert "{emergency_number}" not in html and "call 112 now" in html
    assert "What happens next" not in html  # no study planned, no plan block
    assert "lumbar.uncomplicated" not in html


def test_handout_page_for_mr_unsafe_emergency_puts_signs_and_safety_first(web_app, browser,
                                                                          keys) -> None:
    output = dict(MR_UNSAFE, patient_information=dict(
        UNCOMPLICATED["patient_information"], if_scan_booked="Before an MRI, you fill in a "
        "safety form."))
    decision_id = log_decision(web_app, output)
    sign_in(browser, keys["clinician"])
    html = browser.get(f"/decisions/{decision_id}/patient").get_data(as_text=True)
    assert html.index("An MRI scan is not safe for you") < html.index("What happens next")
    assert html.index("When to get help") < html.index("What is happening")
    assert "a CT myelogram" in html and "today" in html
    assert "If you are having a CT myelogram</h2>" in html
    assert "Before an MRI" not in html  # the scenario's MRI text is not shown


def test_text_the_handout_adds_is_grade_8_or_below() -> None:
    """The plan lines and the safety note are ours, so they pass the same check as the rule
    files' texts (Flesch-Kincaid grade <= 8, textstat 0.7.8)."""
    import textstat

    from referral_api.clinical.vocabulary import load_vocabulary
    from referral_api.config import PROJECT_ROOT
    from referral_api.presentation import build_handout

    vocabulary = load_vocabulary(PROJECT_ROOT / "rules" / "vocabulary.yaml")
    output = dict(MR_UNSAFE, patient_information=UNCOMPLICATED["patient_information"])
    handout = build_handout(output, vocabulary)
    assert handout is not None
    texts = [*handout.plan_lines, handout.safety_note, handout.headline,
             *(p for b in handout.scan_blocks for p in b.points),
             *(heading for _level, heading in
               (("e", "Go to the emergency department now if"), ("t", "Get seen today if"),
                ("w", "See your doctor within a week if")))]
    for text in texts:
        assert textstat.flesch_kincaid_grade(text) <= 8.0, (text,
                                                            textstat.flesch_kincaid_grade(text))
    assert re.search(r"\bCT myelogram\b", handout.plan_lines[0])


def test_every_plan_line_is_grade_8_or_below() -> None:
    """Every study of both vocabularies, at every urgency, first step and later step."""
    import textstat

    from referral_api.clinical.vocabulary import load_vocabulary
    from referral_api.config import PROJECT_ROOT
    from referral_api.presentation.handout import patient_step_words
    from referral_api.presentation.plan import build_plan

    for path in (PROJECT_ROOT / "rules" / "vocabulary.yaml",
                 PROJECT_ROOT / "rules" / "spine-imaging" / "2026.2.0" / "vocabulary.yaml"):
        vocabulary = load_vocabulary(path)
        codes = list(vocabulary.procedures)
        for urgency in ("emergent", "urgent", "routine"):
            for first, second in zip(codes, codes[1:] + codes[:1], strict=True):
                decision = {"urgency": urgency, "safety": {"status": "clear", "alerts": []},
                            "recommended_procedures": [
                                {"code": first, "rating": "usually_appropriate", "step": 1},
                                {"code": second, "rating": "usually_appropriate", "step": 2}]}
                for line in patient_step_words(build_plan(decision, vocabulary)):
                    assert "_" not in line and textstat.flesch_kincaid_grade(line) <= 8.0, line


def test_every_2026_2_scenario_has_a_handout_and_a_headline(web_app) -> None:
    """Each embedded test request of 2026.2.0 (a match for every scenario) gives a handout
    whose added text is readable, and a headline that never pairs conservative care with an
    emergent or urgent answer; a contraindication never yields a green headline."""
    import textstat

    from referral_api.presentation import build_handout, headline

    svc = web_app.extensions["referral_api"]
    ruleset = svc.registry.get("2026.2.0")
    vocabulary = svc.registry.vocabulary_for("2026.2.0")
    from referral_api.clinical import engine

    seen: set[str] = set()
    for case in ruleset.tests:
        request = svc.request_schema.load(dict(case.request))
        output = engine.evaluate(request, ruleset, vocabulary)
        seen.add(output["scenario"]["id"])
        handout = build_handout(output, vocabulary, {"emergency_number": "911"})
        assert handout is not None, case.name
        for line in (*handout.plan_lines, handout.safety_note, handout.headline,
                     *(p for b in handout.scan_blocks for p in b.points)):
            if line:
                assert textstat.flesch_kincaid_grade(line) <= 8.0, line
        top = headline(output, vocabulary, request)
        if output["urgency"] in ("emergent", "urgent"):
            assert "conservative care" not in top.text, (case.name, top.text)
        if output["safety"]["status"] != "clear" or output["appropriateness"] != \
                "usually_appropriate":
            assert not top.is_green, (case.name, top.text)
    scenarios = {s.id for rules in ruleset.regions.values() for s in rules.scenarios}
    assert seen == scenarios
