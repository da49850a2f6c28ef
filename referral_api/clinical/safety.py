"""Safety modifiers: re-order a recommendation and raise alerts; never change a clinical rating.

Pure module. The modifiers themselves are data (ruleset.yaml `safety`, in order); this module
implements their effect kinds:

- `non_mri_first`: the scenario's non-MRI studies (UA list, then MBA list, without duplicates)
  lead, followed by the MRIs the recommendation held; when the scenario names no non-MRI study,
  CT myelography of the request's region leads. An empty recommendation stays empty.
- `prefer_mri_without_contrast`: when a gadolinium MRI of the request's region comes before that
  region's MRI without contrast, and the latter is UA for the scenario, it moves just before it.
- `none`: an alert only.

Rule language 2 (2026.2.0 and later) uses :func:`apply_rows` instead: rows that apply when a
route set is in play (criteria-2026.2.0 §9), each with an alert level, on a plan of steps.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from referral_api.clinical.model import SafetyModifier
from referral_api.clinical.vocabulary import Vocabulary

STATUS_RANK = {"clear": 0, "caution": 1, "contraindicated": 2}


@dataclass(frozen=True)
class SafetyOutcome:
    """The recommendation after the modifiers, the overall status and the alerts."""

    recommended: tuple[str, ...]
    status: str
    alerts: tuple[dict[str, str], ...]


def non_mri_first(
    recommended: Sequence[str],
    ua: Sequence[str],
    mba: Sequence[str],
    region: str,
    vocabulary: Vocabulary,
) -> list[str]:
    """Re-order for an MRI contraindication (see the module docstring)."""
    if not recommended:
        return []
    procedures = vocabulary.procedures
    leading: list[str] = []
    for code in (*ua, *mba):
        if not procedures[code].is_mri and code not in leading:
            leading.append(code)
    if not leading:
        leading = [f"ct_myelography_{region}"]
    mris = [code for code in recommended if procedures[code].is_mri and code not in leading]
    return leading + mris


def prefer_mri_without_contrast(
    recommended: Sequence[str], ua: Collection[str], region: str, vocabulary: Vocabulary
) -> list[str]:
    """Move the region's MRI w/o just before the first gadolinium MRI of the region before it."""
    out = list(recommended)
    plain_mri = f"mri_{region}_without_contrast"
    if plain_mri not in ua or plain_mri not in out:
        return out
    at = out.index(plain_mri)
    procedures = vocabulary.procedures
    for i, code in enumerate(out[:at]):
        proc = procedures[code]
        if proc.region == region and proc.uses_gadolinium:
            out.pop(at)
            out.insert(i, plain_mri)
            break
    return out


def apply(
    modifiers: Sequence[SafetyModifier],
    *,
    region: str,
    requested: str,
    recommended: Sequence[str],
    ua: Sequence[str],
    mba: Sequence[str],
    contraindications: Collection[str],
    egfr: float | None,
    vocabulary: Vocabulary,
) -> SafetyOutcome:
    """Apply every modifier in order; each one that applies adds its alert(s)."""
    current = list(recommended)
    status = "clear"
    alerts: list[dict[str, str]] = []
    procedures = vocabulary.procedures
    for mod in modifiers:
        present = [c for c in mod.contraindications if c in contraindications]
        egfr_low = mod.egfr_below is not None and egfr is not None and egfr < mod.egfr_below
        if not present and not egfr_low:
            continue
        if mod.requires_contrast and not (
            procedures[requested].uses_contrast
            or any(procedures[c].uses_contrast for c in current)
        ):
            continue
        if mod.effect == "non_mri_first":
            current = non_mri_first(current, ua, mba, region, vocabulary)
        elif mod.effect == "prefer_mri_without_contrast":
            current = prefer_mri_without_contrast(current, ua, region, vocabulary)
        ionising = bool(mod.ionising_message) and any(
            procedures[c].uses_ionising_radiation for c in current
        )
        for code in [mod.alert_code] if mod.alert_code else present:
            text = mod.messages.get(code, mod.message)
            if ionising:
                text = f"{text} {mod.ionising_message}"
            alerts.append({"code": code, "message": text})
        if STATUS_RANK[mod.status] > STATUS_RANK[status]:
            status = mod.status
    return SafetyOutcome(recommended=tuple(current), status=status, alerts=tuple(alerts))


# --- rule language 2: safety rows by route (criteria-2026.2.0 §9) ------------------------------


@dataclass(frozen=True)
class SafetyContext:
    """What a language-2 safety condition may read; the plan is the one as it stands."""

    contraindications: frozenset[str]
    egfr: float | None
    urgency: str
    requested: str
    steps: tuple[tuple[str, ...], ...]
    vocabulary: Vocabulary

    def in_play(self, route: str) -> bool:
        """True when the requested study or a planned one belongs to the route set."""
        if route == "always":
            return True
        procedures = self.vocabulary.procedures
        codes = [self.requested, *(c for step in self.steps for c in step)]
        return any(_ROUTES[route](procedures[c]) for c in codes)


_ROUTES = {
    "mri": lambda p: p.is_mri,
    "gadolinium": lambda p: p.uses_gadolinium,
    "iv_iodinated": lambda p: p.uses_iv_iodinated,
    "intrathecal": lambda p: p.is_intrathecal,
    "ionising": lambda p: p.uses_ionising_radiation,
    "sacroiliac_mri": lambda p: p.is_mri and p.site == "sacroiliac",
}


@dataclass(frozen=True)
class StepOutcome:
    """The plan (steps of alternatives) after the rows, the status and the alerts."""

    steps: tuple[tuple[str, ...], ...]
    status: str
    alerts: tuple[dict[str, str], ...]


def mri_substitution(steps: Sequence[Sequence[str]], mba_lists: Sequence[Sequence[str]],
                     vocabulary: Vocabulary) -> list[list[str]]:
    """MRI contraindicated (criteria §9 "MRI substitution"): in each step with an MRI the
    non-MRI alternatives lead; a step of MRIs of one spinal region r gets r's CT and CT
    myelography from the contributing MBA lists first (else CT myelography of r); SI-joint
    MRIs get no substitute. Then repeats of earlier steps go and empty steps are dropped."""
    procedures = vocabulary.procedures
    out: list[list[str]] = []
    for step in steps:
        mris = [c for c in step if procedures[c].is_mri]
        if not mris:
            out.append(list(step))
            continue
        others = [c for c in step if not procedures[c].is_mri]
        if others:
            out.append(others + mris)
            continue
        areas = {procedures[c].imaging_region for c in mris}
        if len(areas) != 1 or "sacroiliac" in areas:
            out.append(list(step))
            continue
        (area,) = areas
        substitutes: list[str] = []
        for listing in mba_lists:
            for code in listing:
                proc = procedures[code]
                if (proc.modality in ("ct", "ct_myelography") and proc.imaging_region == area
                        and code not in substitutes):
                    substitutes.append(code)
        if not substitutes:
            substitutes = [f"ct_myelography_{area}"]
        out.append(substitutes + mris)
    seen: set[str] = set()
    cleaned: list[list[str]] = []
    for step in out:
        kept = [c for c in step if c not in seen]
        seen.update(step)
        if kept:
            cleaned.append(kept)
    return cleaned


def prefer_mri_without(steps: Sequence[Sequence[str]],
                       vocabulary: Vocabulary) -> list[list[str]]:
    """Within each step holding an MRI w/o and a gadolinium MRI of the same area, the MRI
    w/o moves to directly before the first such gadolinium MRI (never later)."""
    procedures = vocabulary.procedures
    out = []
    for step in steps:
        step = list(step)
        for code in list(step):
            proc = procedures[code]
            if not (proc.is_mri and proc.contrast == "without"):
                continue
            at = step.index(code)
            for i, other in enumerate(step[:at]):
                other_proc = procedures[other]
                if other_proc.uses_gadolinium and (
                        other_proc.imaging_region == proc.imaging_region):
                    step.pop(at)
                    step.insert(i, code)
                    break
        out.append(step)
    return out


def _alternative(region: str, mba_lists: Sequence[Sequence[str]],
                 vocabulary: Vocabulary) -> str:
    """Row 3's {alternative}: the first CT or CT myelography of the region in the MBA lists."""
    for listing in mba_lists:
        for code in listing:
            proc = vocabulary.procedures[code]
            if proc.modality in ("ct", "ct_myelography") and proc.imaging_region == region:
                return proc.label
    return vocabulary.procedures[f"ct_myelography_{region}"].label


def apply_rows(
    rows: Sequence[Any],
    *,
    region: str,
    requested: str,
    steps: Sequence[Sequence[str]],
    mba_lists: Sequence[Sequence[str]],
    contraindications: Collection[str],
    egfr: float | None,
    urgency: str,
    vocabulary: Vocabulary,
) -> StepOutcome:
    """Apply each language-2 safety row once, in table order, on the plan as it stands."""
    current = [list(step) for step in steps]
    given = frozenset(contraindications)
    status = "clear"
    alerts: list[dict[str, str]] = []
    for row in rows:
        present = [c for c in row.contraindications if c in given]
        if row.contraindications and not present:
            continue
        ctx = SafetyContext(given, egfr, urgency, requested,
                            tuple(tuple(s) for s in current), vocabulary)
        if not ctx.in_play(row.applies_when):
            continue
        if row.when is not None and not row.when(ctx):
            continue
        if row.effect == "mri_substitution":
            current = mri_substitution(current, mba_lists, vocabulary)
        elif row.effect == "prefer_mri_without":
            current = prefer_mri_without(current, vocabulary)
        ctx = SafetyContext(given, egfr, urgency, requested,
                            tuple(tuple(s) for s in current), vocabulary)
        level = next((lv for lv, holds, _ in row.level_cases if holds(ctx)), row.level_else)
        text = next((t for holds, _, t in row.variants if holds(ctx)), row.message)
        extra = [t for holds, _, t in row.additions if holds(ctx)]
        message = " ".join([text, *extra])
        if "{alternative}" in message:
            message = message.replace("{alternative}",
                                      _alternative(region, mba_lists, vocabulary))
        alerts.append({"code": row.alert_code or present[0], "level": level,
                       "message": message})
        if level != "info" and STATUS_RANK[level] > STATUS_RANK[status]:
            status = level
    return StepOutcome(steps=tuple(tuple(s) for s in current), status=status,
                       alerts=tuple(alerts))
