"""Plain-language wording for the enums the engine returns.

The HTML pages never show a raw enum value alone: every verdict and urgency is rendered as
words plus a CSS class that gives it a colour (colour is never the only signal).
"""

from __future__ import annotations

from referral_api.enums import RATING_WORDS

APPROPRIATENESS_WORDS: dict[str, str] = {
    **{rating: words.capitalize() for rating, words in RATING_WORDS.items()},
    # Not a rating: what a study's badge says when safety rules it out (presentation.plan).
    "contraindicated": "Contraindicated",
}

URGENCY_WORDS: dict[str, str] = {
    "emergent": "Emergent",
    "urgent": "Urgent",
    "routine": "Routine",
    "none": "None",
}

# What the urgency means in time, so a reader does not have to know the convention.
URGENCY_HINTS: dict[str, str] = {
    "emergent": "same day",
    "urgent": "within 7 days",
    "routine": "scheduled",
    "none": "no imaging now",
}

SAFETY_WORDS: dict[str, str] = {
    "clear": "No safety concerns",
    "caution": "Caution",
    "contraindicated": "Contraindicated",
}

CHANNEL_WORDS: dict[str, str] = {"api": "API", "cds-hooks": "CDS Hooks", "form": "Web form"}

FEEDBACK_WORDS: dict[str, str] = {
    "accepted": "Accepted",
    "overridden": "Overridden",
    "none": "No feedback",
}

SEX_WORDS: dict[str, str] = {
    "female": "Female",
    "male": "Male",
    "other": "Other",
    "unknown": "Unknown",
}

REGION_WORDS: dict[str, str] = {
    "cervical": "Cervical",
    "thoracic": "Thoracic",
    "lumbar": "Lumbar",
}

FINDING_GROUP_WORDS: dict[str, str] = {
    "red_flags": "Red flags",
    "neurological": "Neurological",
    "trauma": "Trauma",
    "history": "History",
    # vocabulary v2 (delta §8.7): clinical groups
    "cauda_equina": "Cauda equina",
    "neurology": "Neurology",
    "injury": "Injury",
    "infection": "Infection",
    "cancer": "Cancer",
    "imaging": "Imaging already done",
    "imaging_done": "Imaging already done",
    "other": "Other findings",
}

# Form controls in words, for the error summary (never "Egfr" or "Symptom duration weeks").
FIELD_LABELS: dict[str, str] = {
    "age": "Age",
    "sex": "Sex",
    "region": "Region",
    "requested_procedure": "Requested study",
    "symptom_duration_weeks": "Symptom duration",
    "conservative_care_weeks": "Conservative care",
    "egfr": "eGFR",
    "ordering_clinician": "Ordering clinician",
    "patient_reference": "Patient reference",
    "days_since_injury": "Days since the injury",
    "intervention_candidate": "Candidate for surgery or an intervention",
    "findings": "Findings",
    "contraindications": "Safety items",
    "confirm": "Red flags to confirm",
    "_form": "Form",
}


def group_words(code: str) -> str:
    """Words for a finding group code (the code in sentence case when the group is new)."""
    return FINDING_GROUP_WORDS.get(code, code.replace("_", " ").capitalize())


def field_label(name: str) -> str:
    """Words for a form control name."""
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def appropriateness_words(value: str | None) -> str:
    """Words for an appropriateness rating ("Usually appropriate"); the raw value if unknown."""
    if value is None:
        return "—"
    return APPROPRIATENESS_WORDS.get(value, value)


def urgency_words(value: str | None) -> str:
    """Words for an urgency ("Emergent"); the raw value if unknown."""
    if value is None:
        return "—"
    return URGENCY_WORDS.get(value, value)


def css_token(value: str | None) -> str:
    """A CSS-class-safe token: ``usually_appropriate`` -> ``usually-appropriate``."""
    if not value:
        return "unknown"
    return "".join(ch if ch.isalnum() else "-" for ch in value.lower())
