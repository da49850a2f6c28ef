"""Readability check of the patient information of a rule set (criteria 2026.2.0 §12).

Pure: no Flask, no storage. ``grade`` measures one text with textstat's Flesch–Kincaid grade
(textstat is pinned to 0.7.8: from 0.7.10 it loads NLTK data at run time and fails offline).
``check_patient_information`` validates a whole ``patient-information.yaml`` document and
returns human-readable problems; ``referral-api rules check`` reports them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import textstat

#: Placeholders every deployment configures, with the defaults used for measuring (criteria
#: §12.2 names these two; a document may declare more under ``placeholders``).
DEFAULT_PLACEHOLDERS: dict[str, str] = {
    "emergency_number": "911",
    "fever_threshold": "100.4 °F (38 °C)",
}

#: Fields of every scenario entry, in handout order (criteria §12.1, delta §7).
FIELDS: tuple[str, ...] = (
    "headline",
    "what_is_happening",
    "why_this_decision",
    "about_the_scan",
    "meanwhile",
    "come_back_if",
    "questions_to_ask",
    "if_scan_booked",
)
TEXT_FIELDS = ("headline", "what_is_happening", "why_this_decision")
NULLABLE_TEXT_FIELDS = ("about_the_scan", "if_scan_booked")
LIST_FIELDS = ("meanwhile", "questions_to_ask")

#: ``come_back_if[].level`` and the fixed phrase its ``action`` must begin with (§12.1).
LEVEL_PHRASES: dict[str, str] = {
    "emergency": "Emergency:",
    "today": "Get seen today",
    "week": "See your doctor within a week",
}

#: §12.2: a headline of at most 15 words; sentences of at most 20 words (25 in list items).
MAX_HEADLINE_WORDS = 15
MAX_SENTENCE_WORDS = 20
MAX_LIST_SENTENCE_WORDS = 25
#: §12.1: how many sentences a prose field holds, how many items a list holds (inclusive).
SENTENCES = {"headline": (1, 1), "what_is_happening": (2, 4), "why_this_decision": (2, 4)}
ITEMS = {"meanwhile": (2, 5), "questions_to_ask": (3, 5)}

#: Wording patients must never read: jargon that §12.2 and the standards forbid. "Conservative
#: care" is the clinician's phrase for "no imaging now"; next to an emergency it is dangerous,
#: and in a handout it is jargon anyway.
FORBIDDEN_PHRASES = ("conservative care", "gold standard", "will show everything")

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def placeholders_in(text: str) -> list[str]:
    """Names of the ``{placeholders}`` used in ``text``, in order of appearance."""
    return _PLACEHOLDER.findall(text)


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``{name}`` whose name is in ``values``; leave the others untouched."""
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)


def grade(text: str, placeholders: Mapping[str, str] | None = None) -> float:
    """Flesch–Kincaid grade of ``text`` after substituting placeholders with their defaults.

    ``placeholders`` defaults to ``DEFAULT_PLACEHOLDERS``; the value, not the name, is measured
    because the value is what the patient reads.
    """
    values = DEFAULT_PLACEHOLDERS if placeholders is None else placeholders
    return float(textstat.flesch_kincaid_grade(substitute(text, values)))


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def _text_problems(
    where: str,
    text: str,
    placeholders: Mapping[str, str],
    max_grade: float | None,
    max_sentence_words: int,
) -> list[str]:
    """Problems of one string: unknown placeholders, forbidden wording, length and grade.

    ``max_grade`` None skips the grade (the caller grades a larger unit).
    """
    problems = []
    if not text.strip():
        return [f"{where}: empty text"]
    for name in placeholders_in(text):
        if name not in placeholders:
            problems.append(f"{where}: unknown placeholder {{{name}}}")
    lowered = text.lower()
    for phrase in FORBIDDEN_PHRASES:
        if phrase in lowered:
            problems.append(f"{where}: forbidden wording {phrase!r}")
    for sentence in _sentences(substitute(text, placeholders)):
        words = len(sentence.split())
        if words > max_sentence_words:
            problems.append(
                f"{where}: sentence of {words} words (at most {max_sentence_words}): "
                f"{sentence[:60]!r}"
            )
    if max_grade is None:
        return problems
    measured = grade(text, placeholders)
    if measured > max_grade:
        problems.append(f"{where}: grade {measured:.1f} above {max_grade:g}: {text[:60]!r}")
    return problems


def _list_problems(
    where: str, value: Any, placeholders: Mapping[str, str], max_grade: float
) -> list[str]:
    if not isinstance(value, list) or not value:
        return [f"{where}: must be a non-empty list of strings"]
    problems = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            problems.append(f"{where}[{index}]: must be a string")
            continue
        problems += _text_problems(
            f"{where}[{index}]", item, placeholders, max_grade, MAX_LIST_SENTENCE_WORDS
        )
    return problems


def _come_back_problems(
    where: str, value: Any, placeholders: Mapping[str, str], max_grade: float
) -> list[str]:
    if not isinstance(value, list) or not value:
        return [f"{where}: must be a non-empty list of {{sign, level, action}}"]
    problems = []
    for index, item in enumerate(value):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{here}: must be a mapping with sign, level and action")
            continue
        missing = [key for key in ("sign", "level", "action") if key not in item]
        extra = sorted(set(item) - {"sign", "level", "action"})
        if missing:
            problems.append(f"{here}: missing {', '.join(missing)}")
        if extra:
            problems.append(f"{here}: unknown key(s) {', '.join(map(str, extra))}")
        level = item.get("level")
        if "level" in item and level not in LEVEL_PHRASES:
            problems.append(f"{here}: unknown level {level!r} (emergency, today or week)")
        texts = []
        for key in ("sign", "action"):
            if key not in item:
                continue
            if not isinstance(item[key], str):
                problems.append(f"{here}.{key}: must be a string")
                continue
            texts.append(item[key])
            # No grade here: the list item is graded as a whole, below.
            problems += _text_problems(
                f"{here}.{key}", item[key], placeholders, None, MAX_LIST_SENTENCE_WORDS
            )
        if len(texts) == 2:
            # The patient reads sign and action as one item ("sign → action"), and the fixed
            # action phrase alone ("Emergency: call 911 or go to the emergency department
            # now.") is a 10-word sentence whose grade says nothing about the item.
            measured = grade(" ".join(texts), placeholders)
            if measured > max_grade:
                problems.append(
                    f"{here}: grade {measured:.1f} above {max_grade:g} (sign and action "
                    f"together): {texts[0][:60]!r}"
                )
        action = item.get("action")
        if (
            level in LEVEL_PHRASES
            and isinstance(action, str)
            and not action.startswith(LEVEL_PHRASES[level])
        ):
            problems.append(
                f"{here}.action: a {level!r} action begins with {LEVEL_PHRASES[level]!r}"
            )
    return problems


def check_scenario(
    scenario_id: str,
    entry: Any,
    placeholders: Mapping[str, str],
    max_grade: float = 8.0,
) -> list[str]:
    """Problems of one scenario's patient information (fields, types, levels, grade)."""
    if not isinstance(entry, Mapping):
        return [f"{scenario_id}: must be a mapping of the fields {', '.join(FIELDS)}"]
    problems = []
    missing = [field for field in FIELDS if field not in entry]
    if missing:
        problems.append(f"{scenario_id}: missing field(s) {', '.join(missing)}")
    extra = sorted(set(entry) - set(FIELDS))
    if extra:
        problems.append(f"{scenario_id}: unknown field(s) {', '.join(map(str, extra))}")
    for field in TEXT_FIELDS + NULLABLE_TEXT_FIELDS:
        if field not in entry:
            continue
        value = entry[field]
        where = f"{scenario_id}.{field}"
        if value is None and field in NULLABLE_TEXT_FIELDS:
            continue
        if not isinstance(value, str):
            kind = "a string or null" if field in NULLABLE_TEXT_FIELDS else "a string"
            problems.append(f"{where}: must be {kind}")
            continue
        problems += _text_problems(where, value, placeholders, max_grade, MAX_SENTENCE_WORDS)
        if field == "headline" and len(value.split()) > MAX_HEADLINE_WORDS:
            problems.append(f"{where}: {len(value.split())} words (at most {MAX_HEADLINE_WORDS})")
        if field in SENTENCES:
            low, high = SENTENCES[field]
            count = len(_sentences(value))
            if not low <= count <= high:
                problems.append(f"{where}: {count} sentence(s) (§12.1: {low} to {high})")
    for field in LIST_FIELDS:
        if field in entry:
            problems += _list_problems(
                f"{scenario_id}.{field}", entry[field], placeholders, max_grade
            )
            count = len(entry[field]) if isinstance(entry[field], list) else 0
            low, high = ITEMS[field]
            if count and not low <= count <= high:
                problems.append(f"{scenario_id}.{field}: {count} item(s) (§12.1: {low} to {high})")
    if "come_back_if" in entry:
        problems += _come_back_problems(
            f"{scenario_id}.come_back_if", entry["come_back_if"], placeholders, max_grade
        )
    return problems


def check_patient_information(
    doc: Mapping, scenario_ids: Iterable[str], max_grade: float = 8.0
) -> list[str]:
    """Every problem of a patient-information document, as human-readable lines.

    ``scenario_ids`` are the rule set's scenarios: each needs exactly one entry. Checks the
    shape (locale, placeholders, scenarios), each entry's fields and types, ``come_back_if``
    levels and their fixed action phrases, placeholders used against those declared, and the
    Flesch–Kincaid grade of every string (each list item separately) against ``max_grade``.
    An empty list means the document passes.
    """
    if not isinstance(doc, Mapping):
        return ["patient information: the document must be a mapping"]
    problems = []
    if not isinstance(doc.get("locale"), str) or not doc.get("locale"):
        problems.append("patient information: 'locale' must be a non-empty string")
    placeholders = doc.get("placeholders")
    if not isinstance(placeholders, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in placeholders.items()
    ):
        problems.append("patient information: 'placeholders' must map names to default strings")
        placeholders = {}
    scenarios = doc.get("scenarios")
    if not isinstance(scenarios, Mapping):
        problems.append("patient information: 'scenarios' must map scenario ids to entries")
        return problems
    extra_keys = sorted(set(doc) - {"locale", "placeholders", "scenarios"})
    if extra_keys:
        problems.append(f"patient information: unknown key(s) {', '.join(map(str, extra_keys))}")
    expected = list(dict.fromkeys(scenario_ids))
    for scenario_id in expected:
        if scenario_id not in scenarios:
            problems.append(f"{scenario_id}: no patient information for this scenario")
    for scenario_id in scenarios:
        if scenario_id not in expected:
            problems.append(f"{scenario_id}: patient information for an unknown scenario")
    for scenario_id, entry in scenarios.items():
        problems += check_scenario(str(scenario_id), entry, placeholders, max_grade)
    return problems
