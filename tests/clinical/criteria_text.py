"""Scenario tables and §12.3 patient texts, read from ../shared/clinical/criteria-2026.2.0.md.

The tests take scenario ids, urgencies, plans and the given patient texts from the criteria
document itself, so they cannot drift from it. The parser is deliberately strict: a table or
text block it cannot read is an error, not an empty result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from referral_api.config import PROJECT_ROOT

CRITERIA = PROJECT_ROOT.parent / "shared" / "clinical" / "criteria-2026.2.0.md"
PATIENT_INFORMATION = (
    PROJECT_ROOT / "rules" / "spine-imaging" / "2026.2.0" / "patient-information.yaml"
)

#: Section of the criteria holding each region's table, and the row after which the §8 child
#: rows sit ("after the last trauma row: lumbar and thoracic row 3, cervical row 6").
REGION_TABLES = {"lumbar": 5, "thoracic": 6, "cervical": 7}
_ROW = re.compile(
    r"^\| (c?\d+) \| `([^`]+)` \| ([^|]*) \| ([^|]*) \| ([^|]*) \| ([^|]*) \| ([^|]*) \|"
)


@dataclass(frozen=True)
class ScenarioRow:
    """One scenario as the criteria table states it."""

    scenario_id: str
    urgency: str  # the urgency cell, with "as lumbar N" resolved
    ua_plan: str  # the UA (plan) cell; "—" when empty
    mba: str  # the MBA cell

    @property
    def can_be_emergent(self) -> bool:
        """Emergent, or emergent under a condition ("emergent when …, else urgent")."""
        return self.urgency.startswith("emergent")

    @property
    def plans_a_study(self) -> bool:
        """A UA plan, or a ★ MBA item recommended when the UA plan is empty (criteria §3.6)."""
        return not self.ua_plan.startswith("—") or "★" in self.mba


def _text() -> str:
    return CRITERIA.read_text(encoding="utf-8")


def section(number: int) -> str:
    """The text of ``## <number>. …`` up to the next ``## `` heading."""
    match = re.search(rf"^## {number}\. .*?(?=^## )", _text(), re.S | re.M)
    if match is None:
        raise LookupError(f"criteria section {number} not found")
    return match.group(0)


def _rows(number: int) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for line in section(number).splitlines():
        match = _ROW.match(line)
        if match:
            num, sid, _age, _condition, urgency, ua, mba = match.groups()
            rows.append((num, sid, urgency.strip(), ua.strip(), mba.strip()))
    if not rows:
        raise LookupError(f"no scenario rows in criteria section {number}")
    return rows


def scenarios() -> list[ScenarioRow]:
    """Every scenario of 2026.2.0 in table order, child rows instantiated in every region."""
    child_rows = _rows(8)
    child_names = re.findall(r"`<region>\.(child_[a-z0-9_]+)`", section(8))
    if {sid.split(".", 1)[1] for _, sid, *_ in child_rows} != set(child_names):
        raise LookupError("§8 ids in the text and in the table disagree")
    lumbar: dict[str, tuple[str, str]] = {}
    result = []
    for region, number in REGION_TABLES.items():
        last_trauma_row = "6" if region == "cervical" else "3"
        for num, sid, urgency, ua, mba in _rows(number):
            same = re.fullmatch(r"as lumbar (\d+)", urgency)
            if same:
                urgency = lumbar[same.group(1)][0]
            if region == "lumbar":
                lumbar[num] = (urgency, ua)
            result.append(ScenarioRow(sid, urgency, ua, mba))
            if num == last_trauma_row:
                for _, child_id, child_urgency, child_ua, child_mba in child_rows:
                    name = child_id.split(".", 1)[1]
                    result.append(
                        ScenarioRow(f"{region}.{name}", child_urgency, child_ua, child_mba)
                    )
    return result


def scenario_ids() -> list[str]:
    """The scenario ids of 2026.2.0, in table order."""
    return [row.scenario_id for row in scenarios()]


@dataclass(frozen=True)
class GivenText:
    """One scenario's text as §12.3 gives it: prose fields and list items."""

    scenario_id: str
    fields: dict[str, str]
    lists: dict[str, list[str]]


_FIELD_LINE = re.compile(r"^- ([a-z_]+):\s?(.*)$")


def given_texts() -> dict[str, GivenText]:
    """§12.3 texts by scenario id (the first id of each block's heading)."""
    body = section(12).split("**12.3 Texts**", 1)[1]
    blocks = re.split(r"^(?=`[a-z]+\.[a-z0-9_]+`)", body, flags=re.M)
    result = {}
    for block in blocks:
        heading = re.match(r"`([a-z]+\.[a-z0-9_]+)`", block)
        if heading is None:
            continue
        fields: dict[str, str] = {}
        lists: dict[str, list[str]] = {}
        current = None
        for line in block.splitlines()[1:]:
            field = _FIELD_LINE.match(line)
            if field:
                current, value = field.groups()
                if current in ("meanwhile", "come_back_if", "questions_to_ask"):
                    lists[current] = [v.strip() for v in value.split(" · ")] if value else []
                else:
                    fields[current] = value.strip()
            elif line.startswith("  - ") and current == "come_back_if":
                lists[current].append(line[4:].strip())
        result[heading.group(1)] = GivenText(heading.group(1), fields, lists)
    if len(result) != 8:
        raise LookupError(f"§12.3 should give 8 texts, found {len(result)}")
    return result
