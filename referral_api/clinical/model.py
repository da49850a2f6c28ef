"""The compiled form of a rule set version: scenarios, facts, safety modifiers, tests, and the
registry of loaded versions that picks the one in force. Pure module."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast

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
    #: The vocabulary this version validates and evaluates with (its own file, or the shared
    #: v1 file for versions without one, e.g. 2026.1.0).
    vocabulary: Vocabulary | None = None
    #: Rule language: 1 (2026.1.0) or 2 (ruleset.yaml `language: 2`, 2026.2.0 and later).
    language: int = 1
    #: Language 2 only: the compiled version-level parts (see :mod:`combine`).
    v2: Any = None

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
            **(self._language_two_json() if self.language >= 2 else {}),
        }

    def _language_two_json(self) -> dict[str, Any]:
        """Language-2 additions: rule language, notes, safety rows and the cells to check."""
        v2 = self.v2
        to_check = []
        for region, rules in self.regions.items():
            # A language-2 rule set holds RegionRulesV2 here (typed as the v1 mapping).
            for scenario in cast("RegionRulesV2", rules).scenarios:
                for source in scenario.sources:
                    if source.to_check:
                        to_check.append({"region": region, "scenario": scenario.id,
                                         "source": source.text,
                                         "evidence": list(source.evidence)})
        for row in v2.safety:
            for source in row.sources:
                if source.to_check:
                    to_check.append({"safety_row": row.id, "source": source.text,
                                     "evidence": list(source.evidence)})
        return {
            "language": 2,
            "notes": [{"text": n.text, **({"when": plain(n.raw_when)} if n.when else {}),
                       "regions": list(n.regions)} for n in v2.notes],
            "assumptions": [{"when": plain(a.raw_when), "field": a.field,
                             "assumed": a.assumed, "message": a.message}
                            for a in v2.assumptions],
            "safety_rows": [row.to_json() for row in v2.safety],
            "evidence_tags": {"S": "seen in a stored primary copy",
                              "S2": "secondary source only", "D": "2020 scrape of ACR tables",
                              "M": "expert knowledge, no stored source",
                              "P": "project decision"},
            "to_check": to_check,
        }


class RuleRegistry:
    """Every loaded version of the rule sets, each with its vocabulary.

    ``vocabulary`` is the shared v1 file (``rules/vocabulary.yaml``), kept for callers that
    predate versioned vocabularies; new code asks :meth:`vocabulary_for` (a version) or
    :meth:`vocabulary_at` (the version in force at a time).
    """

    def __init__(self, vocabulary: Vocabulary, rulesets: list[RuleSet]) -> None:
        self.vocabulary = vocabulary
        self._versions = sorted(rulesets, key=lambda r: version_key(r.version))
        self._by_version = {r.version: r for r in self._versions}

    def vocabulary_for(self, version: str) -> Vocabulary:
        """The vocabulary of a version; KeyError when the version is unknown."""
        return self._by_version[version].vocabulary or self.vocabulary

    def vocabulary_at(self, at: datetime) -> Vocabulary:
        """The vocabulary of the version in force at ``at``; LookupError when none is."""
        ruleset = self.in_force(at)
        return ruleset.vocabulary or self.vocabulary

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




# --- rule language 2 (ruleset.yaml `language: 2`: 2026.2.0 and later) ------------------------

#: Age bands of language 2 (criteria-2026.2.0 §3.1): the condition each stands for.
AGE_BANDS = {"adult": ("gte", 18), "age16": ("gte", 16), "child": ("lt", 18), "under16": ("lt", 16)}
#: Route sets a language-2 safety row may require "in play" (criteria-2026.2.0 §9).
ROUTE_SETS = ("always", "mri", "gadolinium", "iv_iodinated", "intrathecal", "ionising",
              "sacroiliac_mri")
SAFETY_LEVELS = ("info", "caution", "contraindicated")
SAFETY_EFFECTS_V2 = ("mri_substitution", "prefer_mri_without", "none")
#: Evidence tags of the criteria; the last three mean "check against a primary publication".
EVIDENCE_TAGS = ("S", "S2", "D", "M", "P")
EVIDENCE_TO_CHECK = ("S2", "D", "M")


@dataclass(frozen=True)
class PlanStep:
    """One step of a UA plan: alternatives in preference order; `when` makes it conditional."""

    codes: tuple[str, ...]
    when: Compiled | None = None
    raw_when: Any = None


@dataclass(frozen=True)
class Note:
    """A reason template: added when `when` holds; ``{features}`` lists present findings."""

    text: str
    when: Compiled | None = None
    raw_when: Any = None
    features: tuple[str, ...] = ()
    regions: tuple[str, ...] = REGIONS


@dataclass(frozen=True)
class Source:
    """A cited source with its evidence tags (criteria-2026.2.0: S, S2, D, M, P)."""

    text: str
    evidence: tuple[str, ...]

    def cited(self) -> str:
        """The citation as shown in a decision: text and tags."""
        return f"{self.text} [{', '.join(self.evidence)}]"

    @property
    def to_check(self) -> bool:
        """True when a cell rests on a secondary source, a 2020 scrape or expert knowledge."""
        return any(tag in EVIDENCE_TO_CHECK for tag in self.evidence)


@dataclass(frozen=True, eq=False)
class ScenarioV2:
    """A compiled language-2 scenario."""

    id: str
    title: str
    region: str
    index: int
    band: str
    band_fn: Compiled
    is_default: bool
    when: Compiled | None
    raw_when: Any
    urgency_cases: tuple[UrgencyCase, ...]
    urgency_else: str
    plan: tuple[PlanStep, ...]
    mba: tuple[str, ...]
    recommend: tuple[str, ...]
    not_covered: bool
    rationale: str
    notes: tuple[Note, ...]
    sources: tuple[Source, ...]
    facts: frozenset[str]
    line: int | None

    def urgency(self, mask: int) -> str:
        """The scenario's urgency for a request mask (facts included)."""
        for case in self.urgency_cases:
            if case.when.fn(mask):
                return case.level
        return self.urgency_else

    def ua_steps(self, mask: int) -> tuple[tuple[str, ...], ...]:
        """The UA plan's steps that hold for the mask (conditional steps resolved)."""
        return tuple(s.codes for s in self.plan if s.when is None or s.when.fn(mask))

    def ua_codes(self, mask: int) -> frozenset[str]:
        """Every procedure of the UA plan (conditions resolved)."""
        return frozenset(c for step in self.ua_steps(mask) for c in step)

    def to_json(self) -> dict[str, Any]:
        """Public description for GET /v1/rulesets/{version}."""
        urgency: Any = self.urgency_else
        if self.urgency_cases:
            urgency = {"cases": [{"level": c.level, "when": plain(c.raw_when)}
                                 for c in self.urgency_cases], "else": self.urgency_else}
        return {
            "id": self.id,
            "title": self.title,
            "age": self.band,
            "when": {"otherwise": True} if self.is_default else plain(self.raw_when),
            "urgency": urgency,
            "plan": [list(s.codes) if s.when is None
                     else {"when": plain(s.raw_when), "procedures": list(s.codes)}
                     for s in self.plan],
            "may_be_appropriate": [{"procedure": c, "recommend": True} if c in self.recommend
                                   else c for c in self.mba],
            "not_covered": self.not_covered,
            "rationale": self.rationale,
            "sources": [{"text": s.text, "evidence": list(s.evidence)} for s in self.sources],
        }


@dataclass(frozen=True, eq=False)
class RegionRulesV2:
    """The compiled language-2 rules of one region."""

    region: str
    file: str
    fact_steps: tuple[tuple[int, Callable[[int], bool]], ...]
    scenarios: tuple[ScenarioV2, ...]
    match_steps: tuple[tuple[int, Callable[[int], bool]], ...]
    defaults: tuple[tuple[int, Callable[[int], bool]], ...]
    relevant_findings: int
    fact_findings: Mapping[str, int]
    counterfactual_cache: dict[tuple[int, str], tuple[tuple[str, str, str, str], ...]] = field(
        default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class SafetyRow:
    """A language-2 safety row (criteria-2026.2.0 §9), as data."""

    id: str
    contraindications: tuple[str, ...]
    alert_code: str | None
    applies_when: str
    when: Callable[[Any], bool] | None
    raw_when: Any
    level_cases: tuple[tuple[str, Callable[[Any], bool], Any], ...]
    level_else: str
    effect: str
    message: str
    variants: tuple[tuple[Callable[[Any], bool], Any, str], ...]
    additions: tuple[tuple[Callable[[Any], bool], Any, str], ...]
    sources: tuple[Source, ...]

    def to_json(self) -> dict[str, Any]:
        """Public description for GET /v1/rulesets/{version}."""
        out: dict[str, Any] = {"id": self.id, "applies_when": self.applies_when}
        if self.contraindications:
            out["contraindications"] = list(self.contraindications)
        if self.alert_code:
            out["alert_code"] = self.alert_code
        if self.raw_when is not None:
            out["when"] = plain(self.raw_when)
        out["level"] = (self.level_else if not self.level_cases else {
            "cases": [{"level": lv, "when": plain(raw)} for lv, _, raw in self.level_cases],
            "else": self.level_else})
        out["effect"] = self.effect
        out["message"] = self.message
        if self.variants:
            out["variants"] = [{"when": plain(raw), "text": t} for _, raw, t in self.variants]
        if self.additions:
            out["additions"] = [{"when": plain(raw), "text": t} for _, raw, t in self.additions]
        out["sources"] = [{"text": s.text, "evidence": list(s.evidence)} for s in self.sources]
        return out


@dataclass(frozen=True)
class AssumptionRule:
    """An assumption the answer lists when `when` holds (e.g. an undated injury)."""

    when: Compiled
    raw_when: Any
    field: str
    assumed: str
    message: str


#: The fields of each scenario's patient information (criteria-2026.2.0 §12.1).
PATIENT_FIELDS = ("headline", "what_is_happening", "why_this_decision", "about_the_scan",
                  "meanwhile", "come_back_if", "questions_to_ask", "if_scan_booked")
COME_BACK_LEVELS = ("emergency", "today", "week")


@dataclass(frozen=True)
class PatientInformation:
    """patient-information.yaml: locale, placeholder defaults and one text per scenario."""

    locale: str
    placeholders: Mapping[str, str]
    scenarios: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class LanguageTwo:
    """The version-level parts of a language-2 rule set."""

    notes: tuple[Note, ...] = ()
    assumptions: tuple[AssumptionRule, ...] = ()
    safety: tuple[SafetyRow, ...] = ()
    patient_information: PatientInformation | None = None
