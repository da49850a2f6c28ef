"""What people read about a decision, composed once: the headline, the plan, the handout.

Pure package (no Flask, no storage): each function takes a decision in the shape of the API's
response (``api-v1.md`` plus ``vocabulary-2026.2.0-delta.md`` §7) and the vocabulary it was
made under, and returns plain data the result page, the CDS Hooks card, the patient handout and
the audit detail all render. One computation, so every screen says the same first thing.
"""

from __future__ import annotations

from .handout import Handout, build_handout
from .headline import Headline, headline
from .plan import Plan, PlanItem, PlanStep, build_plan

__all__ = [
    "Handout", "Headline", "Plan", "PlanItem", "PlanStep", "build_handout", "build_plan",
    "headline",
]
