"""The decision engine: one request, one rule-set version, one deterministic answer.

Pure module (no Flask, no database). It implements the combination rules 1–7 of criteria.md:
matching (the default scenario only when nothing else matches), the governing scenario (highest
urgency, then rule order), the requested study's rating, the recommendation (UA list, else MBA
list, else none with urgency `none`), the safety modifiers, the under-18 rule and the
counterfactuals (`would_change_if`).

Speed: every condition was compiled at load time into a closure over an integer bit mask
(conditions.py). Per request the engine builds the mask once (findings plus the numeric
comparisons); each counterfactual only ORs one finding bit into it and re-runs the fact and
scenario closures, skipping findings the region's rules never read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from referral_api.clinical import combine, safety
from referral_api.clinical.model import URGENCY_RANK, RegionRules, RuleSet
from referral_api.clinical.vocabulary import Vocabulary
from referral_api.enums import RATING_WORDS

#: 1.1.0 adds rule language 2 (2026.2.0); language-1 answers are unchanged from 1.0.0
#: (tests/engine/test_replay_2026_1_0_log.py).
ENGINE_VERSION = "1.1.0"

UA = "usually_appropriate"
MBA = "may_be_appropriate"
UNA = "usually_not_appropriate"
NOT_COVERED = "not_covered"
ADULT_AGE = 18



def _match(rules: RegionRules, mask: int) -> tuple[int, list[int]]:
    """Add the derived facts to the mask and list the matching scenarios in rule order."""
    for bit, holds in rules.fact_steps:
        if holds(mask):
            mask |= bit
    matched = [index for index, holds in rules.match_steps if holds(mask)]
    if not matched:
        matched = [rules.default_index]
    return mask, matched


def _govern(rules: RegionRules, mask: int, matched: list[int]) -> tuple[int, str]:
    """The governing scenario: highest urgency, the first in rule order among equals."""
    scenarios = rules.scenarios
    best, best_urgency, best_rank = matched[0], "none", -1
    for index in matched:
        urgency = scenarios[index].urgency(mask)
        rank = URGENCY_RANK[urgency]
        if rank > best_rank:
            best, best_urgency, best_rank = index, urgency, rank
    return best, best_urgency


def _rating(code: str, ua: tuple[str, ...], mba: tuple[str, ...]) -> str:
    if code in ua:
        return UA
    if code in mba:
        return MBA
    return UNA


def _outcome(rules: RegionRules, mask: int, requested: str) -> tuple[str, str, str]:
    """(appropriateness, urgency, scenario id) of an adult request: the counterfactual path."""
    mask, matched = _match(rules, mask)
    index, urgency = _govern(rules, mask, matched)
    scenario = rules.scenarios[index]
    ua, mba = scenario.lists(mask)
    if not ua and not mba:
        urgency = "none"
    return _rating(requested, ua, mba), urgency, scenario.id


COUNTERFACTUAL_CACHE_SIZE = 4096


def _counterfactuals(
    rules: RegionRules,
    finding_bits: Mapping[str, int],
    vocabulary: Vocabulary,
    base: int,
    present: int,
    requested: str,
    current: tuple[str, str],
) -> tuple[tuple[str, str, str, str], ...]:
    """(finding, appropriateness, urgency, scenario) for each absent finding that changes the
    adult answer, in vocabulary order.

    A pure function of the request mask: memoised per region (bounded), because the same
    combinations of findings come back again and again, and each miss costs one matching
    pass per candidate finding (most of an evaluation's time).
    """
    cache = rules.counterfactual_cache
    key = (base, requested)
    cached = cache.get(key)
    if cached is not None:
        return cached
    changes: list[tuple[str, str, str, str]] = []
    candidates = rules.relevant_findings & ~present
    if candidates:
        for code in vocabulary.findings:
            bit = finding_bits[code]
            if candidates & bit:
                alt = _outcome(rules, base | bit, requested)
                if alt[:2] != current:
                    changes.append((code, *alt))
    result = tuple(changes)
    if len(cache) >= COUNTERFACTUAL_CACHE_SIZE:
        cache.clear()  # simple bound: a burst of rare masks cannot grow memory
    cache[key] = result
    return result


def _procedure_json(code: str, rating: str, vocabulary: Vocabulary) -> dict[str, Any]:
    return {"code": code, "cpt": list(vocabulary.procedures[code].cpt), "rating": rating}


def _finding_reasons(
    ruleset: RuleSet,
    rules: RegionRules,
    mask: int,
    present: int,
    scenario_facts: frozenset[str],
    vocabulary: Vocabulary,
) -> list[str]:
    """'X is present: <role>.' for each present finding, plus fired request-level facts."""
    table = ruleset.table
    assert table is not None
    fired = [
        f for f in ruleset.facts
        if f.role and region_has_fact(rules, f.name) and mask & table.fact_bits[f.name]
    ]
    reasons: list[str] = []
    for code, finding in vocabulary.findings.items():
        bit = table.finding_bits[code]
        if not present & bit:
            continue
        readers = [f for f in fired if rules.fact_findings.get(f.name, 0) & bit]
        preferred = [f for f in readers if f.name in scenario_facts] or readers
        if preferred:
            reasons.append(f"{finding.label} is present: {preferred[0].role}.")
        else:
            reasons.append(f"{finding.label} is present.")
    for fact in fired:
        if fact.name in scenario_facts and not rules.fact_findings.get(fact.name, 0):
            role = fact.role or fact.label
            reasons.append(role[0].upper() + role[1:] + ".")
    return reasons


def region_has_fact(rules: RegionRules, name: str) -> bool:
    """True when the fact is defined for the region."""
    return name in rules.fact_findings


def evaluate(
    request: Mapping[str, Any],
    ruleset: RuleSet,
    vocabulary: Vocabulary | None = None,
    *,
    counterfactuals: bool = True,
    placeholders: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Evaluate a validated request against one rule-set version; see api-v1.md for the shape.

    The request has its defaults applied (web layer). Order and duplicates in `findings` and
    `contraindications` do not matter. The version's own vocabulary is used when it has one
    (`vocabulary` is the fallback for versions that share the v1 file). Rule language 2
    (2026.2.0 and later) is evaluated by :mod:`combine`; `placeholders` fill its patient texts.
    """
    vocabulary = ruleset.vocabulary or vocabulary
    if vocabulary is None:
        raise ValueError(f"rule set {ruleset.version} has no vocabulary")
    if ruleset.language >= 2:
        return combine.evaluate(request, ruleset, vocabulary, counterfactuals=counterfactuals,
                                placeholders=placeholders)
    region = request["region"]
    rules = ruleset.regions.get(region)
    if rules is None:
        raise ValueError(f"unknown region {region!r}")
    requested = request.get("requested_procedure") or vocabulary.default_procedure(region).code
    proc = vocabulary.procedures.get(requested)
    if proc is None or proc.region != region:
        raise ValueError(f"requested procedure {requested!r} is not a {region} procedure")
    age = request["patient"]["age"]
    table = ruleset.table
    assert table is not None and ruleset.request_mask is not None
    present = table.findings_mask(request.get("findings") or ())
    base = present | ruleset.request_mask(
        {
            "age": age,
            "symptom_duration_weeks": request["symptom_duration_weeks"],
            "conservative_care_weeks": request.get("conservative_care_weeks", 0),
            "intervention_candidate": bool(request.get("intervention_candidate", False)),
        }
    )

    mask, matched = _match(rules, base)
    index, urgency = _govern(rules, mask, matched)
    scenario = rules.scenarios[index]
    ua, mba = scenario.lists(mask)
    adult_recommended = ua or mba
    if not adult_recommended:
        urgency = "none"
    rating = _rating(requested, ua, mba)
    adult = age >= ADULT_AGE

    reasons = [scenario.rationale]
    reasons.extend(_finding_reasons(ruleset, rules, mask, present, scenario.facts, vocabulary))
    if adult:
        reasons.append(
            f"The requested study, {proc.label}, is {RATING_WORDS[rating]} in this scenario."
        )
        appropriateness = rating
    else:
        appropriateness = NOT_COVERED
        reasons.append(
            "The patient is under 18: paediatric criteria apply, so these adult criteria give no "
            "rating and no recommendation."
        )
        if urgency in ("emergent", "urgent"):
            reasons.append(
                f"Red flags are present ({scenario.title}): they need prompt specialist "
                f"assessment ({urgency})."
            )
        else:
            urgency = "none"

    # Rule 7: a child gets no recommendation, but "safety alerts apply as for adults": they
    # are worked out on the adult recommendation (so a contrast study there still raises the
    # renal alert), and only the recommendation is withheld.
    outcome = safety.apply(
        ruleset.safety,
        region=region,
        requested=requested,
        recommended=adult_recommended,
        ua=ua,
        mba=mba,
        contraindications=frozenset(request.get("contraindications") or ()),
        egfr=request.get("egfr"),
        vocabulary=vocabulary,
    )
    recommended = ([_procedure_json(c, _rating(c, ua, mba), vocabulary)
                    for c in outcome.recommended] if adult else [])
    if adult:
        if not recommended:
            reasons.append("No imaging is recommended now: conservative care and reassessment.")
        elif outcome.recommended[0] != requested:
            preferred = vocabulary.procedures[outcome.recommended[0]]
            reasons.append(f"The preferred study is {preferred.label}.")

    would_change: list[dict[str, str]] = []
    if counterfactuals and adult:
        would_change = [
            {"finding": code, "appropriateness": alt_rating, "urgency": alt_urgency,
             "scenario": alt_scenario}
            for code, alt_rating, alt_urgency, alt_scenario in _counterfactuals(
                rules, table.finding_bits, vocabulary, base, present, requested,
                (appropriateness, urgency))
        ]

    return {
        "region": region,
        "requested_procedure": {
            "code": requested,
            "cpt": list(proc.cpt),
            "rating": appropriateness,
        },
        "appropriateness": appropriateness,
        "urgency": urgency,
        "scenario": {
            "id": scenario.id,
            "title": scenario.title,
            "sources": list(scenario.sources),
        },
        "also_matched": [rules.scenarios[i].id for i in matched if i != index],
        "recommended_procedures": recommended,
        "reasons": reasons,
        "safety": {"status": outcome.status, "alerts": [dict(a) for a in outcome.alerts]},
        "would_change_if": would_change,
        "assumptions": [],
        "ruleset": {"id": ruleset.id, "version": ruleset.version, "sha256": ruleset.sha256},
    }
