"""FHIR R4 (CDS Hooks context and prefetch) to decision-request facts, with assumptions.

Pure module: no Flask, no database. It turns one draft ServiceRequest plus the prefetched
Patient, Conditions and eGFR Observations into the ``POST /v1/decisions`` request shape, and
lists every fact that could not be derived and was assumed instead (each assumption is a
``{"field", "assumed", "message"}`` dict, stored with the decision and shown on the card).

Mapping rules (``shared/spec/vocabulary.md``): ICD-10-CM (and the WHO ICD-10 URI) by code prefix
with the dot ignored; SNOMED CT exactly; Conditions count only when active (clinicalStatus
active, recurrence or relapse, or absent) and not refuted or entered in error; the cauda equina
findings count only from Conditions whose onset or recorded date is recent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from referral_api.clinical.vocabulary import Procedure, Vocabulary
from referral_api.enums import SEXES

ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"})
SNOMED_SYSTEM = "http://snomed.info/sct"
CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"
LOINC_SYSTEM = "http://loinc.org"
#: CPT's radiology section: an order coded in it is imaging (spine or not).
IMAGING_CPT_RANGE = (70010, 79999)

ACTIVE_CLINICAL_STATUSES = frozenset({"active", "recurrence", "relapse"})
#: Verification statuses that say the Condition is not (or no longer believed) true.
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
EXCLUDED_OBSERVATION_STATUS = frozenset({"entered-in-error", "cancelled"})

#: Values used when a fact cannot be derived (the contract: "adult under 50", "under 4 weeks").
ASSUMED_AGE = 40
ASSUMED_DURATION_WEEKS = 2

OrderKind = Literal["spine", "imaging", "other"]
PrefetchState = Literal["present", "missing", "null", "empty", "operation-outcome", "invalid"]


# --- small FHIR helpers ---------------------------------------------------------------------


def codings(concept: Any) -> Iterator[tuple[str, str]]:
    """The (system, code) pairs of a CodeableConcept; malformed entries are skipped."""
    if not isinstance(concept, Mapping):
        return
    for coding in concept.get("coding") or ():
        if not isinstance(coding, Mapping):
            continue
        system, code = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(code, str) and code.strip():
            # A trailing slash on a system URI is a common EHR slip; it names the same system.
            yield system.strip().rstrip("/"), code.strip()


def parse_fhir_date(value: Any) -> date | None:
    """A FHIR date or dateTime as a UTC date (partial dates take their first day)."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    text = value.strip()
    try:
        if len(text) == 4:
            return date(int(text), 1, 1)
        if len(text) == 7:
            return date(int(text[:4]), int(text[5:7]), 1)
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # the contract: a time without an offset is UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def _instant(value: Any) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware UTC datetime, for ordering observations."""
    if not isinstance(value, str):
        return None
    day = parse_fhir_date(value)
    if day is None:
        return None
    if len(value.strip()) <= 10:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _status_code(concept: Any) -> str | None:
    for _, code in codings(concept):
        return code
    return None


def _icd_norm(code: str) -> str:
    return code.replace(".", "").strip().upper()


# --- code matching ---------------------------------------------------------------------------


class CodeMatcher:
    """Standard codes → vocabulary codes (findings, contraindications, spine pain)."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self._finding_icd = [(code, tuple(_icd_norm(p) for p in f.icd10))
                             for code, f in vocabulary.findings.items() if f.icd10]
        self._finding_sct = {sct: code for code, f in vocabulary.findings.items()
                             for sct in f.snomed}
        self._contra_icd = [(code, tuple(_icd_norm(p) for p in c.icd10))
                            for code, c in vocabulary.contraindications.items() if c.icd10]
        self._contra_sct = {sct: code for code, c in vocabulary.contraindications.items()
                            for sct in c.snomed}
        self._pain_icd = tuple(_icd_norm(p) for p in vocabulary.spine_pain_codes.get("icd10", ()))
        self._pain_sct = frozenset(vocabulary.spine_pain_codes.get("snomed", ()))
        ces = vocabulary.cauda_equina_diagnosis_codes
        self._ces_icd = tuple(_icd_norm(p) for p in ces.get("icd10", ()))
        self._ces_sct = frozenset(ces.get("snomed", ()))

    @staticmethod
    def _icd_hits(table: Sequence[tuple[str, tuple[str, ...]]], code: str) -> set[str]:
        norm = _icd_norm(code)
        return {name for name, prefixes in table if any(norm.startswith(p) for p in prefixes)}

    def findings(self, pairs: Iterable[tuple[str, str]]) -> set[str]:
        """Finding codes denoted by the codings (incl. the cauda equina diagnosis)."""
        found: set[str] = set()
        for system, code in pairs:
            if system in ICD10_SYSTEMS:
                found |= self._icd_hits(self._finding_icd, code)
                if any(_icd_norm(code).startswith(p) for p in self._ces_icd):
                    found |= set(self.vocabulary.cauda_equina_findings)
            elif system == SNOMED_SYSTEM:
                if code in self._finding_sct:
                    found.add(self._finding_sct[code])
                if code in self._ces_sct:
                    found |= set(self.vocabulary.cauda_equina_findings)
        return found

    def contraindications(self, pairs: Iterable[tuple[str, str]]) -> set[str]:
        """Contraindication codes denoted by the codings."""
        found: set[str] = set()
        for system, code in pairs:
            if system in ICD10_SYSTEMS:
                found |= self._icd_hits(self._contra_icd, code)
            elif system == SNOMED_SYSTEM and code in self._contra_sct:
                found.add(self._contra_sct[code])
        return found

    def is_spine_pain(self, pairs: Iterable[tuple[str, str]]) -> bool:
        """True when a coding is one of the spine-pain codes (used for symptom duration)."""
        for system, code in pairs:
            if system in ICD10_SYSTEMS and any(
                    _icd_norm(code).startswith(p) for p in self._pain_icd):
                return True
            if system == SNOMED_SYSTEM and code in self._pain_sct:
                return True
        return False


# --- orders ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftOrder:
    """One entry of ``context.draftOrders``, classified."""

    resource: dict[str, Any]
    order_ref: str
    kind: OrderKind
    procedure: Procedure | None = None


def _is_imaging_cpt(code: str) -> bool:
    return code.isdigit() and len(code) == 5 and \
        IMAGING_CPT_RANGE[0] <= int(code) <= IMAGING_CPT_RANGE[1]


def classify_order(resource: Mapping[str, Any], vocabulary: Vocabulary) -> tuple[OrderKind,
                                                                                 Procedure | None]:
    """Spine imaging (with its procedure), other imaging, or not imaging at all."""
    if resource.get("resourceType") != "ServiceRequest":
        return "other", None
    pairs = list(codings(resource.get("code")))
    procedure = vocabulary.procedure_for_codes(pairs)
    if procedure is not None:
        return "spine", procedure
    if any(system == CPT_SYSTEM and _is_imaging_cpt(code) for system, code in pairs):
        return "imaging", None
    return "other", None


def draft_orders(context: Mapping[str, Any], vocabulary: Vocabulary,
                 selections: Sequence[str] | None = None) -> list[DraftOrder]:
    """The draft orders to evaluate, classified, in Bundle order.

    With ``selections`` (order-select), only the selected orders are evaluated, as CDS Hooks
    intends; when no selection names an order of the Bundle, every order is evaluated.
    """
    bundle = context.get("draftOrders")
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    resources: list[tuple[dict[str, Any], str]] = []
    for index, entry in enumerate(entries if isinstance(entries, list) else ()):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, dict):
            continue
        rid = resource.get("id")
        ref = rid if isinstance(rid, str) and rid else f"entry-{index}"
        resources.append((resource, ref))
    if selections:
        wanted = {s.split("/")[-1] for s in selections if isinstance(s, str)}
        typed = {s for s in selections if isinstance(s, str)}
        chosen = [(r, ref) for r, ref in resources
                  if ref in wanted and (f"{r.get('resourceType')}/{ref}" in typed or ref in typed)]
        if chosen:
            resources = chosen
    orders = []
    for resource, ref in resources:
        kind, procedure = classify_order(resource, vocabulary)
        orders.append(DraftOrder(resource=resource, order_ref=ref, kind=kind,
                                 procedure=procedure))
    return orders


# --- prefetch ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrefetchItem:
    """One prefetched value: its resources (when usable) and what state it arrived in."""

    state: PrefetchState
    resources: tuple[dict[str, Any], ...] = ()

    @property
    def usable(self) -> bool:
        """True when the EHR sent actual data (a non-empty Bundle or a resource)."""
        return self.state == "present"


def _prefetch_item(value: Any, resource_type: str, present: bool) -> PrefetchItem:
    if not present:
        return PrefetchItem("missing")
    if value is None:
        return PrefetchItem("null")
    if not isinstance(value, Mapping):
        return PrefetchItem("invalid")
    kind = value.get("resourceType")
    if kind == "OperationOutcome":
        return PrefetchItem("operation-outcome")
    if kind == resource_type:
        return PrefetchItem("present", (dict(value),))
    if kind == "Bundle":
        found = tuple(
            dict(entry["resource"]) for entry in (value.get("entry") or ())
            if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping)
            and entry["resource"].get("resourceType") == resource_type)
        return PrefetchItem("present", found) if found else PrefetchItem("empty")
    return PrefetchItem("invalid")


@dataclass(frozen=True)
class Prefetch:
    """The three prefetch templates the services declare, each possibly degraded."""

    patient: PrefetchItem
    conditions: PrefetchItem
    egfr: PrefetchItem

    @classmethod
    def from_request(cls, prefetch: Any) -> Prefetch:
        """Read ``request.prefetch``; any shape is accepted (missing, null, empty, …)."""
        data = prefetch if isinstance(prefetch, Mapping) else {}
        return cls(
            patient=_prefetch_item(data.get("patient"), "Patient", "patient" in data),
            conditions=_prefetch_item(data.get("conditions"), "Condition", "conditions" in data),
            egfr=_prefetch_item(data.get("egfr"), "Observation", "egfr" in data),
        )


_STATE_WORDS = {
    "missing": "was not sent",
    "null": "was null",
    "empty": "was an empty Bundle",
    "operation-outcome": "was an OperationOutcome (the EHR could not fetch it)",
    "invalid": "was not a FHIR resource or Bundle",
}


# --- derivation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Derived:
    """The decision request derived for one order, and how it was obtained."""

    request: dict[str, Any]
    assumptions: tuple[dict[str, Any], ...]
    #: request fields actually derived from the EHR data (they prefill the form link)
    derived_fields: frozenset[str] = field(default_factory=frozenset)

    @property
    def findings_assumed(self) -> bool:
        """True when findings were assumed absent (the conditions were not available)."""
        return any(a["field"] == "findings" for a in self.assumptions)


def _assumption(field_name: str, assumed: Any, message: str) -> dict[str, Any]:
    return {"field": field_name, "assumed": assumed, "message": message}


def age_on(birth: date, today: date) -> int:
    """Whole years from ``birth`` to ``today``."""
    years = today.year - birth.year
    if (today.month, today.day) < (birth.month, birth.day):
        years -= 1
    return years


def condition_is_active(condition: Mapping[str, Any]) -> bool:
    """Active, recurrence or relapse, or no clinical status; not refuted/entered in error."""
    clinical = _status_code(condition.get("clinicalStatus"))
    if clinical is not None and clinical not in ACTIVE_CLINICAL_STATUSES:
        return False
    verification = _status_code(condition.get("verificationStatus"))
    return verification not in EXCLUDED_VERIFICATION


def condition_onset(condition: Mapping[str, Any]) -> date | None:
    """onsetDateTime, or the start of onsetPeriod."""
    onset = parse_fhir_date(condition.get("onsetDateTime"))
    if onset is None and isinstance(condition.get("onsetPeriod"), Mapping):
        onset = parse_fhir_date(condition["onsetPeriod"].get("start"))
    return onset


def condition_is_recent(condition: Mapping[str, Any], today: date, weeks: int) -> bool:
    """True when the onset or the recorded date lies within the last ``weeks`` weeks."""
    since = today - timedelta(weeks=weeks)
    dates = (condition_onset(condition), parse_fhir_date(condition.get("recordedDate")))
    return any(d is not None and d >= since for d in dates)


def _observation_value(observation: Mapping[str, Any]) -> float | None:
    quantity = observation.get("valueQuantity")
    if not isinstance(quantity, Mapping):
        return None
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _observation_time(observation: Mapping[str, Any]) -> datetime | None:
    moment = _instant(observation.get("effectiveDateTime")) or _instant(
        observation.get("effectiveInstant"))
    period = observation.get("effectivePeriod")
    if moment is None and isinstance(period, Mapping):
        moment = _instant(period.get("end")) or _instant(period.get("start"))
    return moment or _instant(observation.get("issued"))


def newest_egfr(observations: Iterable[Mapping[str, Any]], loinc: Iterable[str]
                ) -> float | None:
    """The value of the newest eGFR Observation (by effective time, then issued)."""
    codes = frozenset(loinc)
    best: tuple[datetime, float] | None = None
    undated: float | None = None
    for obs in observations:
        if obs.get("status") in EXCLUDED_OBSERVATION_STATUS:
            continue
        if not any(s == LOINC_SYSTEM and c in codes for s, c in codings(obs.get("code"))):
            continue
        value = _observation_value(obs)
        if value is None:
            continue
        moment = _observation_time(obs)
        if moment is None:
            undated = value if undated is None else undated
        elif best is None or moment > best[0]:
            best = (moment, value)
    value = best[1] if best else undated
    if value is None:
        return None
    return round(min(max(value, 0.0), 200.0), 1)  # the API's range; ">200" reads as 200


def derive_request(
    order: DraftOrder,
    prefetch: Prefetch,
    vocabulary: Vocabulary,
    *,
    patient_reference: str | None,
    today: date,
    matcher: CodeMatcher | None = None,
) -> Derived:
    """The decision request for one spine-imaging order, with its assumptions."""
    if order.procedure is None:
        raise ValueError("derive_request needs a spine imaging order")
    matcher = matcher or CodeMatcher(vocabulary)
    assumptions: list[dict[str, Any]] = []
    derived: set[str] = {"region", "requested_procedure"}
    patient: dict[str, Any] = {}

    # Age and sex from the Patient.
    patient_resource = prefetch.patient.resources[0] if prefetch.patient.usable else None
    birth = parse_fhir_date(patient_resource.get("birthDate")) if patient_resource else None
    age = age_on(birth, today) if birth else None
    if age is not None and 0 <= age <= 120:
        patient["age"] = age
        derived.add("patient.age")
    else:
        if patient_resource is None:
            why = f"the Patient prefetch {_STATE_WORDS[prefetch.patient.state]}"
        elif birth is None:
            why = "the Patient has no usable birthDate"
        else:
            why = "the Patient's birthDate gives an age outside 0-120 years"
        patient["age"] = ASSUMED_AGE
        assumptions.append(_assumption(
            "patient.age", ASSUMED_AGE,
            f"Age not derivable ({why}); assumed an adult under 50 ({ASSUMED_AGE} years)."))
    gender = patient_resource.get("gender") if patient_resource else None
    if isinstance(gender, str) and gender in SEXES:  # FHIR's genders are the contract's sexes
        patient["sex"] = gender
        derived.add("patient.sex")
    if patient_reference:
        patient["reference"] = patient_reference

    # Findings, contraindications, duration from the Conditions and the order's reasons.
    conditions = [c for c in prefetch.conditions.resources if condition_is_active(c)]
    recent_only = vocabulary.recent_only_findings
    weeks_window = vocabulary.recent_window_weeks
    findings: set[str] = set()
    contraindications: set[str] = set()
    earliest_onset: date | None = None
    earliest_recorded: date | None = None
    for condition in conditions:
        pairs = list(codings(condition.get("code")))
        hits = matcher.findings(pairs)
        if hits & recent_only and not condition_is_recent(condition, today, weeks_window):
            hits -= recent_only  # an old R32 on a problem list is not a cauda equina sign
        findings |= hits
        contraindications |= matcher.contraindications(pairs)
        if matcher.is_spine_pain(pairs):
            onset = condition_onset(condition)
            recorded = parse_fhir_date(condition.get("recordedDate"))
            if onset and (earliest_onset is None or onset < earliest_onset):
                earliest_onset = onset
            elif onset is None and recorded and (
                    earliest_recorded is None or recorded < earliest_recorded):
                earliest_recorded = recorded
    # The order's reasons describe the present complaint: no recency rule applies to them.
    reason_pairs = [pair for concept in order.resource.get("reasonCode") or ()
                    for pair in codings(concept)]
    findings |= matcher.findings(reason_pairs)
    contraindications |= matcher.contraindications(reason_pairs)

    if prefetch.conditions.usable:
        derived |= {"findings", "contraindications"}
    else:
        why = f"the conditions prefetch {_STATE_WORDS[prefetch.conditions.state]}"
        from_reasons = " (except those coded as the order's reasons)" if findings else ""
        assumptions.append(_assumption(
            "findings", "absent",
            f"Findings not derivable ({why}); every finding{from_reasons} assumed absent."))
        assumptions.append(_assumption(
            "contraindications", "absent",
            f"Pregnancy, dialysis, kidney injury and claustrophobia not derivable ({why}); "
            "assumed absent."))
    assumptions.append(_assumption(
        "contraindications", "no implant or device known",
        "Implants, cardiac devices and orbital metal cannot be derived from the EHR data; "
        "none is known: screen the patient for MRI safety before scanning."))

    duration = _duration(earliest_onset, earliest_recorded, today, assumptions,
                         prefetch.conditions)
    if duration is not None:
        derived.add("symptom_duration_weeks")
    else:
        duration = float(ASSUMED_DURATION_WEEKS)

    assumptions.append(_assumption(
        "conservative_care_weeks", 0,
        "Weeks of conservative care completed are not in the EHR data; assumed none."))
    assumptions.append(_assumption(
        "intervention_candidate", False,
        "Whether the patient is a candidate for surgery or an intervention is not in the EHR "
        "data; assumed not."))

    request: dict[str, Any] = {
        "patient": patient,
        "region": order.procedure.region,
        "requested_procedure": order.procedure.code,
        "symptom_duration_weeks": duration,
        "conservative_care_weeks": 0,
        "intervention_candidate": False,
        # Vocabulary order keeps stored inputs stable whatever order the EHR sent codes in.
        "findings": [c for c in vocabulary.findings if c in findings],
        "contraindications": [c for c in vocabulary.contraindications if c in contraindications],
    }
    egfr = newest_egfr(prefetch.egfr.resources, vocabulary.egfr_loinc) \
        if prefetch.egfr.usable else None
    if egfr is not None:
        request["egfr"] = egfr
        derived.add("egfr")
    else:
        why = (f"the eGFR prefetch {_STATE_WORDS[prefetch.egfr.state]}"
               if not prefetch.egfr.usable else "no eGFR Observation had a usable value")
        assumptions.append(_assumption(
            "egfr", "not below 30",
            f"eGFR not derivable ({why}); renal function assumed adequate: check it before "
            "giving contrast."))
    return Derived(request=request, assumptions=tuple(assumptions),
                   derived_fields=frozenset(derived))


def _duration(onset: date | None, recorded: date | None, today: date,
              assumptions: list[dict[str, Any]], conditions: PrefetchItem) -> float | None:
    """Weeks since the earliest spine-pain onset (or, failing any onset, its recording)."""
    start = onset or recorded
    if start is None:
        if conditions.usable:
            why = "no active spine-pain Condition has an onset or recorded date"
        else:
            why = f"the conditions prefetch {_STATE_WORDS[conditions.state]}"
        assumptions.append(_assumption(
            "symptom_duration_weeks", ASSUMED_DURATION_WEEKS,
            f"Symptom duration not derivable ({why}); assumed under 4 weeks "
            f"({ASSUMED_DURATION_WEEKS} weeks)."))
        return None
    weeks = round(min(max((today - start).days / 7, 0.0), 5200.0), 1)
    if onset is None:
        assumptions.append(_assumption(
            "symptom_duration_weeks", weeks,
            "No spine-pain Condition has an onset; duration counted from the date the "
            "earliest one was recorded (symptoms may be older)."))
    return weeks
