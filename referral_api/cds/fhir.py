"""FHIR R4 (CDS Hooks context and prefetch) to decision-request facts, with assumptions.

Pure module: no Flask, no database. It turns one draft ServiceRequest plus the prefetched
Patient, Conditions and eGFR Observations into the ``POST /v1/decisions`` request shape, and
lists every fact that could not be derived and was assumed instead (each assumption is a
``{"field", "assumed", "message"}`` dict, stored with the decision and shown on the card).

Mapping rules (``shared/spec/vocabulary.md`` and the 2026.2.0 delta §1.2, §8.1): ICD-10-CM (and
the WHO ICD-10 URI) by code prefix with the dot ignored, exclusion prefixes first (a code that
matches an ``icd10_exclude`` prefix never maps); SNOMED CT exactly; Conditions count only when
active (clinicalStatus active, recurrence or relapse, or absent) and not refuted or entered in
error; a finding with a recency window counts only when the Condition's ``onset[x]`` (any of
the five forms, :mod:`.onset`), else its ``recordedDate``, lies inside the window; a Condition
with neither date, and a reason code on the order, count as current. Under a vocabulary that
marks red flags (v2), every red flag not found is listed as ``not_assessed`` with its reason
(criteria 2026.2.0 §10.3), and ``days_since_injury`` is derived from injury Conditions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from referral_api.clinical.vocabulary import Procedure, Vocabulary
from referral_api.enums import SEXES

from .egfr import newest_egfr_reading
from .onset import onset_interval, parse_fhir_date

ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"})
SNOMED_SYSTEM = "http://snomed.info/sct"
CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"
LOINC_SYSTEM = "http://loinc.org"
#: CPT's radiology section: an order coded in it is imaging (spine or not).
IMAGING_CPT_RANGE = (70010, 79999)

ACTIVE_CLINICAL_STATUSES = frozenset({"active", "recurrence", "relapse"})
#: Verification statuses that say the Condition is not (or no longer believed) true.
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})

#: Values used when a fact cannot be derived (the contract: "adult under 50", "under 4 weeks").
ASSUMED_AGE = 40
ASSUMED_DURATION_WEEKS = 2
IMPLANT_CONTRAINDICATIONS = (
    "mr_unsafe_implant", "non_conditional_cardiac_device", "mr_conditional_implant",
    "orbital_metal_foreign_body", "implant_unknown_mr_status", "neurostimulator",
    "intrathecal_pump", "cochlear_implant", "programmable_shunt", "retained_metal_fragments",
)
#: The injury findings whose Conditions date the injury (criteria 2026.2.0 §10.1).
INJURY_DATING_FINDINGS = ("significant_trauma", "minor_trauma")
#: ``days_since_injury`` is derived only from injuries inside this window (days).
INJURY_WINDOW_DAYS = 28
#: The three reasons a red flag is "not assessed" (criteria 2026.2.0 §10.3), verbatim.
WHY_NOT_DERIVABLE = "no code for it in the record"
WHY_NOT_CODED = "not among the active coded conditions"
WHY_UNAVAILABLE = "conditions were not available to the service"

#: spine: rated; imaging: PAMA "no-criteria-apply" only; silent: a vocabulary procedure with
#: ``cds_hooks_trigger: false`` (no card, no action); other: not imaging, nothing.
OrderKind = Literal["spine", "imaging", "silent", "other"]
PrefetchState = Literal["present", "missing", "null", "empty", "empty-error",
                        "operation-outcome", "invalid"]


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


def _status_code(concept: Any) -> str | None:
    for _, code in codings(concept):
        return code
    return None


def _icd_norm(code: str) -> str:
    return code.replace(".", "").strip().upper()


# --- vocabulary terms ------------------------------------------------------------------------


def unknown_is_not_absent(vocabulary: Vocabulary) -> bool:
    """True for a v2 vocabulary: red flags not found are listed as ``not_assessed`` and
    ``days_since_injury`` is derived (criteria 2026.2.0 §10). A v1 vocabulary (2026.1.0)
    keeps the v1 behaviour: findings not found are absent."""
    return vocabulary.format >= 2


def triggers_cds(procedure: Procedure) -> bool:
    """False for procedures marked ``cds_hooks_trigger: false`` (delta §5, §8.5)."""
    return procedure.cds_hooks_trigger


def _prefix_table(items: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(code, tuple(_icd_norm(p) for p in item.icd10),
             tuple(_icd_norm(p) for p in item.icd10_exclude))
            for code, item in items.items() if item.icd10]


# --- code matching ---------------------------------------------------------------------------


class CodeMatcher:
    """Standard codes → vocabulary codes (findings, contraindications, spine pain)."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self._finding_icd = _prefix_table(vocabulary.findings)
        self._finding_sct: dict[str, set[str]] = {}
        for code, f in vocabulary.findings.items():
            for sct in f.snomed:
                self._finding_sct.setdefault(sct, set()).add(code)
        self._contra_icd = _prefix_table(vocabulary.contraindications)
        self._contra_sct: dict[str, set[str]] = {}
        for code, c in vocabulary.contraindications.items():
            for sct in c.snomed:
                self._contra_sct.setdefault(sct, set()).add(code)
        self._pain_icd = tuple(_icd_norm(p) for p in vocabulary.spine_pain_codes.get("icd10", ()))
        self._pain_sct = frozenset(vocabulary.spine_pain_codes.get("snomed", ()))
        ces = vocabulary.cauda_equina_diagnosis_codes
        self._ces_icd = tuple(_icd_norm(p) for p in ces.get("icd10", ()))
        self._ces_sct = frozenset(ces.get("snomed", ()))

    @staticmethod
    def _icd_hits(table: Sequence[tuple[str, tuple[str, ...], tuple[str, ...]]], code: str
                  ) -> frozenset[str]:
        # Exclusions first: C44.91 matches "C" but also the exclusion "C44", so it never maps.
        # (str.startswith with a tuple tests every prefix in C: this runs per coding per call.)
        norm = _icd_norm(code)
        return frozenset(name for name, prefixes, excludes in table
                         if norm.startswith(prefixes)
                         and not (excludes and norm.startswith(excludes)))

    def findings(self, pairs: Iterable[tuple[str, str]]) -> set[str]:
        """Finding codes denoted by the codings (incl. the cauda equina diagnosis)."""
        found: set[str] = set()
        for system, code in pairs:
            if system in ICD10_SYSTEMS:
                found |= self._icd_hits(self._finding_icd, code)
                if self._ces_icd and _icd_norm(code).startswith(self._ces_icd):
                    found |= set(self.vocabulary.cauda_equina_findings)
            elif system == SNOMED_SYSTEM:
                found |= self._finding_sct.get(code, set())
                if code in self._ces_sct:
                    found |= set(self.vocabulary.cauda_equina_findings)
        return found

    def contraindications(self, pairs: Iterable[tuple[str, str]]) -> set[str]:
        """Contraindication codes denoted by the codings."""
        found: set[str] = set()
        for system, code in pairs:
            if system in ICD10_SYSTEMS:
                found |= self._icd_hits(self._contra_icd, code)
            elif system == SNOMED_SYSTEM:
                found |= self._contra_sct.get(code, set())
        return found

    def is_spine_pain(self, pairs: Iterable[tuple[str, str]]) -> bool:
        """True when a coding is one of the spine-pain codes (used for symptom duration)."""
        for system, code in pairs:
            if system in ICD10_SYSTEMS and _icd_norm(code).startswith(self._pain_icd):
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
    """Spine imaging (with its procedure), a silent procedure, other imaging, or not imaging.

    A procedure with ``cds_hooks_trigger: false`` (the SI-joint studies of 2026.2.0, delta §5)
    is "silent": a pelvis MRI ordered for another reason must not be rated as a spine study,
    and the delta (§8.5) asks for no card and no system action at all.
    """
    if resource.get("resourceType") != "ServiceRequest":
        return "other", None
    pairs = list(codings(resource.get("code")))
    procedure = vocabulary.procedure_for_codes(pairs)
    if procedure is not None:
        return ("spine", procedure) if triggers_cds(procedure) else ("silent", procedure)
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
        entries = [entry["resource"] for entry in (value.get("entry") or ())
                   if isinstance(entry, Mapping) and isinstance(entry.get("resource"), Mapping)]
        found = tuple(dict(r) for r in entries if r.get("resourceType") == resource_type)
        if found:
            return PrefetchItem("present", found)
        # A search that failed can come back as an empty Bundle carrying an OperationOutcome.
        if any(r.get("resourceType") == "OperationOutcome" for r in entries):
            return PrefetchItem("empty-error")
        return PrefetchItem("empty")
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
    "empty-error": "was an empty Bundle with an OperationOutcome (the search failed)",
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


@dataclass(frozen=True)
class ConditionDates:
    """The dates of one Condition that the derivation uses."""

    #: earliest possible onset (symptom duration), from onset[x] only
    earliest_onset: date | None
    #: latest possible onset, else the recorded date (recency windows, days since injury)
    current_as_of: date | None
    recorded: date | None
    #: the onset[x] element the onset was read from ("" when none was readable)
    onset_form: str = ""


def condition_dates(condition: Mapping[str, Any], *, birth: date | None, today: date
                    ) -> ConditionDates:
    """Onset (any ``onset[x]`` form) and recorded date of a Condition."""
    interval = onset_interval(condition, birth=birth, today=today)
    recorded = parse_fhir_date(condition.get("recordedDate"))
    if recorded is not None:
        recorded = min(recorded, today)
    return ConditionDates(
        earliest_onset=interval.earliest if interval else None,
        current_as_of=interval.latest if interval else recorded,
        recorded=recorded,
        onset_form=interval.form if interval else "",
    )


def newest_egfr(observations: Iterable[Mapping[str, Any]], loinc: Iterable[str]
                ) -> float | None:
    """The newest eGFR in mL/min/1.73 m² (units converted; None when unusable)."""
    return newest_egfr_reading(observations, loinc).value


def _in_window(as_of: date | None, window: int | None, today: date) -> bool:
    """A Condition counts for a windowed finding when dated inside the window or undated."""
    if window is None or as_of is None:
        return True  # no window; or no date at all: counts as current (criteria §10.1)
    return (today - as_of).days <= window


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
    red_flags = [f.code for f in vocabulary.red_flags()] if unknown_is_not_absent(
        vocabulary) else []
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
        birth = None
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

    # Findings, contraindications, duration, injury date from the Conditions.
    conditions = [c for c in prefetch.conditions.resources if condition_is_active(c)]
    findings: set[str] = set()
    contraindications: set[str] = set()
    earliest_onset: date | None = None
    earliest_recorded: date | None = None
    earliest_form = ""
    injury_dates: list[date] = []
    injury_undated = False
    for condition in conditions:
        pairs = list(codings(condition.get("code")))
        dates = condition_dates(condition, birth=birth, today=today)
        for code in matcher.findings(pairs):
            # An old R32 on a problem list is not a cauda equina sign; a fever from last
            # month is not a fever now (recency_days, delta §1.2).
            if not _in_window(dates.current_as_of, vocabulary.recency_days(code), today):
                continue
            findings.add(code)
            if code in INJURY_DATING_FINDINGS:
                if dates.current_as_of is None:
                    injury_undated = True
                else:
                    injury_dates.append(dates.current_as_of)
        contraindications |= matcher.contraindications(pairs)
        if matcher.is_spine_pain(pairs):
            if dates.earliest_onset is not None:
                if earliest_onset is None or dates.earliest_onset < earliest_onset:
                    earliest_onset = dates.earliest_onset
                    earliest_form = dates.onset_form
            elif dates.recorded and (earliest_recorded is None
                                     or dates.recorded < earliest_recorded):
                earliest_recorded = dates.recorded
    # The order's reasons describe the present complaint: they count as current.
    reason_pairs = [pair for concept in order.resource.get("reasonCode") or ()
                    for pair in codings(concept)]
    reason_findings = matcher.findings(reason_pairs)
    findings |= reason_findings
    if reason_findings & set(INJURY_DATING_FINDINGS):
        injury_undated = True
    contraindications |= matcher.contraindications(reason_pairs)

    conditions_available = prefetch.conditions.state in ("present", "empty")
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
            f"Contraindications coded as conditions (pregnancy, dialysis, kidney injury, "
            f"claustrophobia, devices) not derivable ({why}); assumed absent."))
    assumptions.append(_implant_assumption(vocabulary, contraindications))

    duration = _duration(earliest_onset, earliest_recorded, today, assumptions,
                         prefetch.conditions)
    if duration is not None:
        derived.add("symptom_duration_weeks")
        if earliest_form not in ("", "onsetDateTime"):
            assumptions.append(_assumption(
                "symptom_duration_weeks", duration,
                f"Symptom duration counted from an approximate onset ({earliest_form}): "
                "from the earliest date it allows."))
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
    if red_flags:  # vocabulary v2: days_since_injury exists (delta §6)
        recent = [d for d in injury_dates if (today - d).days <= INJURY_WINDOW_DAYS]
        if recent:
            request["days_since_injury"] = (today - max(recent)).days
            derived.add("days_since_injury")
        elif injury_undated:
            assumptions.append(_assumption(
                "days_since_injury", "0-7",
                "Injury date not derivable (the injury is coded without an onset or recorded "
                "date, or only as the order's reason): treated as an injury in the last 7 "
                "days."))

    reading = newest_egfr_reading(prefetch.egfr.resources, vocabulary.egfr_loinc) \
        if prefetch.egfr.usable else None
    if reading is not None and reading.value is not None:
        request["egfr"] = reading.value
        derived.add("egfr")
        if reading.converted_from:
            assumptions.append(_assumption(
                "egfr", reading.value,
                f"eGFR converted from {reading.converted_from} to mL/min/1.73 m² "
                f"({reading.value})."))
    else:
        if reading is None:
            why = f"the eGFR prefetch {_STATE_WORDS[prefetch.egfr.state]}"
        else:
            why = reading.problem or "no eGFR Observation had a usable value"
        assumptions.append(_assumption(
            "egfr", "not known",
            f"No usable eGFR ({why}); renal function unknown: check it before giving "
            "contrast."))

    assumptions += _not_assessed(vocabulary, red_flags, findings, conditions_available)
    return Derived(request=request, assumptions=tuple(assumptions),
                   derived_fields=frozenset(derived))


def _implant_assumption(vocabulary: Vocabulary, contraindications: set[str]
                        ) -> dict[str, Any]:
    """Implants and devices: what the record can say, and "screen before scanning"."""
    mapped = any(vocabulary.contraindications[c].icd10 or vocabulary.contraindications[c].snomed
                 for c in IMPLANT_CONTRAINDICATIONS if c in vocabulary.contraindications)
    if contraindications & set(IMPLANT_CONTRAINDICATIONS):
        message = ("An implant or device is coded in the record (see safety); others cannot "
                   "be excluded from the EHR data: screen the patient for MRI safety before "
                   "scanning.")
    elif mapped:
        message = ("No implant, device or metal fragment is coded in the record; that does "
                   "not exclude one: screen the patient for MRI safety before scanning.")
    else:
        message = ("Implants, cardiac devices and orbital metal cannot be derived from the EHR "
                   "data; none is known: screen the patient for MRI safety before scanning.")
    return _assumption("contraindications", "no implant or device known", message)


def _not_assessed(vocabulary: Vocabulary, red_flags: Sequence[str], present: set[str],
                  conditions_available: bool) -> list[dict[str, Any]]:
    """One ``not_assessed`` assumption per red flag not present (criteria 2026.2.0 §10.3)."""
    out = []
    for code in red_flags:
        if code in present:
            continue
        if not vocabulary.findings[code].derivable:
            why = WHY_NOT_DERIVABLE
        elif conditions_available:
            why = WHY_NOT_CODED
        else:
            why = WHY_UNAVAILABLE
        label = vocabulary.findings[code].label
        out.append(_assumption(
            f"findings.{code}", "not_assessed",
            f"{label}: {why}. Treated as absent for this rating; confirm."))
    return out


def _duration(onset: date | None, recorded: date | None, today: date,
              assumptions: list[dict[str, Any]], conditions: PrefetchItem) -> float | None:
    """Weeks since the earliest spine-pain onset (or, failing any onset, its recording)."""
    start = onset or recorded
    if start is None:
        if conditions.usable:
            why = "no active spine-pain Condition has a readable onset or a recorded date"
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
            "No spine-pain Condition has a readable onset; duration counted from the date the "
            "earliest one was recorded (symptoms may be older)."))
    return weeks
