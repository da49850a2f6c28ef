"""eGFR from FHIR R4 Observations, with the unit read (UCUM) rather than assumed.

Pure module. 2026.1.0 read ``valueQuantity.value`` whatever its unit, so a Scandinavian or
Czech result of 0.45 mL/s/1.73 m² (27 mL/min/1.73 m²: contrast precautions needed) was read as
0.45 mL/min — or a value in an unknown unit was trusted. Now:

* the unit is taken from the UCUM ``code`` (system ``http://unitsofmeasure.org``), else from the
  ``unit`` text; spellings are compared without case, spaces, braces, underscores and the
  ``per``/``.`` variants, so ``mL/min/{1.73_m2}``, ``mL/min/1.73m2`` and ``ml/min/1,73 m2``
  are one unit;
* per-minute units are used as they are; per-second units are multiplied by 60;
* ``mL/min`` without the body-surface part is accepted as the same number: every eGFR LOINC
  code the service asks for is defined per 1.73 m² (and real EHRs send it so, e.g. the Swiss
  eHealth "CH EPREG" laboratory example for LOINC 62238-1);
* any other unit, or no unit at all, makes the Observation **unusable**: no eGFR is derived
  and the card says why (an unreadable result is not a normal one);
* an Observation without a value of its own but with eGFR ``component``\\s (the HL7 FHIR R4
  example ``Observation/f205``: MDRD with two race-specific components) gives the lowest
  component value, the cautious reading for contrast decisions;
* a comparator ``<`` reads as just below the value (``<30`` is below 30), ``>``/``>=``/``<=``
  as the value.

The newest Observation decides (by effective time, then ``issued``); an older one is not used
in its place when the newest is unreadable, because renal function may have changed since.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .onset import UCUM_SYSTEM, parse_fhir_date

LOINC_SYSTEM = "http://loinc.org"
EXCLUDED_OBSERVATION_STATUS = frozenset({"entered-in-error", "cancelled"})
#: Race-specific MDRD/CKD-EPI components (HL7 example f205); read only as components.
EGFR_COMPONENT_LOINC = frozenset({"48642-3", "48643-1", "88293-6", "88294-4"})

_PER_MINUTE = frozenset({"ml/min/1.73m2", "ml/min"})
_PER_SECOND = frozenset({"ml/s/1.73m2", "ml/sec/1.73m2"})


def normalise_unit(unit: str) -> str:
    """A unit spelling reduced to compare GFR units (``mL/min/{1.73_m2}`` → ``ml/min/1.73m2``)."""
    text = unit.strip().lower().replace(",", ".").replace("²", "2").replace("^2", "2")
    for noise in (" ", "{", "}", "_", "[", "]"):
        text = text.replace(noise, "")
    text = text.replace("per1.73", "/1.73").replace("/1.73.m2", "/1.73m2")
    return text


def unit_factor(quantity: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """(factor to mL/min/1.73 m², the unit as sent); factor None when the unit is unknown."""
    candidates = []
    code, text = quantity.get("code"), quantity.get("unit")
    if isinstance(code, str) and code.strip() and quantity.get("system") in (UCUM_SYSTEM, None):
        candidates.append(code)
    if isinstance(text, str) and text.strip():
        candidates.append(text)
    shown = candidates[0] if candidates else None
    for candidate in candidates:
        unit = normalise_unit(candidate)
        if unit in _PER_MINUTE:
            return 1.0, shown
        if unit in _PER_SECOND:
            return 60.0, shown
    return None, shown


@dataclass(frozen=True)
class EgfrReading:
    """The eGFR to use (mL/min/1.73 m²), or why there is none."""

    value: float | None
    #: why no value could be used (None when ``value`` is set)
    problem: str | None = None
    #: the unit as the EHR sent it, when it was converted (for the card)
    converted_from: str | None = None


def _quantity_value(quantity: Any) -> tuple[float | None, str | None, str | None]:
    """(value in mL/min/1.73 m², unit as sent, problem)."""
    if not isinstance(quantity, Mapping):
        return None, None, "no value"
    value = quantity.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, None, "no numeric value"
    factor, shown = unit_factor(quantity)
    if factor is None:
        what = f"the unit {shown!r}" if shown else "no unit"
        return None, shown, f"{what} cannot be read as mL/min/1.73 m²"
    result = float(value) * factor
    if quantity.get("comparator") == "<":
        result -= 0.1  # "<30" is below 30: never read it as 30
    return result, shown, None


def observation_egfr(observation: Mapping[str, Any]) -> tuple[float | None, str | None,
                                                              str | None]:
    """(value, unit as sent, problem) of one eGFR Observation, components included."""
    if "valueQuantity" in observation:
        return _quantity_value(observation["valueQuantity"])
    values: list[tuple[float, str | None]] = []
    problem = "no value"
    for component in observation.get("component") or ():
        if not isinstance(component, Mapping):
            continue
        codes = {c.get("code") for c in (component.get("code") or {}).get("coding") or ()
                 if isinstance(c, Mapping) and c.get("system") == LOINC_SYSTEM}
        if not codes & EGFR_COMPONENT_LOINC:
            continue
        value, shown, why = _quantity_value(component.get("valueQuantity"))
        if value is None:
            problem = why or problem
            continue
        values.append((value, shown))
    if values:
        low = min(values, key=lambda item: item[0])
        return low[0], low[1], None
    return None, None, problem


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    day = parse_fhir_date(value)
    if day is None:
        return None
    if len(value.strip()) <= 10:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def observation_time(observation: Mapping[str, Any]) -> datetime | None:
    """effective[x] (dateTime, instant, Period end/start), else ``issued``."""
    moment = _instant(observation.get("effectiveDateTime")) or _instant(
        observation.get("effectiveInstant"))
    period = observation.get("effectivePeriod")
    if moment is None and isinstance(period, Mapping):
        moment = _instant(period.get("end")) or _instant(period.get("start"))
    return moment or _instant(observation.get("issued"))


def _codings(concept: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(concept, Mapping):
        for coding in concept.get("coding") or ():
            if isinstance(coding, Mapping):
                yield coding.get("system"), coding.get("code")


def newest_egfr_reading(observations: Iterable[Mapping[str, Any]], loinc: Iterable[str]
                        ) -> EgfrReading:
    """The newest eGFR Observation's value in mL/min/1.73 m², or why there is none."""
    codes = frozenset(loinc)
    dated: list[tuple[datetime, Mapping[str, Any]]] = []
    undated: list[Mapping[str, Any]] = []
    for obs in observations:
        if obs.get("status") in EXCLUDED_OBSERVATION_STATUS:
            continue
        if not any(s == LOINC_SYSTEM and c in codes for s, c in _codings(obs.get("code"))):
            continue
        moment = observation_time(obs)
        if moment is None:
            undated.append(obs)
        else:
            dated.append((moment, obs))
    ordered = [obs for _, obs in sorted(dated, key=lambda item: item[0], reverse=True)]
    ordered += undated
    if not ordered:
        return EgfrReading(None, "no eGFR Observation was sent")
    # An Observation with no value at all (a cancelled draw) does not hide an older result;
    # one with a value in an unreadable unit does: it is the newest known result.
    for obs in ordered:
        value, shown, problem = observation_egfr(obs)
        if value is not None:
            clamped = round(min(max(value, 0.0), 200.0), 1)  # the API's range; ">200" is 200
            factor_note = shown if shown and normalise_unit(shown) in _PER_SECOND else None
            return EgfrReading(clamped, converted_from=factor_note)
        if problem and "cannot be read" in problem:
            return EgfrReading(None, f"the newest eGFR result has {problem}")
    return EgfrReading(None, "no eGFR Observation had a usable value")
