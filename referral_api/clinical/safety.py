"""Safety modifiers: re-order a recommendation and raise alerts; never change a clinical rating.

Pure module. The modifiers themselves are data (ruleset.yaml `safety`, in order); this module
implements their effect kinds:

- `non_mri_first`: the scenario's non-MRI studies (UA list, then MBA list, without duplicates)
  lead, followed by the MRIs the recommendation held; when the scenario names no non-MRI study,
  CT myelography of the request's region leads. An empty recommendation stays empty.
- `prefer_mri_without_contrast`: when a gadolinium MRI of the request's region comes before that
  region's MRI without contrast, and the latter is UA for the scenario, it moves just before it.
- `none`: an alert only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

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
