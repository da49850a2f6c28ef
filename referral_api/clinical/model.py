"""The compiled form of a rule set version: scenarios, facts, safety modifiers, tests, and the
registry of loaded versions that picks the one in force. Pure module."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import yaml

from referral_api.clinical.conditions import (
    AtomTable,
    Compiled,
    RuleProblem,
    plain,
)
from referral_api.clinical.vocabulary import Vocabulary
from referral_api.enums import REGIONS

VOCABULARY_FILE = "vocabulary.yaml"
LOCK_FILE = "rules.lock"
RULESET_FILE = "ruleset.yaml"
STATUSES = ("draft", "active", "retired")
URGENCY_RANK = {"none": 0, "routine": 1, "urgent": 2, "emergent": 3}
SAFETY_EFFECTS = ("non_mri_first", "prefer_mri_without_contrast", "none")
#: The statuses a safety rule may set (the response's ``safety.status`` adds ``clear``:
#: ``referral_api.enums.SAFETY_STATUSES``).
RULE_SAFETY_STATUSES = ("contraindicated", "caution")
# libyaml's safe loader when available: hashing parses every file.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


class RuleError(Exception):
    """Rule files are invalid, untested or do not match the lock; `.problems` says where."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --- compiled structures ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProcedureItem:
    """One entry of a UA or MBA list; `when` makes it conditional."""

    code: str
    when: Compiled | None = None
    raw_when: Any = None


@dataclass(frozen=True)
class UrgencyCase:
    """`level` applies when `when` holds (cases are tried in order, then the `else` level)."""

    level: str
    when: Compiled
    raw_when: Any


@dataclass(frozen=True, eq=False)
class Scenario:
    """A compiled scenario of one region."""

    id: str
    title: str
    region: str
    index: int
    is_default: bool
    when: Compiled | None
    raw_when: Any
    urgency_cases: tuple[UrgencyCase, ...]
    urgency_else: str
    usually_appropriate: tuple[ProcedureItem, ...]
    may_be_appropriate: tuple[ProcedureItem, ...]
    rationale: str
    sources: tuple[str, ...]
    facts: frozenset[str]
    line: int | None
    # Precomputed when no item is conditional (the common case): the lists as code tuples.
    static_lists: tuple[tuple[str, ...], tuple[str, ...]] | None

    def urgency(self, mask: int) -> str:
        """The scenario's urgency for a request mask (facts included)."""
        for case in self.urgency_cases:
            if case.when.fn(mask):
                return case.level
        return self.urgency_else

    def lists(self, mask: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(UA codes, MBA codes) in preference order, conditional items resolved."""
        if self.static_lists is not None:
            return self.static_lists
        return (
            tuple(i.code for i in self.usually_appropriate if i.when is None or i.when.fn(mask)),
            tuple(i.code for i in self.may_be_appropriate if i.when is None or i.when.fn(mask)),
        )

    def to_json(self) -> dict[str, Any]:
        """Public description for GET /v1/rulesets/{version}."""

        def items(seq: tuple[ProcedureItem, ...]) -> list[Any]:
            return [
                i.code if i.when is None else {"procedure": i.code, "when": plain(i.raw_when)}
                for i in seq
            ]

        urgency: Any = self.urgency_else
        if self.urgency_cases:
            urgency = {
                "cases": [
                    {"level": c.level, "when": plain(c.raw_when)} for c in self.urgency_cases
                ],
                "else": self.urgency_else,
            }
        return {
            "id": self.id,
            "title": self.title,
            "when": {"otherwise": True} if self.is_default else plain(self.raw_when),
            "urgency": urgency,
            "usually_appropriate": items(self.usually_appropriate),
            "may_be_appropriate": items(self.may_be_appropriate),
            "rationale": self.rationale,
            "sources": list(self.sources),
        }


@dataclass(frozen=True, eq=False)
class RegionRules:
    """The compiled rules of one region: fact steps, then scenarios in rule order."""

    region: str
    file: str
    fact_steps: tuple[tuple[int, Callable[[int], bool]], ...]
    scenarios: tuple[Scenario, ...]
    match_steps: tuple[tuple[int, Callable[[int], bool]], ...]
    default_index: int
    relevant_findings: int
    fact_findings: Mapping[str, int]
    #: Counterfactual lists already computed, by (request mask, requested procedure): the
    #: mask holds every fact the conditions read, so equal keys give equal answers.
    counterfactual_cache: dict[tuple[int, str], tuple[tuple[str, str, str, str], ...]] = field(
        default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class FactDefinition:
    """A derived fact of ruleset.yaml."""

    name: str
    label: str
    role: str | None
    raw_when: Any
    regions: tuple[str, ...]
    overrides: Mapping[str, Any]


@dataclass(frozen=True)
class SafetyModifier:
    """One row of the safety table, as data."""

    id: str
    contraindications: tuple[str, ...]
    egfr_below: float | None
    requires_contrast: bool
    status: str
    effect: str
    alert_code: str | None
    messages: Mapping[str, str]
    message: str
    ionising_message: str | None
    sources: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Public description for GET /v1/rulesets/{version}."""
        trigger: dict[str, Any] = {"contraindications": list(self.contraindications)}
        if self.egfr_below is not None:
            trigger["egfr_below"] = self.egfr_below
        out: dict[str, Any] = {
            "id": self.id,
            "trigger": trigger,
            "requires_contrast": self.requires_contrast,
            "status": self.status,
            "effect": self.effect,
            "message": self.message,
            "sources": list(self.sources),
        }
        if self.messages:
            out["messages"] = dict(self.messages)
        if self.alert_code:
            out["alert_code"] = self.alert_code
        if self.ionising_message:
            out["ionising_message"] = self.ionising_message
        return out


@dataclass(frozen=True)
class EmbeddedTest:
    """A test case written in a rule file, located by file and line."""

    file: str
    line: int | None
    scenario_id: str
    name: str
    request: Mapping[str, Any]
    expect: Mapping[str, Any]


@dataclass(frozen=True, eq=False)
class RuleSet:
    """One compiled, validated version of a rule set."""

    id: str
    version: str
    status: str
    effective_from: date
    sha256: str
    files: tuple[str, ...]
    published: bool
    title: str = ""
    citation: str = ""
    url: str = ""
    regions: Mapping[str, RegionRules] = field(default_factory=dict)
    facts: tuple[FactDefinition, ...] = ()
    safety: tuple[SafetyModifier, ...] = ()
    tests: tuple[EmbeddedTest, ...] = ()
    table: AtomTable | None = None
    request_mask: Callable[[Mapping[str, Any]], int] | None = None
    file_hashes: Mapping[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """version, status, effective_from, sha256 (for GET /v1/rulesets)."""
        return {
            "version": self.version,
            "status": self.status,
            "effective_from": self.effective_from.isoformat(),
            "sha256": self.sha256,
        }

    def to_json(self) -> dict[str, Any]:
        """The whole rule set as JSON (GET /v1/rulesets/{version})."""
        facts = []
        for f in self.facts:
            entry: dict[str, Any] = {"name": f.name, "label": f.label, "when": plain(f.raw_when)}
            if f.regions != REGIONS:
                entry["regions"] = list(f.regions)
            if f.overrides:
                entry["region_overrides"] = plain(f.overrides)
            facts.append(entry)
        return {
            "id": self.id,
            **self.summary(),
            "published": self.published,
            "title": self.title,
            "citation": self.citation,
            "url": self.url,
            "facts": facts,
            "regions": {
                region: [s.to_json() for s in rules.scenarios]
                for region, rules in self.regions.items()
            },
            "safety_modifiers": [m.to_json() for m in self.safety],
        }


class RuleRegistry:
    """Every loaded version of the rule sets, with the vocabulary they share."""

    def __init__(self, vocabulary: Vocabulary, rulesets: list[RuleSet]) -> None:
        self.vocabulary = vocabulary
        self._versions = sorted(rulesets, key=lambda r: version_key(r.version))
        self._by_version = {r.version: r for r in self._versions}

    def versions(self) -> list[RuleSet]:
        """All versions, oldest first (semantic version order)."""
        return list(self._versions)

    def get(self, version: str) -> RuleSet:
        """The version; KeyError when unknown."""
        return self._by_version[version]

    def in_force(self, at: datetime) -> RuleSet:
        """The active version with the latest effective_from on or before `at` (UTC)."""
        if at.tzinfo is not None:
            at = at.astimezone(UTC)
        day = at.date()
        candidates = [r for r in self._versions if r.status == "active" and r.effective_from <= day]
        if not candidates:
            raise LookupError(f"no active rule set is in force at {day.isoformat()}")
        return max(candidates, key=lambda r: (r.effective_from, version_key(r.version)))


def version_key(version: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in version.split("."))


