"""Criteria 2026.2.0 §10 ("unknown is not absent") in the derivation and on the card (pure).

The endpoint examples T38-T40 are in ``test_service_2026_2_0.py``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from referral_api.cds import cards
from referral_api.cds.fhir import (
    WHY_NOT_CODED,
    WHY_NOT_DERIVABLE,
    WHY_UNAVAILABLE,
    DraftOrder,
    Prefetch,
    classify_order,
    derive_request,
)
from tests.cds.builders import (
    ICD10CM,
    bundle,
    condition,
    days_ago,
    patient,
    service_request,
    today,
    walk_for_empty,
)

OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error"}]}


def derive(vocabulary, prefetch: dict[str, Any], order=None):
    order = order or service_request("72148")
    kind, procedure = classify_order(order, vocabulary)
    return derive_request(DraftOrder(order, order["id"], kind, procedure),
                          Prefetch.from_request(prefetch), vocabulary,
                          patient_reference="pat-1", today=today())


def not_assessed(derived) -> list[dict[str, Any]]:
    return [a for a in derived.assumptions if a["assumed"] == "not_assessed"]


# --- assumptions (§10.3) ---------------------------------------------------------------------


def test_every_red_flag_not_present_is_listed_in_vocabulary_order(vocabulary_v2):
    derived = derive(vocabulary_v2, {"patient": patient(), "conditions": bundle(
        condition("M54.50", onset=days_ago(10)), condition("C50.9", onset=days_ago(400)))})
    listed = not_assessed(derived)
    expected = [f.code for f in vocabulary_v2.red_flags() if f.code != "history_of_cancer"]
    assert [a["field"] for a in listed] == [f"findings.{c}" for c in expected]
    assert "findings.history_of_cancer" not in {a["field"] for a in listed}
    # red_flag false: never listed (criteria §10.2)
    for code in ("degenerative_changes_on_radiographs", "opll_on_imaging",
                 "cervicogenic_headache", "sacroiliac_radiographs_nondiagnostic",
                 "cspine_rule_low_risk", "inflammatory_back_pain"):
        assert f"findings.{code}" not in {a["field"] for a in listed}


def test_reason_wording_per_case(vocabulary_v2):
    derived = derive(vocabulary_v2, {"patient": patient(), "conditions": bundle(
        condition("M54.50", onset=days_ago(10)))})
    by_code = {a["field"].split(".", 1)[1]: a["message"] for a in not_assessed(derived)}
    assert by_code["saddle_anesthesia"] == (
        f"Saddle anaesthesia: {WHY_NOT_DERIVABLE}. Treated as absent for this rating; confirm.")
    assert by_code["urinary_retention"] == (
        f"Urinary retention: {WHY_NOT_CODED}. Treated as absent for this rating; confirm.")
    assert WHY_NOT_DERIVABLE == "no code for it in the record"
    assert WHY_NOT_CODED == "not among the active coded conditions"
    assert WHY_UNAVAILABLE == "conditions were not available to the service"
    for message in by_code.values():
        assert message.endswith(". Treated as absent for this rating; confirm.")


@pytest.mark.parametrize("conditions", [
    "missing", None, OUTCOME,
    {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": OUTCOME}]},
], ids=["missing", "null", "operation-outcome", "empty-with-outcome"])
def test_conditions_not_available(vocabulary_v2, conditions):
    prefetch: dict[str, Any] = {"patient": patient()}
    if conditions != "missing":
        prefetch["conditions"] = conditions
    derived = derive(vocabulary_v2, prefetch)
    by_code = {a["field"].split(".", 1)[1]: a["message"] for a in not_assessed(derived)}
    assert WHY_UNAVAILABLE in by_code["urinary_retention"]
    assert WHY_NOT_DERIVABLE in by_code["saddle_anesthesia"]  # still: no code exists
    assert derived.findings_assumed


def test_empty_bundle_means_no_active_conditions(vocabulary_v2):
    derived = derive(vocabulary_v2, {"patient": patient(),
                                     "conditions": {"resourceType": "Bundle", "entry": []}})
    by_code = {a["field"].split(".", 1)[1]: a["message"] for a in not_assessed(derived)}
    assert WHY_NOT_CODED in by_code["urinary_retention"]


def test_v1_vocabulary_lists_no_red_flags(vocabulary):
    derived = derive(vocabulary, {"patient": patient(), "conditions": bundle(
        condition("M54.50", onset=days_ago(10)))})
    assert not_assessed(derived) == []
    assert "days_since_injury" not in derived.request


def test_assumptions_keep_the_three_keys(vocabulary_v2):
    derived = derive(vocabulary_v2, {})
    for item in derived.assumptions:
        assert set(item) == {"field", "assumed", "message"}
        assert item["message"] and item["assumed"] not in (None, "", [])


# --- days_since_injury (§10.1) ---------------------------------------------------------------


def injury(code: str = "S32.010A", **dates: str) -> dict[str, Any]:
    return condition(code, ICD10CM, **dates)


def test_days_since_injury_from_the_most_recent_dated_injury(vocabulary_v2):
    derived = derive(vocabulary_v2, {"patient": patient(), "conditions": bundle(
        injury(recorded=days_ago(3)), injury("W19.XXXA", onset=days_ago(10)))})
    assert derived.request["days_since_injury"] == 3
    assert {"significant_trauma", "minor_trauma"} <= set(derived.request["findings"])
    assert "days_since_injury" in derived.derived_fields
    assert not [a for a in derived.assumptions if a["field"] == "days_since_injury"]


def test_injury_outside_the_window_is_ignored(vocabulary_v2):
    derived = derive(vocabulary_v2, {"patient": patient(), "conditions": bundle(
        injury(recorded=days_ago(400)))})
    assert "significant_trauma" not in derived.request["findings"]
    assert "days_since_injury" not in derived.request
    assert "findings.significant_trauma" in {a["field"] for a in not_assessed(derived)}


def test_undated_injury_counts_with_days_unknown(vocabulary_v2):
    derived = derive(vocabulary_v2, {"patient": patient(), "conditions": bundle(injury())})
    assert "significant_trauma" in derived.request["findings"]
    assert "days_since_injury" not in derived.request
    [note] = [a for a in derived.assumptions if a["field"] == "days_since_injury"]
    assert note["assumed"] == "0-7" and "7 days" in note["message"]


def test_injury_as_the_orders_reason_counts_with_days_unknown(vocabulary_v2):
    order = service_request("72131", reasons=[(ICD10CM, "W01.0XXA")])
    derived = derive(vocabulary_v2, {"patient": patient(), "conditions": bundle()}, order)
    assert "minor_trauma" in derived.request["findings"]
    assert [a["assumed"] for a in derived.assumptions
            if a["field"] == "days_since_injury"] == ["0-7"]


def test_other_windows(vocabulary_v2):
    cases = [("R50.9", 13, True), ("R50.9", 15, False),          # fever 14 d
             ("F10.129", 2, True), ("F10.129", 3, False),        # intoxication 2 d
             ("A41.9", 80, True), ("A41.9", 90, False),          # serious infection 84 d
             ("G82.20", 27, True), ("G82.20", 40, False)]        # paraplegia 28 d
    for code, days, present in cases:
        found = derive(vocabulary_v2, {"patient": patient(), "conditions": bundle(
            condition(code, onset=days_ago(days)))}).request["findings"]
        assert bool(found) is present, (code, days, found)


# --- cards (§10.4-10.5) ----------------------------------------------------------------------


def na(vocabulary, *codes: str) -> list[dict[str, Any]]:
    return [{"field": f"findings.{c}", "assumed": "not_assessed",
             "message": f"{vocabulary.findings[c].label}: {WHY_NOT_DERIVABLE}. "
                        "Treated as absent for this rating; confirm."} for c in codes]


def record(vocabulary, **changes: Any) -> dict[str, Any]:
    flags = [f.code for f in vocabulary.red_flags()]
    base: dict[str, Any] = {
        "decision_id": "6f1c0a4e-0000-4000-8000-000000000038",
        "region": "lumbar",
        "requested_procedure": {"code": "mri_lumbar_without_contrast", "cpt": ["72148"],
                                "rating": "usually_not_appropriate"},
        "appropriateness": "usually_not_appropriate",
        "urgency": "none",
        "scenario": {"id": "lumbar.uncomplicated", "title": "Uncomplicated low back pain",
                     "sources": ["ACR LBP V1"]},
        "recommended_procedures": [{"code": "xray_lumbar", "cpt": ["72100"], "step": 1,
                                    "rating": "usually_appropriate"}],
        "reasons": ["A reason."],
        "safety": {"status": "clear", "alerts": []},
        "would_change_if": [
            {"finding": c, "appropriateness": "usually_appropriate", "urgency": u}
            for c, u in (("radiculopathy", "none"), ("bilateral_radiculopathy", "emergent"),
                         ("progressive_neurologic_deficit", "emergent"),
                         ("severe_motor_deficit", "emergent"),
                         ("bilateral_leg_weakness", "emergent"),
                         ("myelopathy_signs", "emergent"), ("saddle_anesthesia", "emergent"),
                         ("urinary_retention", "emergent"), ("night_pain", "routine"),
                         ("fever", "urgent"))],
        "assumptions": na(vocabulary, *flags),
        "ruleset": {"id": "spine-imaging", "version": "2026.2.0", "sha256": "x"},
        "input": {"patient": {"age": 40, "reference": "hmac-sha256:ab"},
                  "region": "lumbar", "requested_procedure": "mri_lumbar_without_contrast",
                  "symptom_duration_weeks": 1.4, "findings": [], "contraindications": [],
                  "conservative_care_weeks": 0, "intervention_candidate": False},
    }
    base.update(changes)
    return base


def card_of(vocabulary, rec) -> dict[str, Any]:
    card = cards.build_card(rec, service_request("72148"), vocabulary,
                            base_url="https://cds.example.org")
    assert walk_for_empty(card) == []
    assert len(card["summary"]) < 140
    return card


def test_rfna_is_unassessed_and_changes_urgency(vocabulary_v2):
    rec = record(vocabulary_v2)
    assert cards.rfna_codes(rec, vocabulary_v2) == [
        "bilateral_radiculopathy", "progressive_neurologic_deficit", "severe_motor_deficit",
        "bilateral_leg_weakness", "myelopathy_signs", "saddle_anesthesia",
        "urinary_retention", "fever"]   # not radiculopathy (urgency none), not night pain


def test_una_card_on_recorded_data(vocabulary_v2):
    card = card_of(vocabulary_v2, record(vocabulary_v2))
    assert card["indicator"] == "warning"
    assert card["summary"] == ("MRI lumbar spine without contrast: usually not appropriate on "
                               "recorded data — confirm red flags")
    first = card["detail"].split("\n")[0]
    assert first.startswith("**Confirm red flags before relying on this.** Not assessed from "
                            "the record: Radicular symptoms in both legs, progressive "
                            "neurological deficit, severe motor deficit, weakness of both "
                            "legs, signs of myelopathy, saddle anaesthesia, and 2 more. "
                            "[Record them in the form](https://cds.example.org/?")
    assert first.endswith(") — the answer may change to urgent or emergency imaging.")
    assert "suggestions" not in card
    assert card["overrideReasons"][0] == {
        "system": "https://example.org/cds/override-reasons", "code": "red-flag-not-in-record",
        "display": "A red flag is present that is not in the record"}
    link = card["links"][0]["url"]
    assert f"({link})" in first
    params = parse_qsl(urlsplit(link).query)
    assert ("confirm", "bilateral_radiculopathy,progressive_neurologic_deficit,"
            "severe_motor_deficit,bilateral_leg_weakness,myelopathy_signs,saddle_anesthesia,"
            "urinary_retention,fever") in params
    assert ("cds_decision", "6f1c0a4e-0000-4000-8000-000000000038") in params
    # The not-assessed red flags are grouped under their reason, not 40 separate lines.
    assert "**Assumed: red flags not assessed**" in card["detail"]
    assert card["detail"].count("No code for it in the record:") == 1


def test_una_card_adds_age_and_duration_when_assumed(vocabulary_v2):
    rec = record(vocabulary_v2)
    rec["assumptions"] = [
        {"field": "patient.age", "assumed": 40, "message": "Age not derivable (x); ..."},
        {"field": "symptom_duration_weeks", "assumed": 2,
         "message": "Symptom duration not derivable (x); assumed under 4 weeks (2 weeks)."},
        *na(vocabulary_v2, "fever")]
    assert cards.rfna(rec, vocabulary_v2) == ["Fever", "age", "how long symptoms have lasted"]
    first = card_of(vocabulary_v2, rec)["detail"].split("\n")[0]
    assert "Not assessed from the record: Fever, age, how long symptoms have lasted. [" in first


def test_assumed_age_alone_makes_a_una_answer_rest_on_recorded_data(vocabulary_v2):
    # criteria §10.4: RFNA also holds "age" when it was assumed and the answer is UNA.
    rec = record(vocabulary_v2, assumptions=[
        {"field": "patient.age", "assumed": 40, "message": "Age not derivable (x); ..."}])
    card = card_of(vocabulary_v2, rec)
    assert card["summary"].endswith("on recorded data — confirm red flags")
    assert "Not assessed from the record: age. [Record them" in card["detail"]
    params = dict(parse_qsl(urlsplit(card["links"][0]["url"]).query))
    assert "confirm" not in params and params["cds_decision"] == rec["decision_id"]
    assert card["overrideReasons"][0]["code"] == "red-flag-not-in-record"
    # Not for an appropriate answer: age and duration join RFNA only for UNA.
    ua = record(vocabulary_v2, appropriateness="usually_appropriate", urgency="routine",
                assumptions=rec["assumptions"])
    assert cards.rfna(ua, vocabulary_v2) == []


def test_ua_card_on_recorded_data_gets_the_suffix(vocabulary_v2):
    rec = record(vocabulary_v2, appropriateness="may_be_appropriate", urgency="routine")
    card = card_of(vocabulary_v2, rec)
    assert card["summary"] == "MRI lumbar spine without contrast: may be appropriate " \
                              "(on recorded data)"
    assert card["indicator"] == "info"
    first = card["detail"].split("\n")[0]
    assert first.startswith("Not assessed from the record: Radicular symptoms in both legs, ")
    assert "and 2 more" not in first and "fever" in first
    assert "[confirm in the form](https://cds.example.org/?" in first
    assert "overrideReasons" not in card and "suggestions" not in card


def test_emergent_card_is_unchanged(vocabulary_v2):
    rec = record(vocabulary_v2, appropriateness="usually_appropriate", urgency="emergent")
    card = card_of(vocabulary_v2, rec)
    assert card["indicator"] == "critical"
    assert card["summary"] == ("MRI lumbar spine without contrast: usually appropriate "
                               "(emergent: image today)")
    assert card["detail"].startswith("**Usually appropriate**")
    assert "**Assumed: red flags not assessed**" in card["detail"]  # listed under assumptions


def test_no_rfna_means_the_v1_card(vocabulary_v2):
    rec = record(vocabulary_v2, assumptions=na(vocabulary_v2, "night_pain"))
    card = card_of(vocabulary_v2, rec)
    assert card["summary"] == "MRI lumbar spine without contrast: usually not appropriate"
    assert all(r["code"] != "red-flag-not-in-record" for r in card["overrideReasons"])
    assert "confirm" not in dict(parse_qsl(urlsplit(card["links"][0]["url"]).query))
    assert card["suggestions"][0]["actions"][0]["resource"]["code"]["coding"][0]["code"] == \
        "72100"


def test_summary_under_140_for_every_procedure(vocabulary_v2):
    for procedure in vocabulary_v2.procedures.values():
        for appropriateness, urgency in (("usually_not_appropriate", "none"),
                                         ("usually_appropriate", "urgent"),
                                         ("may_be_appropriate", "routine")):
            rec = record(vocabulary_v2, appropriateness=appropriateness, urgency=urgency,
                         requested_procedure={"code": procedure.code, "cpt": list(procedure.cpt),
                                              "rating": appropriateness},
                         safety={"status": "contraindicated", "alerts": []})
            text = cards.summary(rec, vocabulary_v2)
            assert len(text) < 140
            assert text.endswith(("confirm red flags", "(on recorded data)"))
