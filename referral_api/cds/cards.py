"""CDS Hooks 2.0 cards and Argonaut PAMA system actions, built from a logged decision.

Pure module: no Flask, no database. A card is a function of the decision record, the draft
order and the service's base URL only, so a repeated ``hookInstance`` (which returns the
logged record) yields the very same card. Optional fields are left out rather than sent null
or empty (:func:`compact` enforces it on everything built here).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from referral_api.clinical.vocabulary import Vocabulary
from referral_api.enums import RATING_WORDS
from referral_api.presentation import headline

from .fhir import CPT_SYSTEM, LOINC_SYSTEM

PAMA_EXTENSION = "http://fhir.org/argonaut/Extension/pama-rating"
PAMA_CONSULT_ID = "http://fhir.org/argonaut/Extension/pama-rating-consult-id"
PAMA_AUC_APPLIED = "http://fhir.org/argonaut/Extension/pama-rating-auc-applied"
PAMA_QCDSM = "http://fhir.org/argonaut/Extension/pama-rating-qcdsm-consulted"
PAMA_CODESYSTEM = "http://fhir.org/argonaut/CodeSystem/pama-rating"
PAMA_EXTENSIONS = frozenset({PAMA_EXTENSION, PAMA_CONSULT_ID, PAMA_AUC_APPLIED, PAMA_QCDSM})

#: Code system of the override reasons offered on "usually not appropriate" cards.
OVERRIDE_REASON_SYSTEM = "urn:referral-api:cds:override-reason"
OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("findings-not-recorded", "Clinical findings not recorded in the EHR justify this study"),
    ("specialist-request", "Requested by a specialist after assessment"),
    ("conservative-care-failed", "Conservative care completed without improvement"),
    ("procedure-planning", "Needed to plan surgery or an intervention"),
    ("patient-specific", "Other patient-specific reason (see comment)"),
)

#: The override reason of a "usually not appropriate on recorded data" card (criteria
#: 2026.2.0 §10.5: code, display and project-owned system as written there).
RED_FLAG_OVERRIDE = {"system": "https://example.org/cds/override-reasons",
                     "code": "red-flag-not-in-record",
                     "display": "A red flag is present that is not in the record"}
#: How many red flags the first line of a UNA card names before "and N more".
RFNA_SHOWN = 6
#: Labels of the two non-finding facts that can join the RFNA list (criteria §10.4).
RFNA_AGE = "age"
RFNA_DURATION = "how long symptoms have lasted"

SUMMARY_MAX = 139  # CDS Hooks: "<140 characters"

_PAMA_RATING = {
    "usually_appropriate": "appropriate",
    "may_be_appropriate": "appropriate",
    "usually_not_appropriate": "not-appropriate",
    "not_covered": "no-criteria-apply",
}
_VERDICT = {**RATING_WORDS, "not_covered": "not covered by these adult criteria"}
_URGENCY = {
    "emergent": "emergent: image today",
    "urgent": "urgent: image within 7 days",
    "routine": "routine",
    "none": "no imaging now",
}


def compact(value: Any) -> Any:
    """Drop None, empty strings, empty lists and empty objects, recursively."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            item = compact(item)
            if item is None or item == "" or item == [] or item == {}:
                continue
            out[key] = item
        return out
    if isinstance(value, list | tuple):
        items = [compact(v) for v in value]
        return [v for v in items if not (v is None or v == "" or v == [] or v == {})]
    return value


def ruleset_url(base_url: str, version: str) -> str:
    """The URL naming a rule set version (``pama-rating-auc-applied``, card source)."""
    return f"{base_url.rstrip('/')}/v1/rulesets/{version}"


def pama_rating(appropriateness: str | None) -> str:
    """Argonaut PAMA rating for an appropriateness (None: an order no criteria cover)."""
    return _PAMA_RATING.get(appropriateness or "", "no-criteria-apply")


def pama_action(
    resource: Mapping[str, Any],
    *,
    rating: str,
    consult_id: str,
    auc_url: str | None,
    gcode: str | None,
) -> dict[str, Any]:
    """A ServiceRequest ``update`` carrying the PAMA extensions (the original, plus them)."""
    updated = copy.deepcopy(dict(resource))
    kept = [e for e in updated.get("extension") or ()
            if not (isinstance(e, Mapping) and e.get("url") in PAMA_EXTENSIONS)]
    extensions: list[dict[str, Any]] = [
        {"url": PAMA_EXTENSION,
         "valueCodeableConcept": {"coding": [{"system": PAMA_CODESYSTEM, "code": rating}]}},
        {"url": PAMA_CONSULT_ID, "valueUri": f"urn:uuid:{consult_id}"},
    ]
    if auc_url:
        extensions.append({"url": PAMA_AUC_APPLIED, "valueUri": auc_url})
    if gcode:
        extensions.append({"url": PAMA_QCDSM, "valueString": gcode})
    updated["extension"] = [*kept, *extensions]
    return compact({
        "type": "update",
        "description": f"PAMA appropriate use rating: {rating}",
        "resource": updated,
    })


def procedure_code(vocabulary: Vocabulary, code: str) -> dict[str, Any]:
    """A FHIR CodeableConcept for a vocabulary procedure (its CPT codes, then LOINC)."""
    proc = vocabulary.procedures[code]
    coding = [{"system": CPT_SYSTEM, "code": c} for c in proc.cpt]
    coding += [{"system": LOINC_SYSTEM, "code": c} for c in proc.loinc]
    return {"coding": coding, "text": proc.label}


def _label(vocabulary: Vocabulary, code: str) -> str:
    proc = vocabulary.procedures.get(code)
    return proc.label if proc else code


def _finding_label(vocabulary: Vocabulary, code: str) -> str:
    item = vocabulary.findings.get(code) or vocabulary.contraindications.get(code)
    return item.label if item else code.replace("_", " ")


def _fit(text: str, suffix: str = "") -> str:
    """``text`` + ``suffix`` under 140 characters, shortening ``text`` (never the suffix)."""
    room = SUMMARY_MAX - len(suffix)
    if len(text) > room:
        text = text[: room - 1].rstrip() + "…"
    return text + suffix


def _v1_summary(record: Mapping[str, Any], vocabulary: Vocabulary) -> str:
    requested = record["requested_procedure"]["code"]
    text = f"{_label(vocabulary, requested)}: {_VERDICT.get(record['appropriateness'], '?')}"
    if record.get("urgency") in ("emergent", "urgent"):
        text += f" ({_URGENCY[record['urgency']]})"
    if (record.get("safety") or {}).get("status") == "contraindicated":
        text += "; MRI contraindicated"
    return text


def rfna_case(record: Mapping[str, Any], vocabulary: Vocabulary) -> str | None:
    """Which §10.5 row applies: "una", "on-recorded-data", or None (v1 card)."""
    if record.get("urgency") == "emergent" or not rfna(record, vocabulary):
        return None
    if record.get("appropriateness") == "usually_not_appropriate":
        return "una"
    if record.get("appropriateness") in ("usually_appropriate", "may_be_appropriate"):
        return "on-recorded-data"
    return None


def summary(record: Mapping[str, Any], vocabulary: Vocabulary) -> str:
    """"<study>: <verdict>[, <urgency>]", under 140 characters (criteria 2026.2.0 §10.5)."""
    case = rfna_case(record, vocabulary)
    if case == "una":
        label = _label(vocabulary, record["requested_procedure"]["code"])
        return _fit(label, ": usually not appropriate on recorded data — confirm red flags")
    if case == "on-recorded-data":
        return _fit(_v1_summary(record, vocabulary), " (on recorded data)")
    return _fit(_v1_summary(record, vocabulary))


def indicator(record: Mapping[str, Any]) -> str:
    """critical (emergent), warning (usually not appropriate or contraindicated), else info."""
    if record.get("urgency") == "emergent":
        return "critical"
    if record.get("appropriateness") == "usually_not_appropriate" or (
            (record.get("safety") or {}).get("status") == "contraindicated"):
        return "warning"
    return "info"


def _assumed_fields(record: Mapping[str, Any]) -> set[str | None]:
    return {a.get("field") for a in record.get("assumptions") or () if isinstance(a, Mapping)}


def findings_assumed(record: Mapping[str, Any]) -> bool:
    """True when the decision assumed findings absent (no conditions were available)."""
    return "findings" in _assumed_fields(record)


def not_assessed(record: Mapping[str, Any]) -> list[str]:
    """The findings the decision lists as ``not_assessed`` (criteria 2026.2.0 §10.3)."""
    return [str(a["field"]).split(".", 1)[1] for a in record.get("assumptions") or ()
            if isinstance(a, Mapping) and a.get("assumed") == "not_assessed"
            and str(a.get("field", "")).startswith("findings.")]


def rfna_codes(record: Mapping[str, Any], vocabulary: Vocabulary) -> list[str]:
    """Red flags that matter (RFNA, criteria §10.4): the not-assessed findings whose presence
    alone would make the answer emergent or urgent, in vocabulary order."""
    unassessed = set(not_assessed(record))
    changing = {c.get("finding") for c in record.get("would_change_if") or ()
                if isinstance(c, Mapping) and c.get("urgency") in ("emergent", "urgent")}
    return [code for code in vocabulary.findings if code in unassessed and code in changing]


def rfna(record: Mapping[str, Any], vocabulary: Vocabulary) -> list[str]:
    """RFNA as labels: the findings of :func:`rfna_codes`, then age and duration when they
    were assumed and the answer is usually not appropriate."""
    if vocabulary.format < 2:
        return []  # 2026.1.0 (vocabulary v1): the v1 card, unchanged
    labels = [_finding_label(vocabulary, code) for code in rfna_codes(record, vocabulary)]
    if record.get("appropriateness") == "usually_not_appropriate":
        for item in record.get("assumptions") or ():
            if not isinstance(item, Mapping):
                continue
            if item.get("field") == "patient.age" and RFNA_AGE not in labels:
                labels.append(RFNA_AGE)
            elif (item.get("field") == "symptom_duration_weeks"
                  and str(item.get("message", "")).startswith("Symptom duration not derivable")
                  and RFNA_DURATION not in labels):
                labels.append(RFNA_DURATION)
    return labels


def _listed(labels: Sequence[str], limit: int | None = None) -> str:
    shown = list(labels if limit is None else labels[:limit])
    rest = len(labels) - len(shown)
    # Labels after the first continue the sentence: lower-case, unless an acronym ("OPLL").
    words = [shown[0], *(label if label[1:2].isupper() else label[:1].lower() + label[1:]
                         for label in shown[1:])] if shown else []
    text = ", ".join(words)
    return f"{text}, and {rest} more" if rest else text


def form_url(record: Mapping[str, Any], vocabulary: Vocabulary, base_url: str) -> str:
    """The clinician form prefilled from this decision (and ``confirm=`` for RFNA)."""
    params = form_link_params(record)
    codes = rfna_codes(record, vocabulary)
    if codes:
        # delta §8.4: the form asks these first, each answered yes or no ...
        params.append(("confirm", ",".join(codes)))
    if rfna(record, vocabulary):
        # ... and the new form decision references this one.
        params.append(("cds_decision", record["decision_id"]))
    return f"{base_url.rstrip('/')}/?{urlencode(params)}"


def form_link_params(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The derived facts as the clinician form's query parameters (API field names).

    Assumed values are left out, so the clinician fills them in; the patient reference never
    goes into a URL.
    """
    data = record.get("input") or {}
    assumed = _assumed_fields(record)
    params: list[tuple[str, str]] = []
    patient = data.get("patient") or {}
    if "age" in patient and "patient.age" not in assumed:
        params.append(("age", str(patient["age"])))
    if patient.get("sex"):
        params.append(("sex", patient["sex"]))
    params.append(("region", record["region"]))
    params.append(("requested_procedure", record["requested_procedure"]["code"]))
    if "symptom_duration_weeks" in data and "symptom_duration_weeks" not in assumed:
        params.append(("symptom_duration_weeks", _number(data["symptom_duration_weeks"])))
    params += [("findings", code) for code in data.get("findings") or ()]
    params += [("contraindications", code) for code in data.get("contraindications") or ()]
    if data.get("egfr") is not None:
        params.append(("egfr", _number(data["egfr"])))
    if data.get("days_since_injury") is not None:
        params.append(("days_since_injury", str(data["days_since_injury"])))
    return params


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _first_line(record: Mapping[str, Any], vocabulary: Vocabulary, link: str) -> str | None:
    """The §10.5 first line of the detail when the rating rests on recorded data."""
    case = rfna_case(record, vocabulary)
    if case == "una":
        return ("**Confirm red flags before relying on this.** Not assessed from the record: "
                f"{_listed(rfna(record, vocabulary), RFNA_SHOWN)}. [Record them in the form]"
                f"({link}) — the answer may change to urgent or emergency imaging.")
    if case == "on-recorded-data":
        return (f"Not assessed from the record: {_listed(rfna(record, vocabulary))}. If any is "
                "present the urgency or the study may change: "
                f"[confirm in the form]({link}).")
    return None


def _assumption_lines(record: Mapping[str, Any], vocabulary: Vocabulary) -> list[str]:
    """Assumptions for the detail; the many ``not_assessed`` ones grouped by their reason."""
    lines: list[str] = []
    groups: dict[str, list[str]] = {}
    others: list[str] = []
    for item in record.get("assumptions") or ():
        if not isinstance(item, Mapping):
            continue
        message = str(item.get("message") or "")
        if item.get("assumed") == "not_assessed":
            label, _, rest = message.partition(": ")
            why = rest.split(". Treated as absent")[0] if rest else "not assessed"
            groups.setdefault(why, []).append(label)
        else:
            others.append(f"- {message}")
    if others:
        lines.append("\n**Assumed** (not derivable from the EHR data sent)")
        lines += others
    if groups:
        lines.append("\n**Assumed: red flags not assessed** (treated as absent for this rating; "
                     "confirm)")
        lines += [f"- {why[:1].upper() + why[1:]}: {_listed(labels)}."
                  for why, labels in groups.items()]
    return lines


def detail(record: Mapping[str, Any], vocabulary: Vocabulary, link: str | None = None) -> str:
    """The card's Markdown: verdict, reasons, recommendation, assumptions, changes, safety."""
    lines: list[str] = []
    first = _first_line(record, vocabulary, link) if link else None
    if first:
        lines.append(first + "\n")
    requested = record["requested_procedure"]["code"]
    scenario = record.get("scenario") or {}
    urgency = _URGENCY.get(str(record.get("urgency")), "?")
    lines.append(
        f"**{_VERDICT.get(record['appropriateness'], '?').capitalize()}**: "
        f"{_label(vocabulary, requested)}. Urgency: {urgency}.")
    # The headline the result page, the handout and the audit detail show (one computation,
    # referral_api.presentation); the summary keeps the contract's study + verdict wording.
    top = headline(record, vocabulary, record.get("input"))
    lines.append(f"\n**{'On recorded data only: ' if first else ''}{top.text}**")
    if scenario.get("title"):
        lines.append(f"\nScenario: {scenario['title']} (`{scenario.get('id', '')}`).")
    reasons = record.get("reasons") or ()
    if reasons:
        lines.append("\n**Why**")
        lines += [f"- {reason}" for reason in reasons]
    recommended = record.get("recommended_procedures") or ()
    if recommended:
        lines.append("\n**Recommended studies** (first preferred)")
        lines += [f"- {_label(vocabulary, p['code'])} ({', '.join(p.get('cpt') or ())}; "
                  f"{_VERDICT.get(p.get('rating'), '?')})" for p in recommended]
    elif record.get("urgency") in ("emergent", "urgent") or (
            record.get("appropriateness") == "not_covered"):
        # Never "conservative care" next to an emergency, nor for a case these criteria do
        # not cover (an injured child under 16: paediatric assessment, urgency by flag).
        timing = {"emergent": "same-day specialist assessment",
                  "urgent": "specialist assessment within 7 days"}.get(
            str(record.get("urgency")), "specialist (paediatric) assessment")
        lines.append(f"\n**Recommended**: no study is listed by these criteria; {timing}.")
    else:
        lines.append("\n**Recommended studies**: none listed (see above).")
    alerts = (record.get("safety") or {}).get("alerts") or ()
    if alerts:
        lines.append(f"\n**Safety** ({record['safety'].get('status')})")
        lines += [f"- {alert.get('message') or alert.get('code')}" for alert in alerts]
    lines += _assumption_lines(record, vocabulary)
    changes = record.get("would_change_if") or ()
    if changes:
        lines.append("\n**Would change the answer** (if present)")
        for change in changes:
            parts = [f"{k}: {str(change[k]).replace('_', ' ')}"
                     for k in ("appropriateness", "urgency") if change.get(k)]
            lines.append(f"- {_finding_label(vocabulary, str(change.get('finding')))}"
                         + (f" ({'; '.join(parts)})" if parts else ""))
    sources = scenario.get("sources") or ()
    if sources:
        lines.append("\n**Sources**: " + "; ".join(sources) + ".")
    ruleset = record.get("ruleset") or {}
    lines.append(f"\nRule set {ruleset.get('id')} {ruleset.get('version')}; "
                 f"decision `{record['decision_id']}`.")
    return "\n".join(lines)


def suggestion(
    record: Mapping[str, Any],
    order: Mapping[str, Any],
    vocabulary: Vocabulary,
) -> dict[str, Any] | None:
    """Replace the order with the first recommended study, when that differs.

    Offered only when no finding was assumed and no red flag that matters is unassessed
    (criteria 2026.2.0 §10.5): suggesting another study on assumed-absent findings would
    steer the order on data nobody checked.
    """
    recommended = record.get("recommended_procedures") or ()
    if not recommended or findings_assumed(record) or rfna(record, vocabulary):
        return None
    first = recommended[0]["code"]
    if first == record["requested_procedure"]["code"] or first not in vocabulary.procedures:
        return None
    replacement = copy.deepcopy(dict(order))
    replacement["code"] = procedure_code(vocabulary, first)
    replacement["extension"] = [e for e in replacement.get("extension") or ()
                                if not (isinstance(e, Mapping) and e.get("url") in PAMA_EXTENSIONS)]
    label = _label(vocabulary, first)
    return {
        "label": f"Order {label} instead"[:140],
        # Deterministic, so a repeated hookInstance returns an identical card.
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:uuid:{record['decision_id']}#{first}")),
        "isRecommended": True,
        "actions": [{
            "type": "update",
            "description": f"Replace the draft order with {label}",
            "resource": replacement,
        }],
    }


def build_card(
    record: Mapping[str, Any],
    order: Mapping[str, Any],
    vocabulary: Vocabulary,
    *,
    base_url: str,
) -> dict[str, Any]:
    """The card for one logged spine-imaging decision."""
    ruleset = record["ruleset"]
    scenario = record.get("scenario") or {}
    link = form_url(record, vocabulary, base_url)
    card: dict[str, Any] = {
        "uuid": record["decision_id"],
        "summary": summary(record, vocabulary),
        "detail": detail(record, vocabulary, link),
        "indicator": indicator(record),
        "source": {
            "label": f"{ruleset['id']} {ruleset['version']}",
            "url": ruleset_url(base_url, ruleset["version"]),
            "topic": {
                "system": ruleset_url(base_url, ruleset["version"]),
                "code": scenario.get("id"),
                "display": scenario.get("title"),
            },
        },
    }
    if record.get("appropriateness") == "usually_not_appropriate":
        card["overrideReasons"] = [{"system": OVERRIDE_REASON_SYSTEM, "code": code,
                                    "display": display} for code, display in OVERRIDE_REASONS]
        if rfna(record, vocabulary):
            card["overrideReasons"].insert(0, dict(RED_FLAG_OVERRIDE))
    suggested = suggestion(record, order, vocabulary)
    if suggested:
        card["suggestions"] = [suggested]
        card["selectionBehavior"] = "at-most-one"
    card["links"] = [{
        "label": ("Confirm red flags in the referral form" if rfna(record, vocabulary)
                  else "Review in the referral form"),
        "url": link,
        "type": "absolute",
    }]
    # The patient handout once the answer stands; not while red flags await confirmation
    # (the confirming form decision has its own handout).
    if record.get("patient_information") and rfna_case(record, vocabulary) is None:
        card["links"].append({"label": "Patient handout",
                              "url": f"{base_url.rstrip('/')}/decisions/"
                                     f"{record['decision_id']}/patient",
                              "type": "absolute"})
    return compact(card)


def response_body(cards: Sequence[dict[str, Any]], actions: Sequence[dict[str, Any]]
                  ) -> dict[str, Any]:
    """The service response: cards, plus the PAMA actions in both places clients look."""
    body: dict[str, Any] = {"cards": list(cards)}
    if actions:
        body["systemActions"] = list(actions)
        # Pre-2.0 PAMA clients read the actions from the extension (Argonaut PAMA IG).
        body["extension"] = {"systemActions": copy.deepcopy(list(actions))}
    return body


__all__ = [
    "build_card", "compact", "form_link_params", "form_url", "indicator", "not_assessed",
    "pama_action", "pama_rating", "response_body", "rfna", "rfna_codes", "ruleset_url",
    "suggestion", "summary",
]
