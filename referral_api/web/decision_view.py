"""What the result page, the handout page and the audit detail show of one decision.

The composition itself (headline, plan, handout) lives in :mod:`referral_api.presentation`;
this module only adds what a page needs around it: labels in words, reasons tidied, the
"what would change this" rows with the changes of urgency first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from referral_api.presentation import Headline, build_handout, headline
from referral_api.presentation.handout import Handout
from referral_api.presentation.safety import alert_label, alert_level

URGENCY_ORDER = {"emergent": 0, "urgent": 1, "routine": 2, "none": 3}
LEVEL_WORDS = {"contraindicated": "Contraindicated", "caution": "Caution",
               "info": "For information"}

# A 2026.1.0 reason template produced "X is may be appropriate" (criteria-2026.2.0 §11 fixes it).
_GRAMMAR = ((re.compile(r"\bis may be appropriate\b"), "may be appropriate"),)
_CODE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


@dataclass(frozen=True)
class DecisionView:
    """A decision with its headline, plan, tidy reasons and sorted changes."""

    decision: Mapping[str, Any]
    top: Headline
    reasons: tuple[str, ...]
    urgency_changes: tuple[Mapping[str, Any], ...]
    other_changes: tuple[Mapping[str, Any], ...]
    alerts: tuple[Mapping[str, Any], ...]
    #: ``(urgency, [finding codes])`` for each urgency above the answer's, most urgent first:
    #: the short "what would change this" the clinician reads; the full table is behind
    #: "show all".
    escalations: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def all_changes(self) -> tuple[Mapping[str, Any], ...]:
        """Every change, the changes of urgency first (most urgent first)."""
        return self.urgency_changes + self.other_changes

    @property
    def plan(self) -> Any:
        """The plan the headline was computed from."""
        return self.top.plan


def tidy_reason(text: str, vocabulary: Any) -> str:
    """Fix a known grammar slip and replace any code that slipped into a reason by its label."""
    for pattern, replacement in _GRAMMAR:
        text = pattern.sub(replacement, text)

    def label(match: re.Match[str]) -> str:
        code = match.group(0)
        for table in (vocabulary.findings, vocabulary.contraindications, vocabulary.procedures):
            if code in table:
                return str(table[code].label)
        return code

    return _CODE.sub(label, text)


def build_view(decision: Mapping[str, Any], vocabulary: Any,
               request: Mapping[str, Any] | None = None) -> DecisionView:
    """Everything the result page shows, computed once from ``decision``."""
    current = URGENCY_ORDER.get(str(decision.get("urgency")), 3)
    urgency_changes, other = [], []
    for change in decision.get("would_change_if") or ():
        if URGENCY_ORDER.get(str(change.get("urgency")), 3) != current:
            urgency_changes.append(change)
        else:
            other.append(change)
    urgency_changes.sort(key=lambda c: URGENCY_ORDER.get(str(c.get("urgency")), 3))
    escalations: dict[str, list[str]] = {}
    for change in urgency_changes:
        level = str(change.get("urgency"))
        if URGENCY_ORDER.get(level, 3) < current:
            escalations.setdefault(level, []).append(str(change.get("finding")))
    safety = decision.get("safety") or {}
    alerts = tuple(
        {"code": a.get("code"), "label": alert_label(str(a.get("code")), vocabulary),
         "level": alert_level(a, safety.get("status")),
         "level_words": LEVEL_WORDS[alert_level(a, safety.get("status"))],
         "message": a.get("message")}
        for a in safety.get("alerts") or ()
    )
    return DecisionView(
        decision=decision,
        top=headline(decision, vocabulary, request),
        reasons=tuple(tidy_reason(str(r), vocabulary) for r in decision.get("reasons") or ()),
        urgency_changes=tuple(urgency_changes),
        other_changes=tuple(other),
        alerts=alerts,
        escalations=tuple((level, tuple(codes)) for level, codes in escalations.items()),
    )


def handout_for(decision: Mapping[str, Any], vocabulary: Any,
                placeholders: Mapping[str, str] | None = None) -> Handout | None:
    """The patient handout of ``decision`` (None when its rule set has no patient texts)."""
    return build_handout(decision, vocabulary, placeholders)
