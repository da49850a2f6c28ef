"""Rule language 2 (2026.2.0 and later): how matching scenarios combine into one answer.

Pure module. Implements criteria-2026.2.0 §3 step by step: eligibility by age band, matching
(an eligible default only when nothing else matches), urgency, the governing scenario (highest
urgency, then table order), the contributing scenarios (every emergent match when two or more
are emergent), the plan (one scenario's UA steps, else its ★ MBA items; several: the merge of
§3.6), the rating of the requested study (best rating among the contributing scenarios), the
`not_covered` exception, the safety rows of §9 (:func:`safety.apply_rows`), the reasons of §11,
`would_change_if`, `assumptions` and the governing scenario's patient information.

Conditions are compiled to closures over a bit mask as in language 1 (conditions.py); the mask
also holds the request's contraindication and `days_since_injury` atoms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from referral_api.clinical import safety
from referral_api.clinical.model import (
    COME_BACK_LEVELS,
    URGENCY_RANK,
    Note,
    RegionRulesV2,
    RuleSet,
    ScenarioV2,
)
from referral_api.clinical.vocabulary import Vocabulary

UA = "usually_appropriate"
MBA = "may_be_appropriate"
UNA = "usually_not_appropriate"
NOT_COVERED = "not_covered"

_RATING_SENTENCE = {
    UA: "{study} is usually appropriate.",
    MBA: "{study} may be appropriate.",
    UNA: "{study} is usually not appropriate.",
    NOT_COVERED: "{study} is not rated by these criteria (not covered).",
}
COUNTERFACTUAL_CACHE_SIZE = 4096


class Combined:
    """The clinical part of an answer for one request mask (before the safety rows)."""

    __slots__ = (
        "appropriateness",
        "contributing",
        "governing",
        "mask",
        "matched",
        "mba",
        "steps",
        "ua",
        "urgencies",
        "urgency",
    )

    def __init__(self, rules: RegionRulesV2, mask: int, requested: str) -> None:
        for bit, holds in rules.fact_steps:
            if holds(mask):
                mask |= bit
        matched = [index for index, holds in rules.match_steps if holds(mask)]
        if not matched:
            matched = [index for index, band in rules.defaults if band(mask)][:1]
        scenarios = rules.scenarios
        urgencies = {i: scenarios[i].urgency(mask) for i in matched}
        governing = matched[0]
        for index in matched:
            if URGENCY_RANK[urgencies[index]] > URGENCY_RANK[urgencies[governing]]:
                governing = index
        emergent = [i for i in matched if urgencies[i] == "emergent"]
        contributing = (emergent if urgencies[governing] == "emergent" and len(emergent) >= 2
                        else [governing])
        chosen = [scenarios[i] for i in contributing]
        steps = merge_plans(chosen, mask)
        ua: set[str] = set()
        mba: set[str] = set()
        for scenario in chosen:
            ua |= scenario.ua_codes(mask)
            mba |= set(scenario.mba)
        gov = scenarios[governing]
        if gov.not_covered and contributing == [governing]:
            appropriateness = NOT_COVERED
        else:
            appropriateness = UA if requested in ua else MBA if requested in mba else UNA
        urgency = urgencies[governing]
        if not steps and appropriateness != NOT_COVERED:
            urgency = "none"
        self.mask, self.matched, self.urgencies = mask, matched, urgencies
        self.governing, self.contributing, self.steps = governing, contributing, steps
        self.appropriateness, self.urgency = appropriateness, urgency
        self.ua, self.mba = frozenset(ua), frozenset(mba)

    def rating(self, code: str) -> str:
        """A procedure's rating: UA in any contributing plan, else MBA in any list, else UNA."""
        return UA if code in self.ua else MBA if code in self.mba else UNA


def merge_plans(scenarios: Sequence[ScenarioV2], mask: int) -> list[list[str]]:
    """The plan of criteria §3.6: one scenario's steps (else its ★ items), or the merge."""
    if len(scenarios) == 1:
        only = scenarios[0]
        steps = [list(step) for step in only.ua_steps(mask)]
        if not steps and only.recommend:
            steps = [list(only.recommend)]
        return steps
    plan: list[list[str]] = []
    for scenario in scenarios:
        for incoming in scenario.ua_steps(mask):
            placed = {code for step in plan for code in step}
            rest = [code for code in incoming if code not in placed]
            target = next((step for step in plan if any(c in step for c in incoming)), None)
            if target is not None:
                target.extend(rest)
            elif rest:
                plan.append(rest)
    return plan


def _outcome(rules: RegionRulesV2, mask: int, requested: str) -> tuple[str, str, str]:
    combined = Combined(rules, mask, requested)
    return (combined.appropriateness, combined.urgency,
            rules.scenarios[combined.governing].id)


def _counterfactuals(rules: RegionRulesV2, ruleset: RuleSet, vocabulary: Vocabulary, base: int,
                     present: int, requested: str,
                     current: tuple[str, str]) -> tuple[tuple[str, str, str, str], ...]:
    """(finding, appropriateness, urgency, scenario) for each absent finding whose presence
    alone changes the rating or the urgency, in vocabulary order (deprecated codes skipped:
    their replacement is listed). Memoised per region like language 1."""
    cache = rules.counterfactual_cache
    key = (base, requested)
    cached = cache.get(key)
    if cached is not None:
        return cached
    table = ruleset.table
    assert table is not None
    changes = []
    candidates = rules.relevant_findings & ~present
    for code, finding in vocabulary.findings.items():
        bit = table.finding_bits[code]
        if finding.deprecated or not candidates & bit:
            continue
        alt = _outcome(rules, base | bit, requested)
        if alt[:2] != current:
            changes.append((code, *alt))
    result = tuple(changes)
    if len(cache) >= COUNTERFACTUAL_CACHE_SIZE:
        cache.clear()
    cache[key] = result
    return result


def _label(vocabulary: Vocabulary, code: str) -> str:
    return vocabulary.procedures[code].label


def _step_text(vocabulary: Vocabulary, step: Sequence[str]) -> str:
    return " or ".join(_label(vocabulary, code) for code in step)


def _days_ago(days: Any) -> str:
    if days == 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"


def _fill(note: Note, mask: int, present: set[str], request: Mapping[str, Any],
          vocabulary: Vocabulary, study: str) -> str:
    text = note.text
    if "{features}" in text:
        labels = [vocabulary.findings[c].label.lower() for c in note.features if c in present]
        text = text.replace("{features}", " and ".join(labels) or "a high-risk feature")
    if "{days_ago}" in text:
        text = text.replace("{days_ago}", _days_ago(request.get("days_since_injury")))
    return text.replace("{study}", study)


def _notes(notes: Sequence[Note], mask: int) -> list[Note]:
    return [n for n in notes if n.when is None or n.when.fn(mask)]


def _finding_reasons(ruleset: RuleSet, rules: RegionRulesV2, mask: int, present_mask: int,
                     scenarios: Sequence[ScenarioV2], vocabulary: Vocabulary) -> list[str]:
    """'X is present: <role>.' for each finding given, as in language 1; the role is taken
    from a fact the contributing scenarios read, else one any matching scenario reads (so a
    cancer history in a union with MSCC reads as MSCC, not as an infection risk factor)."""
    table = ruleset.table
    assert table is not None
    fired = [f for f in ruleset.facts if f.role and f.name in rules.fact_findings
             and mask & table.fact_bits[f.name]]
    out = []
    for code, finding in vocabulary.findings.items():
        bit = table.finding_bits[code]
        if not present_mask & bit:
            continue
        readers = [f for f in fired if rules.fact_findings.get(f.name, 0) & bit]
        preferred = readers
        for scenario in scenarios:
            own = [f for f in readers if f.name in scenario.facts]
            if own:
                preferred = own
                break
        out.append(f"{finding.label} is present: {preferred[0].role}." if preferred
                   else f"{finding.label} is present.")
    return out


def patient_information(ruleset: RuleSet, scenarios: Sequence[ScenarioV2],
                        placeholders: Mapping[str, str] | None) -> dict[str, Any] | None:
    """The governing scenario's patient text; for a union the contributing scenarios'
    ``come_back_if`` merged (de-duplicated by sign, emergency first, then today, then week)."""
    info = ruleset.v2.patient_information if ruleset.v2 is not None else None
    if info is None:
        return None
    values = {**info.placeholders, **(placeholders or {})}
    governing = scenarios[0]
    text = dict(info.scenarios[governing.id])
    if len(scenarios) > 1:
        items: list[Mapping[str, Any]] = []
        for scenario in scenarios:
            items.extend(info.scenarios[scenario.id]["come_back_if"])
        ordered = sorted(items, key=lambda i: COME_BACK_LEVELS.index(i["level"]))
        seen: set[str] = set()
        merged = []
        for item in ordered:
            if item["sign"] not in seen:
                seen.add(item["sign"])
                merged.append(item)
        text["come_back_if"] = merged
    return {"locale": info.locale, **_substitute(text, values)}


def _substitute(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        for name, value in values.items():
            node = node.replace("{" + name + "}", value)
        return node
    if isinstance(node, Mapping):
        return {k: _substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, values) for v in node]
    return node


def evaluate(
    request: Mapping[str, Any],
    ruleset: RuleSet,
    vocabulary: Vocabulary,
    *,
    counterfactuals: bool = True,
    placeholders: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Evaluate a validated request against a language-2 rule set (shape: api-v1.md plus the
    delta §7 fields)."""
    region = request["region"]
    rules = ruleset.regions.get(region)
    if not isinstance(rules, RegionRulesV2):
        raise ValueError(f"unknown region {region!r}")
    requested = request.get("requested_procedure") or vocabulary.default_procedure(region).code
    proc = vocabulary.procedures.get(requested)
    if proc is None or proc.region != region:
        raise ValueError(f"requested procedure {requested!r} is not a {region} procedure")
    table = ruleset.table
    assert table is not None and ruleset.request_mask is not None and ruleset.v2 is not None
    findings = list(request.get("findings") or ())
    present = set(findings)
    present_mask = table.findings_mask(findings)
    contraindications = frozenset(request.get("contraindications") or ())
    base = present_mask | ruleset.request_mask({
        "age": request["patient"]["age"],
        "symptom_duration_weeks": request["symptom_duration_weeks"],
        "conservative_care_weeks": request.get("conservative_care_weeks", 0),
        "intervention_candidate": bool(request.get("intervention_candidate", False)),
        "contraindications": contraindications,
        "days_since_injury": request.get("days_since_injury"),
    })
    combined = Combined(rules, base, requested)
    mask = combined.mask
    scenarios = rules.scenarios
    governing = scenarios[combined.governing]
    contributing = [scenarios[i] for i in combined.contributing]

    mba_lists = [s.mba for s in contributing]
    outcome = safety.apply_rows(
        ruleset.v2.safety,
        region=region,
        requested=requested,
        steps=combined.steps,
        mba_lists=mba_lists,
        contraindications=contraindications,
        egfr=request.get("egfr"),
        urgency=combined.urgency,
        vocabulary=vocabulary,
    )
    recommended = [
        {"code": code, "cpt": list(vocabulary.procedures[code].cpt),
         "rating": combined.rating(code), "step": number}
        for number, step in enumerate(outcome.steps, start=1) for code in step
    ]

    study = proc.label
    reasons: list[str] = []
    if len(contributing) > 1:
        titles = ", ".join(s.title for s in contributing)
        plan_text = "; then ".join(_step_text(vocabulary, step) for step in outcome.steps)
        reasons.append(f"Several emergencies apply ({titles}): the plan combines their "
                       f"studies: {plan_text}.")
    else:
        reasons.append(governing.rationale)
    for scenario in contributing:
        for note in _notes(scenario.notes, mask):
            text = _fill(note, mask, present, request, vocabulary, study)
            if text not in reasons:
                reasons.append(text)
    reasons.append(_RATING_SENTENCE[combined.appropriateness].format(study=study))
    for note in _notes(ruleset.v2.notes, mask):
        if region in note.regions:
            reasons.append(_fill(note, mask, present, request, vocabulary, study))
    in_plan = {code for step in outcome.steps for code in step}
    for index in combined.matched:
        if index in combined.contributing:
            continue
        other = scenarios[index]
        level = combined.urgencies[index]
        if level not in ("urgent", "routine"):
            continue
        first = merge_plans([other], mask)[:1]
        if first and not any(code in in_plan for code in first[0]):
            reasons.append(f"Also matched: {other.title} ({level}): "
                           f"{_step_text(vocabulary, first[0])}.")
    readers = [*contributing, *(scenarios[i] for i in combined.matched
                                if i not in combined.contributing)]
    reasons.extend(_finding_reasons(ruleset, rules, mask, present_mask, readers, vocabulary))
    if combined.appropriateness != NOT_COVERED:
        if not outcome.steps:
            reasons.append("No imaging is recommended now: conservative care and reassessment.")
        elif outcome.steps[0][0] != requested:
            reasons.append(f"The preferred study is {_label(vocabulary, outcome.steps[0][0])}.")

    would_change: list[dict[str, str]] = []
    if counterfactuals and combined.appropriateness != NOT_COVERED:
        would_change = [
            {"finding": code, "appropriateness": rating, "urgency": urgency,
             "scenario": scenario_id}
            for code, rating, urgency, scenario_id in _counterfactuals(
                rules, ruleset, vocabulary, base, present_mask, requested,
                (combined.appropriateness, combined.urgency))
        ]
    assumptions = [
        {"field": rule.field, "assumed": rule.assumed, "message": rule.message}
        for rule in ruleset.v2.assumptions if rule.when.fn(mask)
    ]
    output: dict[str, Any] = {
        "region": region,
        "requested_procedure": {"code": requested, "cpt": list(proc.cpt),
                                "rating": combined.appropriateness},
        "appropriateness": combined.appropriateness,
        "urgency": combined.urgency,
        "scenario": {"id": governing.id, "title": governing.title,
                     "sources": [s.cited() for s in governing.sources]},
        "also_matched": [scenarios[i].id for i in combined.matched if i != combined.governing],
        "contributing_scenarios": ([s.id for s in contributing] if len(contributing) > 1
                                   else []),
        "recommended_procedures": recommended,
        "reasons": reasons,
        "safety": {"status": outcome.status, "alerts": [dict(a) for a in outcome.alerts]},
        "would_change_if": would_change,
        "assumptions": assumptions,
        "ruleset": {"id": ruleset.id, "version": ruleset.version, "sha256": ruleset.sha256},
    }
    info = patient_information(ruleset, contributing if len(contributing) > 1 else [governing],
                               placeholders)
    if info is not None:
        output["patient_information"] = info
    return output
