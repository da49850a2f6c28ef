"""FHIR R4 → decision facts: code mapping, activity and recency rules, prefetch degradation."""

from __future__ import annotations

from typing import Any

import pytest

from referral_api.cds.fhir import (
    ASSUMED_AGE,
    ASSUMED_DURATION_WEEKS,
    DraftOrder,
    Prefetch,
    age_on,
    classify_order,
    derive_request,
    draft_orders,
    newest_egfr,
    parse_fhir_date,
)
from tests.cds.builders import (
    CPT,
    ICD10CM,
    ICD10WHO,
    LOINC,
    SNOMED,
    bundle,
    condition,
    days_ago,
    egfr_observation,
    patient,
    service_request,
    today,
)


def derive(vocabulary, *, conditions=None, order=None, prefetch: dict | None = None, **kw):
    """derive_request on a lumbar MRI order with the given conditions prefetch."""
    order = order or service_request("72148")
    kind, procedure = classify_order(order, vocabulary)
    assert kind == "spine"
    data: dict[str, Any] = {"patient": patient()} if prefetch is None else dict(prefetch)
    if conditions is not None:
        data["conditions"] = bundle(*conditions)
    return derive_request(DraftOrder(order, order["id"], kind, procedure),
                          Prefetch.from_request(data), vocabulary,
                          patient_reference="pat-1", today=today(), **kw)


def findings_of(vocabulary, *conditions, **kw) -> list[str]:
    return derive(vocabulary, conditions=list(conditions), **kw).request["findings"]


def contraindications_of(vocabulary, *conditions) -> list[str]:
    return derive(vocabulary, conditions=list(conditions)).request["contraindications"]


# --- findings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "system", "finding"), [
    ("M54.16", ICD10CM, "radiculopathy"),     # prefix M54.1
    ("M54.16", ICD10WHO, "radiculopathy"),    # the WHO URI is accepted too
    ("M5416", ICD10CM, "radiculopathy"),      # dot ignored
    ("m51.17", ICD10CM, "radiculopathy"),     # case ignored
    ("C79.51", ICD10CM, "history_of_cancer"),  # the whole C chapter
    ("C50.911", ICD10WHO, "history_of_cancer"),
    ("Z85.3", ICD10CM, "history_of_cancer"),
    ("G95.20", ICD10CM, "myelopathy_signs"),
    ("R50.9", ICD10CM, "fever"),
    ("B20", ICD10CM, "immunosuppression"),
    ("V43.52XA", ICD10CM, "significant_trauma"),
    ("M81.0", ICD10CM, "osteoporosis"),
    ("128196005", SNOMED, "radiculopathy"),
    ("228388006", SNOMED, "iv_drug_use"),
    ("363346000", SNOMED, "history_of_cancer"),
])
def test_condition_codes_map_to_findings(vocabulary, code, system, finding):
    assert finding in findings_of(vocabulary, condition(code, system))


@pytest.mark.parametrize(("code", "system"), [
    ("1281960051", SNOMED),  # SNOMED is exact: no prefix matching
    ("12819600", SNOMED),
    ("M54", ICD10CM),        # shorter than the listed prefix M54.1
    ("D48.0", ICD10CM),      # a D neoplasm is not the C chapter
    ("M54.16", "http://example.org/local-codes"),
])
def test_non_matching_codes_give_no_finding(vocabulary, code, system):
    assert findings_of(vocabulary, condition(code, system)) == []


def test_inactive_and_refuted_conditions_are_ignored(vocabulary):
    assert findings_of(vocabulary, condition("C50.9", clinical="resolved")) == []
    assert findings_of(vocabulary, condition("C50.9", clinical="inactive")) == []
    assert findings_of(vocabulary, condition("C50.9", clinical="remission")) == []
    assert findings_of(vocabulary, condition("C50.9", verification="refuted")) == []
    assert findings_of(vocabulary, condition("C50.9", verification="entered-in-error")) == []
    for status in ("active", "recurrence", "relapse", None):
        assert findings_of(vocabulary, condition("C50.9", clinical=status)) == [
            "history_of_cancer"], status


def test_cauda_equina_findings_only_from_recent_conditions(vocabulary):
    old = condition("R32", onset=days_ago(400), recorded=days_ago(400))
    assert findings_of(vocabulary, old) == []
    recent_onset = condition("R32", onset=days_ago(10))
    assert findings_of(vocabulary, recent_onset) == ["bowel_or_bladder_incontinence"]
    # onset[x], else recordedDate (criteria 2026.2.0 §10.1): an old onset is not made recent
    # by a recent recording; without an onset the recorded date decides.
    old_onset = condition("R33.9", onset=days_ago(400), recorded=days_ago(3))
    assert findings_of(vocabulary, old_onset) == []
    recent_record = condition("R33.9", recorded=days_ago(3))
    assert findings_of(vocabulary, recent_record) == ["urinary_retention"]
    edge = condition("267064002", SNOMED, onset=days_ago(29))
    assert findings_of(vocabulary, edge) == []
    assert findings_of(vocabulary, condition("267064002", SNOMED, onset=days_ago(28))) == [
        "urinary_retention"]


def test_undated_condition_counts_as_current(vocabulary):
    # Unknown is not absent (criteria 2026.2.0 §10.1): a windowed finding coded without any
    # date counts; only a date outside the window removes it.
    assert findings_of(vocabulary, condition("R33.9")) == ["urinary_retention"]


def test_old_condition_keeps_its_other_findings(vocabulary):
    # The recency rule removes only the cauda equina findings, not the rest.
    found = findings_of(vocabulary, condition("R32", onset=days_ago(400)),
                        condition("M54.16", onset=days_ago(400)))
    assert found == ["radiculopathy"]


@pytest.mark.parametrize(("code", "system"), [
    ("G83.4", ICD10CM), ("G834", ICD10WHO), ("192970008", SNOMED), ("12454008", SNOMED)])
def test_cauda_equina_diagnosis_maps_to_three_findings(vocabulary, code, system):
    found = findings_of(vocabulary, condition(code, system, onset=days_ago(1)))
    assert found == ["saddle_anesthesia", "urinary_retention", "bowel_or_bladder_incontinence"]
    assert findings_of(vocabulary, condition(code, system, onset=days_ago(365))) == []


def test_reason_codes_count_and_duplicates_count_once(vocabulary):
    order = service_request("72148", reasons=[(ICD10CM, "M54.17"), (SNOMED, "128196005"),
                                              (ICD10CM, "R33.9")])
    derived = derive(vocabulary, order=order,
                     conditions=[condition("M51.16", onset=days_ago(30))])
    # radiculopathy from a Condition and two reasons: once; R33 as the order's reason counts.
    assert derived.request["findings"] == ["radiculopathy", "urinary_retention"]


# --- contraindications -------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "system", "expected"), [
    ("Z33.1", ICD10CM, "pregnancy"),
    ("O26.891", ICD10CM, "pregnancy"),
    ("77386006", SNOMED, "pregnancy"),
    ("Z99.2", ICD10CM, "dialysis"),
    ("N18.6", ICD10CM, "dialysis"),
    ("46177005", SNOMED, "dialysis"),
    ("N17.9", ICD10CM, "acute_kidney_injury"),
    ("19887002", SNOMED, "severe_claustrophobia"),
])
def test_contraindications_from_conditions(vocabulary, code, system, expected):
    assert contraindications_of(vocabulary, condition(code, system)) == [expected]


def test_inactive_pregnancy_is_ignored(vocabulary):
    assert contraindications_of(vocabulary, condition("Z33.1", clinical="resolved")) == []


def test_implants_are_always_an_assumption(vocabulary):
    derived = derive(vocabulary, conditions=[condition("M54.5")])
    implant = [a for a in derived.assumptions if "Implants" in a["message"]]
    assert len(implant) == 1 and implant[0]["field"] == "contraindications"
    assert "screen" in implant[0]["message"]


# --- eGFR, duration, age -----------------------------------------------------------------------


def test_newest_egfr_wins(vocabulary):
    observations = [
        egfr_observation(75, days_ago(300)),
        egfr_observation(24, days_ago(5), code="62238-1"),
        egfr_observation(60, days_ago(40), code="98979-8"),
        {**egfr_observation(10, days_ago(1)), "status": "entered-in-error"},
        {**egfr_observation(11, days_ago(1)), "code": {"coding": [
            {"system": LOINC, "code": "2160-0"}]}},  # creatinine, not eGFR
    ]
    assert newest_egfr(observations, vocabulary.egfr_loinc) == 24.0
    derived = derive(vocabulary, prefetch={"patient": patient(), "egfr": bundle(*observations)})
    assert derived.request["egfr"] == 24.0
    assert "egfr" in derived.derived_fields
    assert not [a for a in derived.assumptions if a["field"] == "egfr"]


def test_egfr_compares_datetimes_with_offsets(vocabulary):
    early = egfr_observation(50, "2026-01-01T23:30:00-05:00")  # 04:30Z on Jan 2
    late = egfr_observation(20, "2026-01-02T03:00:00Z")
    assert newest_egfr([late, early], vocabulary.egfr_loinc) == 50.0


def test_duration_from_earliest_active_spine_pain_onset(vocabulary):
    derived = derive(vocabulary, conditions=[
        condition("M54.50", onset=days_ago(70)),
        condition("279039007", SNOMED, onset=days_ago(140)),
        condition("M54.2", onset=days_ago(700), clinical="resolved"),  # inactive: ignored
        condition("C50.9", onset=days_ago(900)),  # not spine pain
    ])
    assert derived.request["symptom_duration_weeks"] == 20.0
    assert "symptom_duration_weeks" in derived.derived_fields
    assert not [a for a in derived.assumptions if a["field"] == "symptom_duration_weeks"]


def test_duration_falls_back_to_recorded_date_and_says_so(vocabulary):
    derived = derive(vocabulary, conditions=[condition("M54.5", recorded=days_ago(35))])
    assert derived.request["symptom_duration_weeks"] == 5.0
    notes = [a for a in derived.assumptions if a["field"] == "symptom_duration_weeks"]
    assert len(notes) == 1 and "recorded" in notes[0]["message"]


def test_duration_assumed_when_no_spine_pain_condition(vocabulary):
    derived = derive(vocabulary, conditions=[condition("C50.9")])
    assert derived.request["symptom_duration_weeks"] == ASSUMED_DURATION_WEEKS < 4
    assert [a["assumed"] for a in derived.assumptions
            if a["field"] == "symptom_duration_weeks"] == [ASSUMED_DURATION_WEEKS]


def test_age_and_sex_from_patient(vocabulary):
    t = today()
    born = t.replace(year=t.year - 63).isoformat() if not (t.month == 2 and t.day == 29) \
        else t.replace(year=t.year - 63, day=28).isoformat()
    derived = derive(vocabulary, prefetch={"patient": patient(born, "male")})
    assert derived.request["patient"] == {"age": 63, "sex": "male", "reference": "pat-1"}
    assert {"patient.age", "patient.sex"} <= derived.derived_fields
    assert not [a for a in derived.assumptions if a["field"] == "patient.age"]


def test_age_arithmetic_and_partial_dates():
    from datetime import date

    assert age_on(date(1980, 6, 15), date(2026, 6, 14)) == 45
    assert age_on(date(1980, 6, 15), date(2026, 6, 15)) == 46
    assert parse_fhir_date("1980") == date(1980, 1, 1)
    assert parse_fhir_date("1980-06") == date(1980, 6, 1)
    assert parse_fhir_date("2026-01-01T23:30:00-05:00") == date(2026, 1, 2)
    assert parse_fhir_date("2026-01-01T10:00:00") == date(2026, 1, 1)
    assert parse_fhir_date("not a date") is None
    assert parse_fhir_date(19800615) is None


@pytest.mark.parametrize("patient_value", [
    patient(birth_date=None), patient(birth_date="garbage"), patient(birth_date="1850-01-01"),
    patient(birth_date="2999-01-01")])
def test_unusable_birth_date_assumes_adult_under_50(vocabulary, patient_value):
    derived = derive(vocabulary, prefetch={"patient": patient_value})
    assert derived.request["patient"]["age"] == ASSUMED_AGE
    assert [a["assumed"] for a in derived.assumptions if a["field"] == "patient.age"] == [
        ASSUMED_AGE]


# --- prefetch degradation ----------------------------------------------------------------------

OUTCOME = {"resourceType": "OperationOutcome",
           "issue": [{"severity": "error", "code": "processing"}]}


@pytest.mark.parametrize("state", ["missing", "null", "empty", "operation-outcome", "invalid"])
def test_each_prefetch_degradation_is_assumed_not_an_error(vocabulary, state):
    value = {"null": None, "empty": {"resourceType": "Bundle", "type": "searchset"},
             "operation-outcome": OUTCOME, "invalid": "Patient/123"}.get(state)
    prefetch = {} if state == "missing" else {"patient": value, "conditions": value,
                                              "egfr": value}
    order = service_request("72148")
    kind, procedure = classify_order(order, vocabulary)
    parsed = Prefetch.from_request(prefetch)
    assert parsed.patient.state == parsed.conditions.state == parsed.egfr.state == state
    derived = derive_request(DraftOrder(order, "sr-1", kind, procedure), parsed, vocabulary,
                             patient_reference="pat-1", today=today())
    fields = {a["field"] for a in derived.assumptions}
    assert {"patient.age", "symptom_duration_weeks", "findings", "contraindications",
            "egfr", "conservative_care_weeks", "intervention_candidate"} <= fields
    assert derived.findings_assumed
    assert derived.request["patient"]["age"] == ASSUMED_AGE
    assert derived.request["findings"] == []
    assert "egfr" not in derived.request
    for assumption in derived.assumptions:
        assert set(assumption) == {"field", "assumed", "message"}
        assert assumption["message"] and assumption["assumed"] not in (None, "", [])


def test_whole_prefetch_null_or_not_an_object(vocabulary):
    for value in (None, [], "x", 3):
        parsed = Prefetch.from_request(value)
        assert parsed.conditions.state == "missing"


def test_patient_prefetch_as_a_bundle_is_read(vocabulary):
    derived = derive(vocabulary, prefetch={"patient": bundle(patient("1950-01-01"))})
    assert derived.request["patient"]["age"] >= 70


def test_conditions_present_means_findings_not_assumed(vocabulary):
    derived = derive(vocabulary, conditions=[condition("M54.5", onset=days_ago(7))])
    assert not derived.findings_assumed
    assert {"findings", "contraindications"} <= derived.derived_fields


# --- orders -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("coding", "kind", "procedure"), [
    ([(CPT, "72148")], "spine", "mri_lumbar_without_contrast"),
    ([(CPT, "72133")], "spine", "ct_lumbar_without_and_with_contrast"),
    ([(LOINC, "30667-0")], "spine", "mri_cervical_without_contrast"),
    ([(CPT, "72114")], "spine", "xray_lumbar"),  # an alias
    ([(CPT, "62284"), (CPT, "72132")], "spine", "ct_myelography_lumbar"),
    ([(CPT, "70544")], "imaging", None),
    ([(CPT, "71046")], "imaging", None),
    ([(CPT, "99213")], "other", None),
    ([(LOINC, "2160-0")], "other", None),
    ([(SNOMED, "77477000")], "other", None),
])
def test_classify_order(vocabulary, coding, kind, procedure):
    resource = {"resourceType": "ServiceRequest", "id": "x",
                "code": {"coding": [{"system": s, "code": c} for s, c in coding]}}
    got_kind, got = classify_order(resource, vocabulary)
    assert got_kind == kind
    assert (got.code if got else None) == procedure


def test_spine_region_comes_from_the_procedure(vocabulary):
    derived = derive(vocabulary, order=service_request("72146", rid="sr-t"))
    assert derived.request["region"] == "thoracic"
    assert derived.request["requested_procedure"] == "mri_thoracic_without_contrast"


def test_non_service_requests_are_other(vocabulary):
    assert classify_order({"resourceType": "MedicationRequest"}, vocabulary)[0] == "other"


def test_selections_limit_order_select(vocabulary):
    context = {"draftOrders": bundle(service_request("72148", rid="a"),
                                     service_request("72141", rid="b"))}
    assert [o.order_ref for o in draft_orders(context, vocabulary)] == ["a", "b"]
    assert [o.order_ref for o in draft_orders(context, vocabulary,
                                              ["ServiceRequest/b"])] == ["b"]
    # selections naming nothing in the Bundle: every draft is evaluated
    assert [o.order_ref for o in draft_orders(context, vocabulary,
                                              ["ServiceRequest/zz"])] == ["a", "b"]
