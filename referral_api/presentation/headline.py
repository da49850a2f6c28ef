"""The one headline: what the clinician should do, computed from rating, urgency, safety and
plan together (issue 11 item 1).

Rules, in the order they are applied:

- ``not_covered``: says so, with the urgency as an action ("same-day specialist assessment");
- an empty plan: "No imaging now: conservative care …" — but only when the urgency is routine
  or none; an emergent or urgent answer never mentions conservative care;
- a contraindication: names it and the study to do first ("MRI contraindicated (MR Unsafe
  implant): CT myelography, lumbar spine first");
- otherwise the first step of the plan with its timing ("Emergency: MRI … today").

The tone (the colour) is green only when the requested study is usually appropriate, safety is
clear and nothing is urgent; emergencies and contraindications are red.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .plan import Plan, build_plan
from .safety import MRI, ROUTES_BY_CODE, alert_label, contraindicating_alerts

PREFIX: dict[str, str] = {"emergent": "Emergency: ", "urgent": "Urgent: "}
TIMING: dict[str, str] = {"emergent": " today", "urgent": " within 7 days",
                          "routine": " (routine)", "none": ""}
SPECIALIST: dict[str, str] = {
    "emergent": "same-day specialist assessment",
    "urgent": "specialist assessment within 7 days",
    "routine": "routine specialist assessment",
    "none": "assess with paediatric criteria",
}
#: Tones, i.e. colours: emergency and danger are red, urgent and caution amber, ok green.
TONES = ("emergency", "danger", "urgent", "caution", "neutral", "ok")
CONSERVATIVE = "conservative care"
CARD_SUMMARY_MAX = 139


@dataclass(frozen=True)
class Headline:
    """The headline's words and tone (``TONES``); ``plan`` is the plan it was computed from."""

    text: str
    tone: str
    plan: Plan

    @property
    def is_green(self) -> bool:
        """True when the headline may be shown in green."""
        return self.tone == "ok"

    def summary(self, limit: int = CARD_SUMMARY_MAX) -> str:
        """The headline cut to ``limit`` characters (a CDS Hooks card summary is < 140)."""
        if len(self.text) <= limit:
            return self.text
        return self.text[: limit - 1].rstrip(" ,;:—") + "…"


def _reassess(request: Mapping[str, Any] | None) -> str:
    weeks = (request or {}).get("symptom_duration_weeks")
    if isinstance(weeks, int | float) and weeks < 6:
        return "reassess at 6 weeks"
    return "reassess if symptoms persist or change"


def headline(decision: Mapping[str, Any], vocabulary: Any,
             request: Mapping[str, Any] | None = None) -> Headline:
    """Compute the headline of ``decision`` (API response shape); ``request`` is its input, used
    only for the reassessment time of an empty plan."""
    plan = build_plan(decision, vocabulary)
    urgency = str(decision.get("urgency") or "none")
    rating = decision.get("appropriateness")
    safety_status = (decision.get("safety") or {}).get("status")
    prefix = PREFIX.get(urgency, "")
    timing = TIMING.get(urgency, "")
    scenario_id = str((decision.get("scenario") or {}).get("id") or "")

    if rating == "not_covered":
        if scenario_id.endswith("child_trauma_under_16"):
            text = (f"Not covered: injured child under 16 — "
                    f"{SPECIALIST[urgency] if urgency != 'none' else 'assess'} "
                    "with paediatric trauma criteria")
        else:
            text = f"Not covered by adult criteria — {SPECIALIST.get(urgency, SPECIALIST['none'])}"
        tone = "emergency" if urgency == "emergent" else "caution"
        return Headline(text=text, tone=tone, plan=plan)

    if plan.empty:
        if urgency in ("emergent", "urgent"):
            # Never "conservative care" next to an emergency, even if the plan came out empty.
            text = f"{prefix}no study listed — {SPECIALIST[urgency]}"
            return Headline(text=text, tone="emergency" if urgency == "emergent" else "urgent",
                            plan=plan)
        text = f"No imaging now: {CONSERVATIVE}, {_reassess(request)}"
        return Headline(text=text, tone="caution" if safety_status == "contraindicated"
                        else "neutral", plan=plan)

    contra = contraindicating_alerts(decision)
    usable = [item for step in plan.steps for item in step.items
              if item.status != "contraindicated"]
    if contra:
        names = ", ".join(dict.fromkeys(alert_label(str(a.get("code")), vocabulary)
                                        for a in contra))
        about_mri = all(MRI in ROUTES_BY_CODE.get(str(a.get("code")), ()) for a in contra)
        requested = plan.requested
        what = "MRI" if about_mri or requested is None else requested.label
        if usable:
            when = f",{timing}" if urgency in ("emergent", "urgent") else timing
            text = f"{prefix}{what} contraindicated ({names}): {usable[0].label} first{when}"
        else:
            text = f"{prefix}{what} contraindicated ({names}): agree another study with radiology"
        return Headline(text=text, tone="emergency" if urgency == "emergent" else "danger",
                        plan=plan)

    first = usable[0] if usable else plan.steps[0].items[0]
    text = f"{prefix}{first.label}{timing}"
    if len(plan.steps) > 1:
        text += f", then {plan.steps[1].items[0].label}"
    if first.status == "caution" and first.alert_codes:
        # The caution travels with the study it concerns: "… — caution: Pregnancy".
        names = ", ".join(dict.fromkeys(alert_label(code, vocabulary)
                                        for code in first.alert_codes))
        text += f" — caution: {names}"
    requested = plan.requested
    in_plan = {item.code for step in plan.steps for item in step.items}
    if (requested is not None and requested.code not in in_plan
            and requested.rating == "usually_not_appropriate"):
        text += f" — not {requested.label}"

    if urgency == "emergent":
        tone = "emergency"
    elif urgency == "urgent":
        tone = "urgent"
    elif safety_status == "caution" or (requested is not None and requested.status != "clear"):
        tone = "caution"
    elif rating == "usually_appropriate" and safety_status == "clear":
        tone = "ok"
    else:
        tone = "neutral"
    return Headline(text=text, tone=tone, plan=plan)
