"""The one headline on the CDS Hooks card (referral_api/cds/cards.py uses
referral_api.presentation): in the detail right after the verdict, never "conservative care"
next to an emergency, and a link to the patient handout once the answer stands."""

from __future__ import annotations

from typing import Any

import pytest

from referral_api.cds.cards import build_card
from tests.cds.builders import service_request

BASE = "https://referral.example.org"


def card_for(app: Any, body: dict[str, Any], assumptions: list[dict[str, Any]] | None = None
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    svc = app.extensions["referral_api"]
    request = svc.request_schema.load(body)
    record, _ = svc.decisions.decide(request, channel="cds-hooks", client="ehr",
                                     assumptions=assumptions or ())
    vocabulary = svc.registry.vocabulary_for(record["ruleset"]["version"])
    return build_card(record, service_request(), vocabulary, base_url=BASE), record


@pytest.fixture
def app_now(make_app):
    return make_app(EVALUATION_TIME="2026-12-01T12:00:00Z")


@pytest.fixture
def app_2026_1(make_app):
    return make_app(EVALUATION_TIME="2026-06-01T12:00:00Z")


def test_mr_unsafe_card_carries_the_headline_and_the_handout_link(app_now) -> None:
    card, record = card_for(app_now, {
        "patient": {"age": 50}, "region": "lumbar", "symptom_duration_weeks": 0.5,
        "findings": ["urinary_retention"], "contraindications": ["mr_unsafe_implant"]})
    lines = card["detail"].split("\n")
    assert lines[0].startswith("**Usually appropriate**")
    assert lines[2].startswith("**Emergency: MRI contraindicated (MR Unsafe implant): ")
    handout = [link for link in card["links"] if link["label"] == "Patient handout"]
    assert handout == [{"label": "Patient handout", "type": "absolute",
                        "url": f"{BASE}/decisions/{record['decision_id']}/patient"}]
    assert len(card["summary"]) < 140  # the contract's study + verdict summary is kept


def test_emergent_card_never_says_conservative_care(app_2026_1) -> None:
    # a 2026.1.0 child with cauda equina signs: not covered, emergent, no study listed
    card, record = card_for(app_2026_1, {
        "patient": {"age": 10}, "region": "lumbar", "symptom_duration_weeks": 1,
        "findings": ["saddle_anesthesia", "urinary_retention"]})
    assert record["urgency"] == "emergent" and not record["recommended_procedures"]
    assert "conservative care" not in card["detail"].lower()
    assert "same-day specialist assessment" in card["detail"]
    # 2026.1.0 has no patient information: no handout link
    assert [link["label"] for link in card["links"]] == ["Review in the referral form"]


def test_no_handout_link_while_red_flags_await_confirmation(app_now) -> None:
    from referral_api.cds.cards import rfna_case

    svc = app_now.extensions["referral_api"]
    vocabulary = svc.registry.vocabulary_for("2026.2.0")
    assumptions = [{"field": f"findings.{code}", "assumed": "not_assessed",
                    "message": f"{finding.label}: no code for it in the record. Treated as "
                               "absent for this rating; confirm."}
                   for code, finding in vocabulary.findings.items() if finding.red_flag]
    card, record = card_for(app_now, {"patient": {"age": 40}, "region": "lumbar",
                                      "symptom_duration_weeks": 1.5}, assumptions)
    assert rfna_case(record, vocabulary) == "una"
    assert "**On recorded data only: No imaging now" in card["detail"]
    assert all(link["label"] != "Patient handout" for link in card["links"])
