"""Replay logged decisions under another rule set version: one record, or the impact of a range.

Pure core (no Flask, no database): the caller passes stored records and a loaded
:class:`~referral_api.clinical.versions.RuleSet`; the current engine re-evaluates each
record's stored ``input`` (validated, defaults applied; the patient reference is a keyed
hash, which the engine never reads). Nothing is written: a replay is a what-if, not a decision.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from referral_api.clinical import engine
from referral_api.clinical.versions import RuleSet
from referral_api.clinical.vocabulary import Vocabulary
from referral_api.store.records import scenario_id

#: Compared fields, in the order differences are listed; each projects a record onto what a
#: reviewer compares (ids and codes, not prose, except for the reasons themselves).
COMPARED_FIELDS = (
    "appropriateness", "urgency", "scenario", "also_matched", "requested_procedure",
    "recommended_procedures", "safety.status", "safety.alerts", "would_change_if", "reasons",
)  # fmt: skip


class ReplayError(ValueError):
    """The version cannot evaluate this record's input (e.g. it lacks the region)."""


def _project(record: Mapping[str, Any], name: str) -> Any:
    if name == "scenario":
        return scenario_id(record)
    if name == "requested_procedure":
        proc = record.get("requested_procedure") or {}
        return {"code": proc.get("code"), "rating": proc.get("rating")}
    if name == "recommended_procedures":
        return [{"code": p.get("code"), "rating": p.get("rating")}
                for p in record.get("recommended_procedures") or ()]
    if name == "safety.status":
        return (record.get("safety") or {}).get("status")
    if name == "safety.alerts":
        return [a.get("code") for a in (record.get("safety") or {}).get("alerts") or ()]
    return record.get(name)


def differences(original: Mapping[str, Any], replayed: Mapping[str, Any]) -> list[dict]:
    """``[{"field", "original", "replayed"}]`` for every compared field that differs."""
    out = []
    for name in COMPARED_FIELDS:
        before, after = _project(original, name), _project(replayed, name)
        if before != after:
            out.append({"field": name, "original": before, "replayed": after})
    return out


def evaluate_input(record: Mapping[str, Any], ruleset: RuleSet, vocabulary: Vocabulary,
                   *, counterfactuals: bool = True) -> dict[str, Any]:
    """The engine's output for the record's stored input under ``ruleset``.

    The original assumptions (CDS Hooks) are carried over: they describe the input, not the
    rules, so they must not show up as a difference. Raises :class:`ReplayError`.
    """
    given = record.get("input")
    if not isinstance(given, Mapping):
        raise ReplayError("the record holds no input to replay")
    try:
        output = engine.evaluate(given, ruleset, vocabulary, counterfactuals=counterfactuals)
    except (ValueError, KeyError) as exc:
        raise ReplayError(f"rule set {ruleset.version} cannot evaluate this input: {exc}") from None
    output["assumptions"] = list(record.get("assumptions") or [])
    return output


def replay_record(record: Mapping[str, Any], ruleset: RuleSet,
                  vocabulary: Vocabulary) -> dict[str, Any]:
    """The body of ``POST /v1/decisions/{id}/replay``.

    ``{"original": record, "replayed": output, "differences": [...], "engine_version":
    {"recorded", "current"}, "ruleset_version": {"recorded", "replayed"}}``.
    """
    replayed = evaluate_input(record, ruleset, vocabulary)
    recorded_ruleset = record.get("ruleset") or {}
    return {
        "original": dict(record),
        "replayed": replayed,
        "differences": differences(record, replayed),
        "engine_version": {"recorded": record.get("engine_version"),
                           "current": engine.ENGINE_VERSION},
        "ruleset_version": {"recorded": recorded_ruleset.get("version"),
                            "replayed": ruleset.version},
    }


@dataclass
class ImpactReport:
    """What a rule set version would have changed over a set of logged decisions."""

    ruleset_version: str
    engine_version: str = engine.ENGINE_VERSION
    examples_wanted: int = 10
    total: int = 0
    changed: int = 0
    changed_appropriateness: int = 0
    changed_urgency: int = 0
    changed_scenario: int = 0
    errors: int = 0
    appropriateness: Counter = field(default_factory=Counter)
    urgency: Counter = field(default_factory=Counter)
    by_scenario: Counter = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, record: Mapping[str, Any], ruleset: RuleSet, vocabulary: Vocabulary) -> None:
        """Replay one record and count what changed."""
        self.total += 1
        try:
            # Counterfactuals are not compared here: skipping them makes replay ~10x faster.
            out = evaluate_input(record, ruleset, vocabulary, counterfactuals=False)
        except ReplayError:
            self.errors += 1
            return
        before_a, after_a = record.get("appropriateness"), out["appropriateness"]
        before_u, after_u = record.get("urgency"), out["urgency"]
        before_s, after_s = _project(record, "scenario"), out["scenario"]["id"]
        self.appropriateness[(before_a, after_a)] += 1
        self.urgency[(before_u, after_u)] += 1
        a_changed, u_changed = before_a != after_a, before_u != after_u
        self.changed_appropriateness += a_changed
        self.changed_urgency += u_changed
        self.changed_scenario += before_s != after_s
        if a_changed or u_changed:
            self.changed += 1
            self.by_scenario[before_s] += 1
            if len(self.examples) < self.examples_wanted:
                self.examples.append({
                    "decision_id": record.get("decision_id"),
                    "created_at": record.get("created_at"),
                    "region": record.get("region"),
                    "scenario": [before_s, after_s],
                    "appropriateness": [before_a, after_a],
                    "urgency": [before_u, after_u],
                })

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; transitions as ``[{"from", "to", "count"}]``, changes first."""
        def table(counter: Counter) -> list[dict[str, Any]]:
            rows = [{"from": a, "to": b, "count": n} for (a, b), n in counter.items()]
            return sorted(rows, key=lambda r: (r["from"] == r["to"], -r["count"],
                                               str(r["from"]), str(r["to"])))

        return {
            "ruleset_version": self.ruleset_version,
            "engine_version": self.engine_version,
            "total": self.total,
            "changed": self.changed,
            "changed_appropriateness": self.changed_appropriateness,
            "changed_urgency": self.changed_urgency,
            "changed_scenario": self.changed_scenario,
            "errors": self.errors,
            "appropriateness_transitions": table(self.appropriateness),
            "urgency_transitions": table(self.urgency),
            "changed_by_original_scenario": dict(self.by_scenario.most_common()),
            "examples": self.examples,
        }

    def lines(self) -> list[str]:
        """The report as text for a rule author."""
        def pct(n: int) -> str:
            return f"{100 * n / self.total:.1f}%" if self.total else "-"

        out = [
            f"Replay under rule set {self.ruleset_version} (engine {self.engine_version}): "
            f"{self.total} logged decision(s)",
            f"  change appropriateness or urgency: {self.changed} ({pct(self.changed)})",
            f"  change appropriateness:            {self.changed_appropriateness} "
            f"({pct(self.changed_appropriateness)})",
            f"  change urgency:                    {self.changed_urgency} "
            f"({pct(self.changed_urgency)})",
            f"  change governing scenario:         {self.changed_scenario} "
            f"({pct(self.changed_scenario)})",
        ]
        if self.errors:
            out.append(f"  could not be evaluated:            {self.errors}")
        for title, counter in (("Appropriateness", self.appropriateness),
                               ("Urgency", self.urgency)):
            moves = sorted(((a, b, n) for (a, b), n in counter.items() if a != b),
                           key=lambda t: -t[2])
            out.append(f"{title} transitions (recorded -> replayed):")
            if not moves:
                out.append("  none")
            width = max((len(str(a)) for a, _, _ in moves), default=0)
            out.extend(f"  {a!s:<{width}} -> {b!s:<24} {n:>9}" for a, b, n in moves)
        if self.by_scenario:
            out.append("Changed decisions by recorded scenario:")
            out.extend(f"  {s:<40} {n:>9}" for s, n in self.by_scenario.most_common())
        if self.examples:
            out.append("Examples:")
            for ex in self.examples:
                out.append(
                    f"  {ex['decision_id']} {ex['created_at']} {ex['region']}: "
                    f"{ex['scenario'][0]} -> {ex['scenario'][1]}; "
                    f"{ex['appropriateness'][0]} -> {ex['appropriateness'][1]}; "
                    f"{ex['urgency'][0]} -> {ex['urgency'][1]}"
                )
        return out


def impact(records: Iterable[Mapping[str, Any]], ruleset: RuleSet, vocabulary: Vocabulary,
           *, examples: int = 10) -> ImpactReport:
    """Replay every record (consumed as a stream) and return the impact report."""
    report = ImpactReport(ruleset_version=ruleset.version, examples_wanted=examples)
    for record in records:
        report.add(record, ruleset, vocabulary)
    return report
