"""Real-world FHIR R4 shapes: every ``onset[x]`` form, and eGFR Observations in their units.

Each resource below copies the *shape* (element names, data types, units, codes) of a published
example; values that depend on today's date are moved so the test means the same on any day.
Where a shape comes from:

* ``Condition/f202`` — HL7 FHIR R4 example ``condition-example-f202-malignancy.json``:
  ``"onsetAge": {"value": 52, "unit": "years", "system": "http://unitsofmeasure.org",
  "code": "a"}`` with ``recordedDate``.
* ``Condition/example2`` — HL7 FHIR R4 example ``condition-example2.json``:
  ``"onsetString": "approximately November 2012"``.
* ``onsetPeriod`` / ``onsetRange`` — the R4 Condition element definitions (``Period``
  start/end; ``Range`` of ``Age`` low/high, UCUM ``a``), as EHR exports send them (e.g. the
  ``{"onsetRange": {"low": {"value": 5, "unit": "years"}}}`` shape, unit without a code).
* ``Observation/f205`` — HL7 FHIR R4 example ``observation-example-f205-egfr.json``: LOINC
  33914-3 (MDRD) with **no** top-level value, two race-specific components (48643-1 with
  comparator ``>`` 60, 48642-3 = 60), UCUM ``mL/min/{1.73_m2}``, unit text ``mL/min/1.73m2``.
* ``UC1-GFR`` — HL7 Switzerland CH EPREG example ``UC1-GFR-20250205``: LOINC 62238-1,
  ``valueQuantity = 54 UCUM#mL/min`` (no body-surface part in the unit).
* ``observation-egfr1`` — Estonian TEHIK example (``ig-ee-medication-scheme``): LOINC 62238-1,
  value 84, ``unit: "mg/ml/1, 73m2"`` with no system or code (a unit nobody can convert).
* mL/s/1.73 m² — the SI unit Czech and Scandinavian laboratories report eGFR in (a Czech
  report line "odhad GF (CKD-EPI) ml/s/1.73m2 1,61"); here in the f205 shape with the UCUM
  code ``mL/s/{1.73_m2}``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from referral_api.cds.egfr import newest_egfr_reading, normalise_unit
from referral_api.cds.fhir import DraftOrder, Prefetch, classify_order, derive_request
from referral_api.cds.onset import onset_interval
from tests.cds.builders import (
    ICD10CM,
    LOINC,
    SNOMED,
    bundle,
    condition,
    days_ago,
    patient,
    service_request,
    today,
)

UCUM = "http://unitsofmeasure.org"


def years_before(day: date, years: int) -> date:
    """``day`` moved back ``years`` years (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def derive(vocabulary, *conditions, birth: str | None = "1980-06-15", egfr=None, order=None):
    order = order or service_request("72148")
    kind, procedure = classify_order(order, vocabulary)
    data: dict[str, Any] = {"conditions": bundle(*conditions)}
    if birth is not None:
        data["patient"] = patient(birth)
    if egfr is not None:
        data["egfr"] = bundle(*egfr)
    return derive_request(DraftOrder(order, order["id"], kind, procedure),
                          Prefetch.from_request(data), vocabulary,
                          patient_reference="pat-1", today=today())


def pain(**onset: Any) -> dict[str, Any]:
    """An active M54.50 (low back pain) Condition with the given onset[x] element."""
    resource = condition("M54.50")
    resource.update(onset)
    return resource


# --- onset[x]: the symptom duration counts every form -----------------------------------------


def f202_onset_age(value: int) -> dict[str, Any]:
    """The onsetAge of HL7 R4 Condition/f202 with another value."""
    return {"value": value, "unit": "years", "system": UCUM, "code": "a"}


def test_onset_age_counts_in_the_duration(vocabulary_v2):
    # Born 52 years and 70 days ago; pain began "at 52 years" (HL7 f202 shape): the 53rd year
    # of life began 70 days ago, so the pain may have lasted up to 10 weeks.
    birth = years_before(today() - timedelta(days=70), 52)
    resource = pain(onsetAge=f202_onset_age(52), recordedDate=days_ago(3))
    derived = derive(vocabulary_v2, resource, birth=birth.isoformat())
    assert derived.request["symptom_duration_weeks"] == 10.0  # not the 3-day recorded date
    assert "symptom_duration_weeks" in derived.derived_fields
    notes = [a["message"] for a in derived.assumptions if a["field"] == "symptom_duration_weeks"]
    assert notes and "onsetAge" in notes[0]


def test_onset_age_without_birth_date_falls_back_to_the_recorded_date(vocabulary_v2):
    resource = pain(onsetAge=f202_onset_age(52), recordedDate=days_ago(35))
    derived = derive(vocabulary_v2, resource, birth=None)
    assert derived.request["symptom_duration_weeks"] == 5.0
    assert any("recorded" in a["message"] for a in derived.assumptions
               if a["field"] == "symptom_duration_weeks")


@pytest.mark.parametrize(("onset", "weeks"), [
    ({"onsetDateTime": days_ago(21)}, 3.0),
    ({"onsetPeriod": {"start": days_ago(84), "end": days_ago(70)}}, 12.0),
    ({"onsetPeriod": {"end": days_ago(70)}}, 10.0),
])
def test_date_forms_count_in_the_duration(vocabulary_v2, onset, weeks):
    assert derive(vocabulary_v2, pain(**onset)).request["symptom_duration_weeks"] == weeks


def test_onset_range_of_ages_counts_from_its_low_end(vocabulary_v2):
    birth = years_before(today() - timedelta(days=140), 40)
    rng = {"low": f202_onset_age(40), "high": f202_onset_age(41)}
    derived = derive(vocabulary_v2, pain(onsetRange=rng), birth=birth.isoformat())
    assert derived.request["symptom_duration_weeks"] == 20.0
    # The real-world shape with a unit text and no UCUM code reads the same.
    loose = {"low": {"value": 40, "unit": "years"}}
    assert derive(vocabulary_v2, pain(onsetRange=loose), birth=birth.isoformat()
                  ).request["symptom_duration_weeks"] == 20.0


def test_onset_string_of_hl7_example2_counts(vocabulary_v2):
    derived = derive(vocabulary_v2, pain(onsetString="approximately November 2012"))
    expected = round((today() - date(2012, 11, 1)).days / 7, 1)
    assert derived.request["symptom_duration_weeks"] == min(expected, 5200.0)


def test_onset_string_without_a_date_falls_back_to_the_recorded_date(vocabulary_v2):
    derived = derive(vocabulary_v2, pain(onsetString="since childhood",
                                         recordedDate=days_ago(14)))
    assert derived.request["symptom_duration_weeks"] == 2.0
    assert any("recorded" in a["message"] for a in derived.assumptions
               if a["field"] == "symptom_duration_weeks")


def test_earliest_onset_wins_across_forms(vocabulary_v2):
    birth = years_before(today() - timedelta(days=70), 52)
    derived = derive(vocabulary_v2, pain(onsetDateTime=days_ago(14)),
                     pain(onsetAge=f202_onset_age(52)), birth=birth.isoformat())
    assert derived.request["symptom_duration_weeks"] == 10.0
    assert any("onsetAge" in a["message"] for a in derived.assumptions)
    # An exact onset that is earlier wins, and then nothing is approximate.
    exact = derive(vocabulary_v2, pain(onsetDateTime=days_ago(140)),
                   pain(onsetAge=f202_onset_age(52)), birth=birth.isoformat())
    assert exact.request["symptom_duration_weeks"] == 20.0
    assert not [a for a in exact.assumptions if a["field"] == "symptom_duration_weeks"]


@pytest.mark.parametrize(("element", "earliest", "latest"), [
    ({"onsetDateTime": "2012"}, date(2012, 1, 1), date(2012, 12, 31)),
    ({"onsetDateTime": "2012-11"}, date(2012, 11, 1), date(2012, 11, 30)),
    ({"onsetString": "approximately November 2012"}, date(2012, 11, 1), date(2012, 11, 30)),
    ({"onsetString": "Nov. 2012"}, date(2012, 11, 1), date(2012, 11, 30)),
    ({"onsetString": "onset 2012-11-05, after a fall"}, date(2012, 11, 5), date(2012, 11, 5)),
    ({"onsetString": "in 2012"}, date(2012, 1, 1), date(2012, 12, 31)),
    ({"onsetAge": {"value": 52, "unit": "years", "system": UCUM, "code": "a"}},
     date(2032, 6, 15), date(2033, 6, 14)),
    ({"onsetAge": {"value": 6, "unit": "months", "system": UCUM, "code": "mo"}},
     date(1980, 12, 15), date(1981, 1, 14)),
    ({"onsetAge": {"value": 10, "unit": "days", "system": UCUM, "code": "d"}},
     date(1980, 6, 25), date(1980, 6, 25)),
    ({"onsetPeriod": {"start": "2012-11-05", "end": "2013-01"}},
     date(2012, 11, 5), date(2013, 1, 31)),
    ({"onsetRange": {"low": {"value": 30, "unit": "years", "system": UCUM, "code": "a"},
                     "high": {"value": 40, "unit": "years", "system": UCUM, "code": "a"}}},
     date(2010, 6, 15), date(2021, 6, 14)),
])
def test_onset_interval_of_each_form(element, earliest, latest):
    interval = onset_interval(element, birth=date(1980, 6, 15), today=date(2040, 1, 1))
    assert (interval.earliest, interval.latest) == (earliest, latest)


@pytest.mark.parametrize("element", [
    {"onsetString": "since childhood"},
    {"onsetAge": {"value": 52}},                      # no unit: not an age we can read
    {"onsetAge": {"value": 52, "unit": "kg", "system": UCUM, "code": "kg"}},
    {"onsetAge": {"value": "52", "unit": "years"}},
    {"onsetPeriod": {}},
    {"onsetRange": {"low": {"value": 5, "unit": "mmHg"}}},
    {"onsetDateTime": "not a date"},
    {},
])
def test_unreadable_onsets(element):
    assert onset_interval(element, birth=date(1980, 6, 15), today=date(2026, 12, 1)) is None


def test_onset_is_never_after_today_or_before_birth():
    interval = onset_interval({"onsetDateTime": "2030-01-01"}, birth=date(1980, 6, 15),
                              today=date(2026, 12, 1))
    assert interval.earliest == interval.latest == date(2026, 12, 1)
    early = onset_interval({"onsetDateTime": "1970"}, birth=date(1980, 6, 15),
                           today=date(2026, 12, 1))
    assert early.earliest == date(1980, 6, 15)


# --- onset[x]: recency windows use the latest possible onset ----------------------------------


def test_red_flag_with_onset_age_of_the_current_year_of_life_counts(vocabulary_v2):
    # Urinary retention "at 46 years" for a 46-year-old may have begun inside the 28-day
    # window: unknown is not absent, so it counts. "At 44 years" cannot have.
    birth = years_before(today() - timedelta(days=100), 46)
    current = condition("R33.9")
    current["onsetAge"] = f202_onset_age(46)
    old = condition("R33.9")
    old["onsetAge"] = f202_onset_age(44)
    assert derive(vocabulary_v2, current, birth=birth.isoformat()).request["findings"] == [
        "urinary_retention"]
    assert derive(vocabulary_v2, old, birth=birth.isoformat()).request["findings"] == []


def test_onset_period_counts_when_it_reaches_into_the_window(vocabulary_v2):
    inside = condition("R50.9")  # fever: 14-day window
    inside["onsetPeriod"] = {"start": days_ago(40), "end": days_ago(10)}
    outside = condition("R50.9")
    outside["onsetPeriod"] = {"start": days_ago(40), "end": days_ago(20)}
    assert derive(vocabulary_v2, inside).request["findings"] == ["fever"]
    assert derive(vocabulary_v2, outside).request["findings"] == []


def test_onset_string_without_date_uses_recorded_date_for_the_window(vocabulary_v2):
    recent = condition("R50.9", recorded=days_ago(3))
    recent["onsetString"] = "after the holiday"
    stale = condition("R50.9", recorded=days_ago(30))
    stale["onsetString"] = "after the holiday"
    assert derive(vocabulary_v2, recent).request["findings"] == ["fever"]
    assert derive(vocabulary_v2, stale).request["findings"] == []


# --- eGFR units ---------------------------------------------------------------------------------


def f205(**changes: Any) -> dict[str, Any]:
    """HL7 FHIR R4 Observation/f205 (MDRD eGFR with race-specific components), dated."""
    unit = {"unit": "mL/min/1.73m2", "system": UCUM, "code": "mL/min/{1.73_m2}"}
    resource: dict[str, Any] = {
        "resourceType": "Observation", "id": "f205", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "33914-3", "display": (
            "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or "
            "Plasma by Creatinine-based formula (MDRD)")}]},
        "subject": {"reference": "Patient/f201", "display": "Roel"},
        "issued": f"{days_ago(2)}T14:34:00+01:00",
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": "48643-1"}]},
             "valueQuantity": {"value": 60, "comparator": ">", **unit}},
            {"code": {"coding": [{"system": LOINC, "code": "48642-3"}]},
             "valueQuantity": {"value": 60, **unit}},
        ],
    }
    resource.update(changes)
    return resource


def si_egfr(value: float, when: str) -> dict[str, Any]:
    """An eGFR in mL/s/1.73 m² (SI laboratories), in the f205 shape with a top-level value."""
    return f205(id="egfr-si", effectiveDateTime=when, component=[], valueQuantity={
        "value": value, "unit": "mL/s/1.73m2", "system": UCUM, "code": "mL/s/{1.73_m2}"})


def ch_epreg_uc1(value: float = 54, when: str | None = None) -> dict[str, Any]:
    """HL7 Switzerland CH EPREG UC1-GFR: 62238-1 with UCUM mL/min."""
    return {"resourceType": "Observation", "id": "UC1-GFR", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "62238-1"}]},
            "effectiveDateTime": when or days_ago(5),
            "valueQuantity": {"value": value, "unit": "milliliter per minute", "system": UCUM,
                              "code": "mL/min"}}


def ee_egfr1(when: str | None = None) -> dict[str, Any]:
    """Estonian TEHIK observation-egfr1: 84 in "mg/ml/1, 73m2", no system, no code."""
    return {"resourceType": "Observation", "id": "observation-egfr1", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "62238-1"}]},
            "effectiveDateTime": when or days_ago(1),
            "valueQuantity": {"value": 84, "unit": "mg/ml/1, 73m2"}}


def egfr_note(derived) -> str:
    notes = [a["message"] for a in derived.assumptions if a["field"] == "egfr"]
    assert len(notes) == 1
    return notes[0]


def test_hl7_f205_components_give_the_lowest_value(vocabulary_v2):
    reading = newest_egfr_reading([f205()], vocabulary_v2.egfr_loinc)
    assert reading.value == 60.0 and reading.problem is None
    assert derive(vocabulary_v2, egfr=[f205()]).request["egfr"] == 60.0


def test_ml_per_second_is_converted_not_read_as_ml_per_minute(vocabulary_v2):
    # 0.45 mL/s/1.73 m² is 27 mL/min/1.73 m² (below 30: contrast precautions apply); read as
    # mL/min it would have been 0.45.
    derived = derive(vocabulary_v2, egfr=[si_egfr(0.45, days_ago(1))])
    assert derived.request["egfr"] == 27.0
    assert "mL/s" in egfr_note(derived) and "27.0" in egfr_note(derived)
    assert derive(vocabulary_v2, egfr=[si_egfr(1.61, days_ago(1))]).request["egfr"] == 96.6


def test_ml_per_minute_without_body_surface_is_accepted(vocabulary_v2):
    derived = derive(vocabulary_v2, egfr=[ch_epreg_uc1()])
    assert derived.request["egfr"] == 54.0
    assert "egfr" in derived.derived_fields


def test_unknown_unit_gives_no_usable_egfr_and_says_so(vocabulary_v2):
    derived = derive(vocabulary_v2, egfr=[ee_egfr1()])
    assert "egfr" not in derived.request
    note = egfr_note(derived)
    assert "mg/ml/1, 73m2" in note and "cannot be read" in note and "check it" in note


def test_no_unit_at_all_gives_no_usable_egfr(vocabulary_v2):
    bare = ch_epreg_uc1()
    bare["valueQuantity"] = {"value": 54}
    derived = derive(vocabulary_v2, egfr=[bare])
    assert "egfr" not in derived.request
    assert "no unit" in egfr_note(derived)


def test_newest_result_in_an_unknown_unit_is_not_replaced_by_an_older_one(vocabulary_v2):
    derived = derive(vocabulary_v2, egfr=[ch_epreg_uc1(80, days_ago(300)),
                                          ee_egfr1(days_ago(1))])
    assert "egfr" not in derived.request
    # ... but a newer readable result wins over an older unreadable one.
    derived = derive(vocabulary_v2, egfr=[ch_epreg_uc1(80, days_ago(1)),
                                          ee_egfr1(days_ago(300))])
    assert derived.request["egfr"] == 80.0


def test_less_than_comparator_reads_below_the_value(vocabulary_v2):
    obs = ch_epreg_uc1()
    obs["valueQuantity"] = {"value": 30, "comparator": "<", "unit": "mL/min/1.73m2",
                            "system": UCUM, "code": "mL/min/{1.73_m2}"}
    assert derive(vocabulary_v2, egfr=[obs]).request["egfr"] == 29.9


@pytest.mark.parametrize(("unit", "expected"), [
    ("mL/min/{1.73_m2}", "ml/min/1.73m2"), ("mL/min/1.73m2", "ml/min/1.73m2"),
    ("ml/min/1,73 m²", "ml/min/1.73m2"), ("mL/min per 1.73 m2", "ml/min/1.73m2"),
    ("mL/s/{1.73_m2}", "ml/s/1.73m2"), ("ml/s/1,73m2", "ml/s/1.73m2"),
    ("mg/ml/1, 73m2", "mg/ml/1.73m2"),
])
def test_unit_spellings(unit, expected):
    assert normalise_unit(unit) == expected


# --- the 2026.2.0 mapping rules ----------------------------------------------------------------


@pytest.mark.parametrize(("code", "finding", "present"), [
    ("C44.91", "history_of_cancer", False),    # non-melanoma skin cancer: excluded (T39)
    ("Z85.828", "history_of_cancer", False),
    ("C43.9", "history_of_cancer", True),      # melanoma stays
    ("Z85.820", "history_of_cancer", True),
    ("C4A.9", "history_of_cancer", True),      # Merkel cell stays
    ("D04.9", "history_of_cancer", False),     # in situ: never included
    ("Z94.5", "immunosuppression", False),     # skin graft
    ("Z94.0", "immunosuppression", True),      # kidney transplant
])
def test_exclusions_apply_before_inclusions(vocabulary_v2, code, finding, present):
    found = derive(vocabulary_v2, condition(code, onset=days_ago(400))).request["findings"]
    assert (finding in found) is present


@pytest.mark.parametrize(("code", "system", "expected"), [
    ("O80", ICD10CM, []),                      # delivery: no longer "pregnant"
    ("O26.891", ICD10CM, ["pregnancy"]),
    ("Z95.0", ICD10CM, ["implant_unknown_mr_status"]),
    ("441509002", SNOMED, ["implant_unknown_mr_status"]),
    ("Z96.82", ICD10CM, ["neurostimulator"]),
    ("Z96.21", ICD10CM, ["cochlear_implant"]),
    ("Z98.2", ICD10CM, ["programmable_shunt"]),
    ("Z18.11", ICD10CM, ["retained_metal_fragments"]),
    ("Z39.1", ICD10CM, ["breastfeeding"]),
    ("236435004", SNOMED, ["dialysis"]),
])
def test_new_contraindications_are_derived(vocabulary_v2, code, system, expected):
    derived = derive(vocabulary_v2, condition(code, system))
    assert derived.request["contraindications"] == expected
    implant = [a["message"] for a in derived.assumptions
               if a["assumed"] == "no implant or device known"]
    assert len(implant) == 1 and "screen" in implant[0]
    if expected and expected[0] in ("implant_unknown_mr_status", "neurostimulator",
                                    "cochlear_implant", "programmable_shunt",
                                    "retained_metal_fragments"):
        assert "coded in the record" in implant[0]


def test_si_joint_procedures_are_silent(vocabulary_v2):
    for cpt in ("72195", "72200", "72202"):
        kind, procedure = classify_order(service_request(cpt), vocabulary_v2)
        assert kind == "silent" and procedure is not None and not procedure.cds_hooks_trigger
