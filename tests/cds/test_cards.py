"""Card and PAMA builders (pure): summary length, indicator rule, empties, link, suggestion."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from referral_api.cds import cards
from tests.cds.builders import service_request, walk_for_empty


def record(**changes: Any) -> dict[str, Any]:
    """A decision record shaped like the log's."""
    base: dict[str, Any] = {
        "decision_id": "6f1c0a4e-0000-4000-8000-000000000001",
        "region": "lumbar",
        "requested_procedure": {"code": "mri_lumbar_without_contrast", "cpt": ["72148"],
                                "rating": "usually_appropriate"},
        "appropriateness": "usually_appropriate",
        "urgency": "routine",
        "scenario": {"id": "lumbar.prior_surgery", "title": "Prior surgery",
                     "sources": ["ACR LBP V5"]},
        "recommended_procedures": [{"code": "mri_lumbar_without_contrast", "cpt": ["72148"],
                                    "rating": "usually_appropriate"}],
        "reasons": ["A reason."],
        "safety": {"status": "clear", "alerts": []},
        "would_change_if": [],
        "assumptions": [],
        "ruleset": {"id": "spine-imaging", "version": "2026.1.0", "sha256": "x"},
        "input": {"patient": {"age": 52, "sex": "male", "reference": "hmac-sha256:ab"},
                  "region": "lumbar", "requested_procedure": "mri_lumbar_without_contrast",
                  "symptom_duration_weeks": 8.0, "findings": ["prior_spine_surgery"],
                  "contraindications": [], "conservative_care_weeks": 0,
                  "intervention_candidate": False},
    }
    base.update(changes)
    return base


@pytest.mark.parametrize(("appropriateness", "urgency", "safety", "expected"), [
    ("usually_appropriate", "emergent", "clear", "critical"),
    ("usually_not_appropriate", "emergent", "clear", "critical"),
    ("usually_not_appropriate", "none", "clear", "warning"),
    ("usually_appropriate", "urgent", "contraindicated", "warning"),
    ("may_be_appropriate", "routine", "caution", "info"),
    ("not_covered", "none", "clear", "info"),
])
def test_indicator_rule(appropriateness, urgency, safety, expected):
    rec = record(appropriateness=appropriateness, urgency=urgency,
                 safety={"status": safety, "alerts": []})
    assert cards.indicator(rec) == expected


@pytest.mark.parametrize(("appropriateness", "pama"), [
    ("usually_appropriate", "appropriate"), ("may_be_appropriate", "appropriate"),
    ("usually_not_appropriate", "not-appropriate"), ("not_covered", "no-criteria-apply"),
    (None, "no-criteria-apply")])
def test_pama_rating(appropriateness, pama):
    assert cards.pama_rating(appropriateness) == pama


def test_summary_is_under_140_even_in_the_worst_case(vocabulary):
    longest = max(vocabulary.procedures.values(), key=lambda p: len(p.label))
    rec = record(requested_procedure={"code": longest.code, "cpt": list(longest.cpt),
                                      "rating": "not_covered"},
                 appropriateness="not_covered", urgency="emergent",
                 safety={"status": "contraindicated", "alerts": []})
    text = cards.summary(rec, vocabulary)
    assert len(text) < 140
    assert longest.label in text


def test_card_has_no_empty_fields_and_no_suggestion_when_same_study(vocabulary):
    card = cards.build_card(record(), service_request("72148"), vocabulary,
                            base_url="https://x.example")
    assert walk_for_empty(card) == []
    assert "suggestions" not in card and "overrideReasons" not in card
    assert card["uuid"] == record()["decision_id"]


def test_link_holds_derived_facts_but_not_assumed_ones(vocabulary):
    rec = record(assumptions=[{"field": "patient.age", "assumed": 40, "message": "m"}])
    params = parse_qsl(urlsplit(cards.build_card(
        rec, service_request(), vocabulary, base_url="https://x.example/")["links"][0]["url"]
    ).query)
    assert ("symptom_duration_weeks", "8") in params
    assert ("findings", "prior_spine_surgery") in params
    assert not any(k == "age" for k, _ in params)
    assert not any("hmac" in v for _, v in params)


def test_suggestion_needs_derived_findings_and_a_different_study(vocabulary):
    rec = record(recommended_procedures=[
        {"code": "xray_lumbar", "cpt": ["72100"], "rating": "usually_appropriate"}])
    order = service_request("72148")
    suggestion = cards.suggestion(rec, order, vocabulary)
    assert suggestion["actions"][0]["resource"]["code"]["coding"] == [
        {"system": "http://www.ama-assn.org/go/cpt", "code": "72100"}]
    assert order["code"]["coding"][0]["code"] == "72148"  # the original is not modified
    assert cards.suggestion(rec, order, vocabulary) == suggestion  # deterministic uuid
    assumed = record(recommended_procedures=rec["recommended_procedures"],
                     assumptions=[{"field": "findings", "assumed": "absent", "message": "m"}])
    assert cards.suggestion(assumed, order, vocabulary) is None
    assert cards.suggestion(record(recommended_procedures=[]), order, vocabulary) is None


def test_ct_myelography_suggestion_carries_both_cpt_codes(vocabulary):
    rec = record(recommended_procedures=[
        {"code": "ct_myelography_lumbar", "cpt": ["62284", "72132"], "rating": "may"}])
    suggestion = cards.suggestion(rec, service_request("72148"), vocabulary)
    codes = [c["code"] for c in suggestion["actions"][0]["resource"]["code"]["coding"]]
    assert codes == ["62284", "72132"]


def test_pama_action_replaces_stale_pama_extensions():
    order = service_request("72148")
    order["extension"] = [
        {"url": cards.PAMA_EXTENSION, "valueCodeableConcept": {"coding": [
            {"system": cards.PAMA_CODESYSTEM, "code": "appropriate"}]}},
        {"url": "http://example.org/other", "valueString": "kept"}]
    action = cards.pama_action(order, rating="not-appropriate", consult_id="abc",
                               auc_url="https://x/v1/rulesets/1", gcode=None)
    urls = [e["url"] for e in action["resource"]["extension"]]
    assert urls == ["http://example.org/other", cards.PAMA_EXTENSION, cards.PAMA_CONSULT_ID,
                    cards.PAMA_AUC_APPLIED]
    assert action["resource"]["extension"][1]["valueCodeableConcept"]["coding"][0][
        "code"] == "not-appropriate"
    assert len(order["extension"]) == 2  # the request's resource is untouched


def test_compact_and_response_body():
    assert cards.compact({"a": None, "b": "", "c": [], "d": {}, "e": [None, {"f": []}],
                          "g": 0, "h": False}) == {"g": 0, "h": False}
    assert cards.response_body([], []) == {"cards": []}


@pytest.mark.parametrize("urgency", ["emergent", "urgent"])
def test_no_conservative_care_next_to_an_emergency(vocabulary, urgency):
    # e.g. an injured child under 16: not covered, urgency by flag, no study listed.
    rec = record(appropriateness="not_covered", urgency=urgency, recommended_procedures=[])
    detail = cards.detail(rec, vocabulary)
    assert "conservative care" not in detail
    assert "specialist assessment" in detail
    assert "conservative care" in cards.detail(record(urgency="none",
                                                      recommended_procedures=[]), vocabulary)
