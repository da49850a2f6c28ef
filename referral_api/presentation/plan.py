"""The plan as steps: "1. CT now → 2. MRI", alternatives within a step joined by "or".

From 2026.2.0 each recommended procedure carries ``step`` (delta §7: the same step = alternatives,
steps in order). A 2026.1.0 decision has no steps: its list is one step of alternatives in order
of preference. Each item's badge agrees with the safety alerts that concern it, and a caution
that names a non-MRI alternative ("otherwise CT myelography") puts that alternative in the plan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .safety import MRI, ROUTES_BY_CODE, alert_level, alerts_for

# Words a caution uses to name a non-MRI alternative without naming the exact study.
_MYELOGRAPHY = re.compile(r"\bCT myelograph|non-MRI alternative|non-MRI stud", re.IGNORECASE)

#: Cautions whose text names a non-MRI study for an emergency only (criteria-2026.2.0 §9 rows
#: 4 and 11: "In an emergency do not wait …", "for an emergency … CT myelography").
EMERGENCY_ONLY_ALTERNATIVE = frozenset({"implant_unknown_mr_status", "severe_claustrophobia"})

STEP_TIMING: dict[str, str] = {"emergent": "now", "urgent": "within 7 days",
                               "routine": "", "none": ""}


@dataclass(frozen=True)
class PlanItem:
    """One study in the plan (or the requested study), with the badge it must carry."""

    code: str
    label: str
    rating: str | None
    status: str  # "contraindicated" | "caution" | "clear"
    alert_codes: tuple[str, ...] = ()
    modality: str | None = None
    region: str | None = None

    @property
    def badge(self) -> str:
        """What the badge says: contraindication wins over any rating."""
        return "contraindicated" if self.status == "contraindicated" else (self.rating or "")


@dataclass(frozen=True)
class PlanStep:
    """Step ``number``: do one of ``items`` (first preferred); ``fallbacks`` come from cautions."""

    number: int
    items: tuple[PlanItem, ...]
    fallbacks: tuple[PlanItem, ...] = ()
    fallback_reasons: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """"CT lumbar spine without contrast or MRI lumbar spine without contrast"."""
        return " or ".join(item.label for item in self.items)


@dataclass(frozen=True)
class Plan:
    """Every step in order, the requested study's own badge, and one-line text."""

    steps: tuple[PlanStep, ...]
    requested: PlanItem | None
    urgency: str
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        """True when nothing is recommended now."""
        return not self.steps

    @property
    def first(self) -> PlanItem | None:
        """The study to do first (the preferred alternative of step 1)."""
        return self.steps[0].items[0] if self.steps else None

    @property
    def text(self) -> str:
        """"1. CT lumbar spine without contrast now → 2. MRI lumbar spine without contrast"."""
        parts = []
        for step in self.steps:
            timing = STEP_TIMING.get(self.urgency, "") if step.number == 1 else ""
            parts.append(f"{step.number}. {step.text}{' ' + timing if timing else ''}")
        return " → ".join(parts)


def _item(code: str, rating: str | None, decision: Mapping[str, Any], vocabulary: Any
          ) -> PlanItem:
    procedure = vocabulary.procedures.get(code) if vocabulary is not None else None
    alerts = alerts_for(procedure, decision) if procedure is not None else []
    levels = {level for _code, level in alerts}
    status = ("contraindicated" if "contraindicated" in levels
              else "caution" if "caution" in levels else "clear")
    return PlanItem(
        code=code,
        label=str(procedure.label) if procedure is not None else code,
        rating=rating,
        status=status,
        alert_codes=tuple(c for c, level in alerts if level != "info"),
        modality=getattr(procedure, "modality", None),
        region=getattr(procedure, "region", None),
    )


def _named_alternatives(message: str, region: str | None, vocabulary: Any) -> list[str]:
    """Non-MRI studies a caution names: exact labels, else CT myelography of ``region``."""
    found: list[str] = []
    lowered = message.lower()
    for code, procedure in vocabulary.procedures.items():
        if procedure.modality != "mri" and str(procedure.label).lower() in lowered:
            found.append(code)
    if not found and region and _MYELOGRAPHY.search(message):
        code = f"ct_myelography_{region}"
        if code in vocabulary.procedures:
            found.append(code)
    return found


def build_plan(decision: Mapping[str, Any], vocabulary: Any) -> Plan:
    """Group ``recommended_procedures`` into steps and attach the badges safety requires."""
    by_step: dict[int, list[PlanItem]] = {}
    for entry in decision.get("recommended_procedures") or ():
        number = entry.get("step")
        number = int(number) if isinstance(number, int) and number >= 1 else 1
        by_step.setdefault(number, []).append(
            _item(entry["code"], entry.get("rating"), decision, vocabulary))
    in_plan = {item.code for items in by_step.values() for item in items}

    safety = decision.get("safety") or {}
    emergent = decision.get("urgency") == "emergent"
    cautions = [a for a in safety.get("alerts") or ()
                if alert_level(a, safety.get("status")) == "caution"
                and MRI in ROUTES_BY_CODE.get(str(a.get("code")), ())
                and (emergent or str(a.get("code")) not in EMERGENCY_ONLY_ALTERNATIVE)]
    steps: list[PlanStep] = []
    for number in sorted(by_step):
        items = by_step[number]
        mri_regions = [i.region for i in items if i.modality == "mri"]
        fallbacks: list[PlanItem] = []
        reasons: list[str] = []
        if mri_regions and vocabulary is not None:
            for alert in cautions:
                for code in _named_alternatives(str(alert.get("message", "")), mri_regions[0],
                                                vocabulary):
                    if code not in in_plan and all(f.code != code for f in fallbacks):
                        fallbacks.append(_item(code, None, decision, vocabulary))
                    if str(alert.get("code")) not in reasons:
                        reasons.append(str(alert.get("code")))
        steps.append(PlanStep(number=len(steps) + 1, items=tuple(items),
                              fallbacks=tuple(fallbacks),
                              fallback_reasons=tuple(reasons) if fallbacks else ()))

    requested = decision.get("requested_procedure") or {}
    requested_item = (_item(requested["code"], requested.get("rating"), decision, vocabulary)
                      if requested.get("code") else None)
    return Plan(steps=tuple(steps), requested=requested_item,
                urgency=str(decision.get("urgency") or "none"))
