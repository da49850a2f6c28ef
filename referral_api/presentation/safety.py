"""Which studies each safety alert concerns, and at what level.

The engine's alerts name a contraindication (or an alert code) and, from 2026.2.0, a ``level``;
2026.1.0 alerts carry no level. Both are read here, so that a badge next to a study agrees with
the safety section: an MRI under an MR Unsafe implant is shown as contraindicated, never green.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Routes (criteria-2026.2.0 §9): which studies an alert code is about.
MRI = "mri"
GADOLINIUM = "gadolinium"
IODINATED = "iodinated"
IONISING = "ionising"
CONTRAST = "contrast"  # 2026.1.0 renal_impairment: any contrast study

ROUTES_BY_CODE: dict[str, tuple[str, ...]] = {
    "mr_unsafe_implant": (MRI,),
    "orbital_metal_foreign_body": (MRI,),
    "non_conditional_cardiac_device": (MRI,),
    "implant_unknown_mr_status": (MRI,),
    "neurostimulator": (MRI,),
    "intrathecal_pump": (MRI,),
    "cochlear_implant": (MRI,),
    "programmable_shunt": (MRI,),
    "retained_metal_fragments": (MRI,),
    "mr_conditional_implant": (MRI,),
    "severe_claustrophobia": (MRI,),
    "pregnancy": (GADOLINIUM, IONISING),
    "breastfeeding": (GADOLINIUM, IODINATED),
    "prior_gadolinium_reaction": (GADOLINIUM,),
    "prior_gadolinium_reaction_severe": (GADOLINIUM,),
    "prior_gadolinium_reaction_mild": (GADOLINIUM,),
    "renal_gadolinium": (GADOLINIUM,),
    "renal_iodinated": (IODINATED,),
    "metformin": (IODINATED,),
    "renal_impairment": (CONTRAST,),
}

# Alert codes that are not contraindication codes, in words (never the code itself).
ALERT_WORDS: dict[str, str] = {
    "renal_gadolinium": "Kidney function and gadolinium contrast",
    "renal_iodinated": "Kidney function and iodinated contrast",
    "renal_impairment": "Kidney function and contrast",
}

# 2026.1.0 alerts have no level: these two were its only contraindications (criteria.md §9).
LEGACY_CONTRAINDICATING = frozenset({"mr_unsafe_implant", "orbital_metal_foreign_body"})

LEVELS = ("info", "caution", "contraindicated")


def alert_level(alert: Mapping[str, Any], status: str | None) -> str:
    """The alert's level: its own (2026.2.0), else inferred for a 2026.1.0 alert."""
    level = alert.get("level")
    if level in LEVELS:
        return str(level)
    if status == "contraindicated" and alert.get("code") in LEGACY_CONTRAINDICATING:
        return "contraindicated"
    return "caution"


def alert_label(code: str, vocabulary: Any) -> str:
    """Words for an alert code: the vocabulary's label, else our own words, never the code."""
    item = vocabulary.contraindications.get(code) if vocabulary is not None else None
    if item is not None:
        return str(item.label)
    if code in ALERT_WORDS:
        return ALERT_WORDS[code]
    return code.replace("_", " ").capitalize()


def procedure_routes(procedure: Any) -> set[str]:
    """The routes a study belongs to (MRI, gadolinium, iodinated, ionising, contrast)."""
    routes: set[str] = set()
    modality = getattr(procedure, "modality", None)
    contrast = getattr(procedure, "contrast", None)
    with_contrast = contrast in ("with", "without_and_with")
    if modality == "mri":
        routes.add(MRI)
        if with_contrast:
            routes.update((GADOLINIUM, CONTRAST))
    if modality == "ct" and with_contrast:
        routes.update((IODINATED, CONTRAST))
    if modality == "ct_myelography":
        routes.add(CONTRAST)
    if modality in ("xray", "ct", "ct_myelography"):
        routes.add(IONISING)
    return routes


def alerts_for(procedure: Any, decision: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(code, level)`` of every alert of the decision that concerns ``procedure``."""
    safety = decision.get("safety") or {}
    status = safety.get("status")
    routes = procedure_routes(procedure)
    found: list[tuple[str, str]] = []
    for alert in safety.get("alerts") or ():
        code = str(alert.get("code", ""))
        if routes.intersection(ROUTES_BY_CODE.get(code, ())):
            found.append((code, alert_level(alert, status)))
    return found


def contraindicating_alerts(decision: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The decision's alerts at level ``contraindicated``, in order."""
    safety = decision.get("safety") or {}
    status = safety.get("status")
    return [a for a in safety.get("alerts") or () if alert_level(a, status) == "contraindicated"]
