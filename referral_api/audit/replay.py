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
    "contributing_scenarios",
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
        # The plan step (2026.2.0 and later) is compared when the record has one.
        return [{"code": p.get("code"), "rating": p.get("rating"),
                 **({"step": p["step"]} if "step" in p else {})}
                for p in record.get("recommended_procedures") or ()]
    if name == "contributing_scenarios":
        return list(record.get("contributing_scenarios") or ())  # absent (2026.1.0) = none
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


URGENCY_ORDER = {"none": 0, "routine": 1, "urgent": 2, "emergent": 3}


def _first_study(record: Mapping[str, Any]) -> str | None:
    items = record.get("recommended_procedures") or ()
    return items[0].get("code") if items else None


@dataclass
class ScenarioImpact:
    """Per recorded scenario: how many decisions, and how many change in each respect."""

    total: int = 0
    rating: int = 0
    urgency: int = 0
    urgency_up: int = 0
    urgency_down: int = 0
    first_study: int = 0
    to: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``to`` = the replayed governing scenarios, most frequent first."""
        return {"total": self.total, "rating": self.rating, "urgency": self.urgency,
                "urgency_up": self.urgency_up, "urgency_down": self.urgency_down,
                "first_study": self.first_study, "to": dict(self.to.most_common())}


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
    changed_first_study: int = 0
    urgency_up: int = 0
    urgency_down: int = 0
    errors: int = 0
    recorded_versions: Counter = field(default_factory=Counter)
    appropriateness: Counter = field(default_factory=Counter)
    urgency: Counter = field(default_factory=Counter)
    by_scenario: Counter = field(default_factory=Counter)
    scenarios: dict[str, ScenarioImpact] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    #: One example per recorded scenario with a change (the first seen), for the document.
    scenario_examples: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any], ruleset: RuleSet, vocabulary: Vocabulary) -> None:
        """Replay one record and count what changed."""
        self.total += 1
        self.recorded_versions[(record.get("ruleset") or {}).get("version")] += 1
        try:
            # Counterfactuals are not compared here: skipping them makes replay ~10x faster.
            out = evaluate_input(record, ruleset, vocabulary, counterfactuals=False)
        except ReplayError:
            self.errors += 1
            return
        before_a, after_a = record.get("appropriateness"), out["appropriateness"]
        before_u, after_u = record.get("urgency"), out["urgency"]
        before_s, after_s = _project(record, "scenario"), out["scenario"]["id"]
        before_f, after_f = _first_study(record), _first_study(out)
        self.appropriateness[(before_a, after_a)] += 1
        self.urgency[(before_u, after_u)] += 1
        a_changed, u_changed = before_a != after_a, before_u != after_u
        f_changed = before_f != after_f
        up = URGENCY_ORDER.get(str(after_u), 0) > URGENCY_ORDER.get(str(before_u), 0)
        self.changed_appropriateness += a_changed
        self.changed_urgency += u_changed
        self.changed_scenario += before_s != after_s
        self.changed_first_study += f_changed
        self.urgency_up += u_changed and up
        self.urgency_down += u_changed and not up
        per = self.scenarios.setdefault(str(before_s), ScenarioImpact())
        per.total += 1
        per.rating += a_changed
        per.urgency += u_changed
        per.urgency_up += u_changed and up
        per.urgency_down += u_changed and not up
        per.first_study += f_changed
        per.to[after_s] += 1
        if a_changed or u_changed or f_changed:
            example = {
                "decision_id": record.get("decision_id"),
                "created_at": record.get("created_at"),
                "region": record.get("region"),
                "input": _input_summary(record),
                "scenario": [before_s, after_s],
                "appropriateness": [before_a, after_a],
                "urgency": [before_u, after_u],
                "first_study": [before_f, after_f],
            }
            self.scenario_examples.setdefault(str(before_s), example)
        if a_changed or u_changed:
            self.changed += 1
            self.by_scenario[before_s] += 1
            if len(self.examples) < self.examples_wanted:
                self.examples.append({k: v for k, v in example.items()
                                      if k not in ("input", "first_study")})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; transitions as ``[{"from", "to", "count"}]``, changes first."""
        def table(counter: Counter) -> list[dict[str, Any]]:
            rows = [{"from": a, "to": b, "count": n} for (a, b), n in counter.items()]
            return sorted(rows, key=lambda r: (r["from"] == r["to"], -r["count"],
                                               str(r["from"]), str(r["to"])))

        return {
            "ruleset_version": self.ruleset_version,
            "engine_version": self.engine_version,
            "recorded_versions": dict(self.recorded_versions.most_common()),
            "total": self.total,
            "changed": self.changed,
            "changed_appropriateness": self.changed_appropriateness,
            "changed_urgency": self.changed_urgency,
            "urgency_up": self.urgency_up,
            "urgency_down": self.urgency_down,
            "changed_scenario": self.changed_scenario,
            "changed_first_study": self.changed_first_study,
            "errors": self.errors,
            "appropriateness_transitions": table(self.appropriateness),
            "urgency_transitions": table(self.urgency),
            "changed_by_original_scenario": dict(self.by_scenario.most_common()),
            "by_recorded_scenario": {name: impact.to_dict() for name, impact in sorted(
                self.scenarios.items(), key=lambda kv: (-kv[1].total, kv[0]))},
            "examples": self.examples,
            "scenario_examples": self.scenario_examples,
        }

    def markdown(self, *, title: str | None = None) -> str:
        """The measured part of an impact document (docs/rule-changes/<version>.md):
        totals, transitions, the per-scenario table and one example per changed scenario."""
        def pct(n: int) -> str:
            return f"{100 * n / self.total:.1f} %" if self.total else "-"

        recorded = ", ".join(f"{v} ({n})" for v, n in self.recorded_versions.most_common())
        out = [f"## {title or 'Measured impact'}", "",
               f"Replayed {self.total} logged decisions (recorded under {recorded}) under "
               f"rule set {self.ruleset_version}, engine {self.engine_version}.", "",
               "| change | decisions | share |", "|---|---:|---:|",
               f"| rating of the requested study | {self.changed_appropriateness} | "
               f"{pct(self.changed_appropriateness)} |",
               f"| urgency | {self.changed_urgency} | {pct(self.changed_urgency)} |",
               f"| — urgency raised | {self.urgency_up} | {pct(self.urgency_up)} |",
               f"| — urgency lowered | {self.urgency_down} | {pct(self.urgency_down)} |",
               f"| first recommended study | {self.changed_first_study} | "
               f"{pct(self.changed_first_study)} |",
               f"| rating or urgency | {self.changed} | {pct(self.changed)} |",
               f"| governing scenario (id) | {self.changed_scenario} | "
               f"{pct(self.changed_scenario)} |",
               f"| could not be evaluated | {self.errors} | {pct(self.errors)} |", ""]
        for heading, counter in (("Rating transitions", self.appropriateness),
                                 ("Urgency transitions", self.urgency)):
            moves = sorted(((a, b, n) for (a, b), n in counter.items() if a != b),
                           key=lambda t: (-t[2], str(t[0]), str(t[1])))
            out += [f"### {heading} (recorded → replayed)", "", "| from | to | decisions |",
                    "|---|---|---:|"]
            out += [f"| {a} | {b} | {n} |" for a, b, n in moves] or ["| — | — | 0 |"]
            out.append("")
        out += ["### By recorded scenario", "",
                "Changes counted per decision; *to* lists the replayed governing scenarios "
                "(at most three, most frequent first).", "",
                "| recorded scenario | decisions | rating | urgency (↑/↓) | first study | to |",
                "|---|---:|---:|---:|---:|---|"]
        for name, impact in sorted(self.scenarios.items(),
                                   key=lambda kv: (-kv[1].total, kv[0])):
            to = ", ".join(f"{s} ({n})" for s, n in impact.to.most_common(3))
            out.append(f"| {name} | {impact.total} | {impact.rating} | {impact.urgency} "
                       f"({impact.urgency_up}/{impact.urgency_down}) | {impact.first_study} "
                       f"| {to} |")
        out += ["", "### Examples (the first changed decision of each recorded scenario)", ""]
        for name, ex in sorted(self.scenario_examples.items()):
            out.append(
                f"- **{name}** — {ex['input']}: {ex['scenario'][0]} → {ex['scenario'][1]}; "
                f"rating {ex['appropriateness'][0]} → {ex['appropriateness'][1]}; urgency "
                f"{ex['urgency'][0]} → {ex['urgency'][1]}; first study "
                f"{ex['first_study'][0] or '—'} → {ex['first_study'][1] or '—'} "
                f"(decision `{ex['decision_id']}`)")
        return "\n".join(out) + "\n"

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


def _input_summary(record: Mapping[str, Any]) -> str:
    """A short clinical summary of the stored input (no patient identifier)."""
    given = record.get("input") or {}
    parts = [str(given.get("region", "?")), f"age {(given.get('patient') or {}).get('age')}",
             f"{given.get('symptom_duration_weeks')} wk"]
    if given.get("conservative_care_weeks"):
        parts.append(f"care {given['conservative_care_weeks']} wk")
    if given.get("intervention_candidate"):
        parts.append("candidate")
    parts += list(given.get("findings") or ())
    parts += [f"[{c}]" for c in given.get("contraindications") or ()]
    if given.get("egfr") is not None:
        parts.append(f"eGFR {given['egfr']}")
    requested = given.get("requested_procedure")
    if requested:
        parts.append(f"requested {requested}")
    return ", ".join(parts)


def impact(records: Iterable[Mapping[str, Any]], ruleset: RuleSet, vocabulary: Vocabulary,
           *, examples: int = 10) -> ImpactReport:
    """Replay every record (consumed as a stream) and return the impact report."""
    report = ImpactReport(ruleset_version=ruleset.version, examples_wanted=examples)
    for record in records:
        report.add(record, ruleset, vocabulary)
    return report
