"""The patient handout: the decision's ``patient_information`` arranged for reading and print.

The words come from the rule files (criteria-2026.2.0 §12, substituted by the engine); this
module only orders them, groups "when to come back" by level (emergency now, today, within a
week), and adds the plan in plain words from the same plan the clinician sees. A decision made
under a rule set without patient information (2026.1.0) has no handout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .plan import Plan, build_plan
from .safety import MRI, ROUTES_BY_CODE, contraindicating_alerts

LEVELS: tuple[tuple[str, str], ...] = (
    ("emergency", "Go to the emergency department now if"),
    ("today", "Get seen today if"),
    ("week", "See your doctor within a week if"),
)

MODALITY_WORDS: dict[str, str] = {
    "mri": "an MRI scan",
    "ct": "a CT scan",
    "ct_myelography": "a CT myelogram",
    "xray": "X-rays",
}
REGION_WORDS: dict[str, str] = {
    "cervical": "your neck",
    "thoracic": "the middle of your back",
    "lumbar": "your lower back",
}
#: One plain sentence for a study whose name says little to a patient.
EXPLAIN: dict[str, str] = {
    "ct_myelography": "This is a CT scan. First, dye goes into your spine through a thin needle.",
}
STEP_TIMING: dict[str, str] = {
    "emergent": "today",
    "urgent": "within a week",
    "routine": "at a booked appointment",
}

#: "What to expect" for a CT myelogram (criteria-2026.2.0 §12.1: needle in the lower back, lie
#: flat afterwards as advised, headache advice), shown instead of the scenario's MRI text when
#: MRI is contraindicated and a CT myelogram comes first.
CT_MYELOGRAM_BLOCK = (
    "A doctor puts a thin needle into your lower back. Dye goes in through the needle.",
    "Then you have a CT scan. It does not hurt and takes a few minutes.",
    "Afterwards, lie flat for as long as the staff tell you.",
    "A headache is common. It is often worse when you sit or stand. Tell the staff or call "
    "your doctor if you get one.",
)

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class ComeBackGroup:
    """Signs that share one level, with the heading that says how fast to act."""

    level: str
    heading: str
    items: tuple[Mapping[str, str], ...]


@dataclass(frozen=True)
class ScanBlock:
    """One "if you are having …" block: a title and its points."""

    title: str
    points: tuple[str, ...]


@dataclass(frozen=True)
class Handout:
    """Everything the handout page shows, in reading order."""

    headline: str
    plan_lines: tuple[str, ...]
    what_is_happening: str
    why_this_decision: str
    about_the_scan: str
    meanwhile: tuple[str, ...]
    come_back: tuple[ComeBackGroup, ...]
    questions: tuple[str, ...]
    scan_blocks: tuple[ScanBlock, ...]
    emergency: bool
    #: Said first when MRI is contraindicated: the scan texts describe MRI, the plan does not.
    safety_note: str = ""

    @property
    def max_pages(self) -> int:
        """Printed length allowed: one A4 page, two for an emergency plan (issue 11)."""
        return 2 if self.emergency else 1


def _fill(text: Any, placeholders: Mapping[str, str]) -> str:
    """Substitute any placeholder the engine left (unknown names stay visible, never blank)."""
    return _PLACEHOLDER.sub(lambda m: placeholders.get(m.group(1), m.group(0)), str(text or ""))


def _items(value: Any, placeholders: Mapping[str, str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (_fill(value, placeholders),) if value.strip() else ()
    return tuple(_fill(v, placeholders) for v in value if str(v).strip())


def _study_words(item: Any) -> tuple[str, str]:
    study = MODALITY_WORDS.get(item.modality or "", item.label)
    where = ("the joints at the bottom of your spine" if "sacroiliac" in item.code
             else REGION_WORDS.get(item.region or "", "your spine"))
    return study, where


def patient_step_words(plan: Plan) -> tuple[str, ...]:
    """The plan for the patient: the preferred usable study of each step, in plain words."""
    lines: list[str] = []
    for step in plan.steps:
        usable = [i for i in step.items if i.status != "contraindicated"] or list(step.items)
        item = usable[0]
        study, where = _study_words(item)
        first = step.number == 1
        timing = STEP_TIMING.get(plan.urgency, "") if first else ""
        lead = "First" if first and len(plan.steps) > 1 else ("Then" if not first else "You need")
        line = f"{lead}: {study} of {where}" + (f", {timing}" if timing else "") + "."
        if item.modality in EXPLAIN:
            line += " " + EXPLAIN[item.modality]
        lines.append(line[0].upper() + line[1:])
    return tuple(lines)


def _scan_blocks(value: Any, placeholders: Mapping[str, str]) -> tuple[ScanBlock, ...]:
    """``if_scan_booked`` in whichever shape the rule files give it: text, list, or mapping."""
    if not value:
        return ()
    if isinstance(value, str):
        return (ScanBlock("If your scan is booked", _items(value, placeholders)),)
    if isinstance(value, Mapping):
        blocks = []
        for key, body in value.items():
            if isinstance(body, Mapping):
                title = body.get("title") or str(key)
                points = body.get("points") or body.get("items") or body.get("text")
            else:
                title, points = str(key), body
            blocks.append(ScanBlock(_fill(title, placeholders), _items(points, placeholders)))
        return tuple(b for b in blocks if b.points)
    blocks = []
    plain: list[str] = []
    for entry in value:
        if isinstance(entry, Mapping):
            title = entry.get("title") or entry.get("modality") or "If your scan is booked"
            points = entry.get("points") or entry.get("items") or entry.get("text")
            blocks.append(ScanBlock(_fill(title, placeholders), _items(points, placeholders)))
        else:
            plain.append(_fill(entry, placeholders))
    if plain:
        blocks.insert(0, ScanBlock("If your scan is booked", tuple(plain)))
    return tuple(b for b in blocks if b.points)


def build_handout(decision: Mapping[str, Any], vocabulary: Any,
                  placeholders: Mapping[str, str] | None = None) -> Handout | None:
    """The handout for ``decision``, or None when it carries no ``patient_information``."""
    info = decision.get("patient_information")
    if not isinstance(info, Mapping) or not info.get("headline"):
        return None
    values = dict(placeholders or {})
    plan = build_plan(decision, vocabulary)
    groups = []
    signs = [s for s in info.get("come_back_if") or () if isinstance(s, Mapping)]
    for level, heading in LEVELS:
        items = tuple({"sign": _fill(s.get("sign"), values), "action": _fill(s.get("action"),
                                                                              values)}
                      for s in signs if s.get("level") == level)
        if items:
            groups.append(ComeBackGroup(level=level, heading=heading, items=items))
    safety_note = ""
    patient_headline = _fill(info.get("headline"), values)
    scan_blocks = _scan_blocks(info.get("if_scan_booked"), values) if not plan.empty else ()
    contra = contraindicating_alerts(decision)
    usable = [i for step in plan.steps for i in step.items if i.status != "contraindicated"]
    if contra and usable and all(MRI in ROUTES_BY_CODE.get(str(a.get("code")), ())
                                 for a in contra):
        # The scenario's texts were written for an MRI; the plan now starts with another
        # study. Never tell the patient "you need an MRI" when MRI is ruled out.
        safety_note = ("An MRI scan is not safe for you. This is because of metal or a device "
                       "in your body. Your care team will use a different scan first.")
        study, where = _study_words(usable[0])
        timing = STEP_TIMING.get(str(decision.get("urgency")), "")
        patient_headline = f"You need {study} of {where}" + (f", {timing}" if timing else "") + "."
        scan_blocks = ((ScanBlock("If you are having a CT myelogram", CT_MYELOGRAM_BLOCK),)
                       if usable[0].modality == "ct_myelography" else ())
    return Handout(
        safety_note=safety_note,
        headline=patient_headline,
        plan_lines=patient_step_words(plan),
        what_is_happening=_fill(info.get("what_is_happening"), values),
        why_this_decision=_fill(info.get("why_this_decision"), values),
        about_the_scan=_fill(info.get("about_the_scan"), values),
        meanwhile=_items(info.get("meanwhile"), values),
        come_back=tuple(groups),
        questions=_items(info.get("questions_to_ask"), values),
        scan_blocks=scan_blocks,
        emergency=decision.get("urgency") == "emergent",
    )
