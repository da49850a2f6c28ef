"""The condition language of the rule files: YAML with line numbers, parsing and compilation.

Pure module. A condition is a YAML mapping with exactly one key:

    finding: <finding code>                  the finding is present
    fact: <fact name>                        a derived fact (ruleset.yaml `facts`) holds
    age | symptom_duration_weeks | conservative_care_weeks: {lt|lte|gt|gte|eq: number, ...}
    intervention_candidate: true | false
    all: [conditions]     any: [conditions]     not: condition

Added with rule language 2 (2026.2.0; vocabulary-2026.2.0-delta §1.3), usable in any version:

    contraindication: <contraindication code>    the request lists it (e.g. dialysis)
    days_since_injury: given                      the request gives days_since_injury
    days_since_injury: {lte|lt|gte|gt|eq: number} given and compared (not given: false)

Every atom becomes one bit of an integer "mask": findings, numeric comparisons (fixed per
request, computed once), the intervention flag and the derived facts. A compiled condition is a
closure over that integer, so evaluating a scenario is a few bit operations; this is what makes
the counterfactual re-evaluations (`would_change_if`) cheap.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

NUMERIC_FIELDS = ("age", "symptom_duration_weeks", "conservative_care_weeks")
#: Numeric request fields that may be absent (a comparison with an absent value is false).
OPTIONAL_NUMERIC_FIELDS = ("days_since_injury",)
BOOLEAN_FIELDS = ("intervention_candidate",)
COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "eq": operator.eq,
}
COMPARATOR_WORDS = {"lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "eq": "="}

Predicate = Callable[[int], bool]


@dataclass(frozen=True)
class RuleProblem:
    """One problem in a rule file, located by file and line (1-based) when known."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


# --- YAML with line numbers -------------------------------------------------------------------


class LineDict(dict):
    """A mapping from YAML that remembers its own line and each key's line."""

    line: int | None = None
    key_lines: dict[Any, int]


class LineList(list):
    """A sequence from YAML that remembers its own line and each item's line."""

    line: int | None = None
    item_lines: list[int]


# libyaml's parser when available (loading several rule versions stays well under a second).
_BaseSafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_BaseSafeLoader):  # type: ignore[misc,valid-type]
    """SafeLoader whose mappings and sequences carry line numbers; duplicate keys are errors."""


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: Any, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def load_yaml(text: str, file: str) -> tuple[Any, list[RuleProblem]]:
    """Parse YAML keeping line numbers; returns (document, problems)."""
    try:
        return yaml.load(text, Loader=_LineLoader), []  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, [RuleProblem(file, line, f"invalid YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [RuleProblem(file, None, f"invalid YAML: {exc}")]


def line_of(node: Any, key: Any = None, default: int | None = None) -> int | None:
    """The line of a node, or of one of its keys (mapping) or items (sequence)."""
    if key is not None:
        if isinstance(node, LineDict) and key in node.key_lines:
            return node.key_lines[key]
        if isinstance(node, LineList) and isinstance(key, int) and key < len(node.item_lines):
            return node.item_lines[key]
    line = getattr(node, "line", None)
    return line if line is not None else default


def plain(node: Any) -> Any:
    """The node as plain JSON-compatible data (dates become ISO strings)."""
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if hasattr(node, "isoformat"):
        return node.isoformat()
    return node


# --- atoms and compilation --------------------------------------------------------------------


class AtomTable:
    """Allocates one bit per atom: findings first (vocabulary order), then the others."""

    def __init__(self, findings: Iterable[str]) -> None:
        self.finding_bits: dict[str, int] = {}
        for code in findings:
            self.finding_bits[code] = 1 << len(self.finding_bits)
        self._next = len(self.finding_bits)
        self.request_atoms: dict[tuple[str, str, Any], int] = {}
        self.fact_bits: dict[str, int] = {}

    def _allocate(self) -> int:
        bit = 1 << self._next
        self._next += 1
        return bit

    def request_bit(self, field: str, op: str, value: Any) -> int:
        """The bit of a comparison on a request field (computed once per request)."""
        key = (field, op, value)
        if key not in self.request_atoms:
            self.request_atoms[key] = self._allocate()
        return self.request_atoms[key]

    def fact_bit(self, name: str) -> int:
        """The bit of a derived fact (shared by all regions)."""
        if name not in self.fact_bits:
            self.fact_bits[name] = self._allocate()
        return self.fact_bits[name]

    def request_mask_builder(self) -> Callable[[Mapping[str, Any]], int]:
        """A function giving the bits of the request-level atoms (not findings, not facts)."""
        atoms = [
            (bit, field, COMPARATORS[op], value)
            for (field, op, value), bit in self.request_atoms.items()
            if op in COMPARATORS
        ]

        def build(request: Mapping[str, Any]) -> int:
            mask = 0
            for bit, field, compare, value in atoms:
                if compare(request[field], value):
                    mask |= bit
            return mask

        extra = [(bit, field, op, value)
                 for (field, op, value), bit in self.request_atoms.items()
                 if field == "contraindication" or field in OPTIONAL_NUMERIC_FIELDS]
        if not extra:
            return build
        atoms = [a for a in atoms if a[1] != "contraindication"
                 and a[1] not in OPTIONAL_NUMERIC_FIELDS]

        def build_v2(request: Mapping[str, Any]) -> int:
            mask = build(request)
            given = request.get("contraindications") or ()
            for bit, field, op, value in extra:
                if field == "contraindication":
                    hit = value in given
                else:
                    actual = request.get(field)
                    hit = actual is not None and (op == "given" or COMPARATORS[op](actual, value))
                if hit:
                    mask |= bit
            return mask

        return build_v2

        return build

    def findings_mask(self, findings: Iterable[str]) -> int:
        """The bits of the findings present (unknown codes are ignored: validated upstream)."""
        bits = self.finding_bits
        mask = 0
        for code in findings:
            mask |= bits.get(code, 0)
        return mask


@dataclass(frozen=True)
class Compiled:
    """A compiled condition: its predicate, the bits it reads and, for an atom, its own bit."""

    fn: Predicate
    refs: int
    bit: int = 0
    facts: frozenset[str] = frozenset()


def _atom(bit: int, facts: frozenset[str] = frozenset()) -> Compiled:
    return Compiled(fn=lambda m: m & bit != 0, refs=bit, bit=bit, facts=facts)


def _combine_any(parts: list[Compiled]) -> Predicate:
    mask = 0
    others: list[Predicate] = []
    for part in parts:
        if part.bit:
            mask |= part.bit
        else:
            others.append(part.fn)
    if not others:
        return lambda m: m & mask != 0
    if not mask and len(others) == 1:
        return others[0]
    if len(others) == 1:
        (f,) = others
        return lambda m: m & mask != 0 or f(m)
    if len(others) == 2:
        f, g = others
        return lambda m: m & mask != 0 or f(m) or g(m)
    fns = tuple(others)
    return lambda m: m & mask != 0 or any(f(m) for f in fns)


def _combine_all(parts: list[Compiled]) -> Predicate:
    mask = 0
    others: list[Predicate] = []
    for part in parts:
        if part.bit:
            mask |= part.bit
        else:
            others.append(part.fn)
    if not others:
        return lambda m: m & mask == mask
    if not mask and len(others) == 1:
        return others[0]
    if len(others) == 1:
        (f,) = others
        return lambda m: m & mask == mask and f(m)
    if len(others) == 2:
        f, g = others
        return lambda m: m & mask == mask and f(m) and g(m)
    fns = tuple(others)
    return lambda m: m & mask == mask and all(f(m) for f in fns)


class ConditionCompiler:
    """Parses and compiles conditions of one file, collecting problems with their lines."""

    def __init__(
        self,
        table: AtomTable,
        file: str,
        problems: list[RuleProblem],
        known_facts: Iterable[str] = (),
        contraindications: Iterable[str] = (),
    ) -> None:
        self.table = table
        self.file = file
        self.problems = problems
        self.known_facts = set(known_facts)
        self.contraindications = set(contraindications)

    def _problem(self, line: int | None, message: str) -> None:
        self.problems.append(RuleProblem(self.file, line, message))

    def compile(self, node: Any, line: int | None = None) -> Compiled | None:
        """Compile one condition; on error record a problem and return None."""
        line = line_of(node, default=line)
        if not isinstance(node, Mapping) or len(node) != 1:
            self._problem(
                line,
                "a condition is a mapping with exactly one key (finding, fact, all, any, not, "
                f"intervention_candidate, {', '.join(NUMERIC_FIELDS)})",
            )
            return None
        ((key, value),) = node.items()
        key_line = line_of(node, key, line)
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                self._problem(key_line, f"'{key}' needs a non-empty list of conditions")
                return None
            parts = [
                self.compile(item, line_of(value, i, key_line)) for i, item in enumerate(value)
            ]
            if any(p is None for p in parts):
                return None
            done = [p for p in parts if p is not None]
            refs = 0
            facts: frozenset[str] = frozenset()
            for p in done:
                refs |= p.refs
                facts |= p.facts
            fn = _combine_any(done) if key == "any" else _combine_all(done)
            return Compiled(fn=fn, refs=refs, facts=facts)
        if key == "not":
            inner = self.compile(value, key_line)
            if inner is None:
                return None
            if inner.bit:
                bit = inner.bit
                return Compiled(fn=lambda m: m & bit == 0, refs=inner.refs, facts=inner.facts)
            f = inner.fn
            return Compiled(fn=lambda m: not f(m), refs=inner.refs, facts=inner.facts)
        if key == "finding":
            if value not in self.table.finding_bits:
                self._problem(key_line, f"unknown finding {value!r} (not in vocabulary.yaml)")
                return None
            return _atom(self.table.finding_bits[value])
        if key == "fact":
            if not isinstance(value, str) or value not in self.known_facts:
                self._problem(
                    key_line,
                    f"unknown fact {value!r} (facts are defined in ruleset.yaml, before use, "
                    "for this region)",
                )
                return None
            return _atom(self.table.fact_bit(value), frozenset({value}))
        if key == "contraindication":
            if value not in self.contraindications:
                self._problem(key_line, f"unknown contraindication {value!r} (not in the "
                              "version's vocabulary)")
                return None
            return _atom(self.table.request_bit("contraindication", "has", value))
        if key in OPTIONAL_NUMERIC_FIELDS:
            if value == "given":
                return _atom(self.table.request_bit(key, "given", True))
            if not isinstance(value, Mapping) or not value:
                self._problem(key_line, f"'{key}' is 'given' or comparisons, e.g. {{lte: 7}}")
                return None
            optional_parts: list[Compiled] = []
            for op, number in value.items():
                if op not in COMPARATORS or isinstance(number, bool) or not isinstance(
                        number, int | float):
                    self._problem(line_of(value, op, key_line),
                                  f"'{key}' needs comparisons with numbers, e.g. {{lte: 7}}")
                    return None
                optional_parts.append(_atom(self.table.request_bit(key, op, number)))
            if len(optional_parts) == 1:
                return optional_parts[0]
            refs = 0
            for p in optional_parts:
                refs |= p.refs
            return Compiled(fn=_combine_all(optional_parts), refs=refs)
        if key in BOOLEAN_FIELDS:
            if not isinstance(value, bool):
                self._problem(key_line, f"'{key}' must be true or false")
                return None
            bit = self.table.request_bit(key, "eq", True)
            if value:
                return _atom(bit)
            return Compiled(fn=lambda m: m & bit == 0, refs=bit)
        if key in NUMERIC_FIELDS:
            if not isinstance(value, Mapping) or not value:
                self._problem(key_line, f"'{key}' needs comparisons, e.g. {{gte: 50}}")
                return None
            comparisons: list[Compiled] = []
            for op, number in value.items():
                if op not in COMPARATORS:
                    self._problem(
                        line_of(value, op, key_line),
                        f"unknown comparison {op!r} (use {', '.join(COMPARATORS)})",
                    )
                    return None
                if isinstance(number, bool) or not isinstance(number, int | float):
                    self._problem(line_of(value, op, key_line), f"'{key}.{op}' must be a number")
                    return None
                comparisons.append(_atom(self.table.request_bit(key, op, number)))
            if len(comparisons) == 1:
                return comparisons[0]
            refs = 0
            for p in comparisons:
                refs |= p.refs
            return Compiled(fn=_combine_all(comparisons), refs=refs)
        self._problem(key_line, f"unknown condition {key!r}")
        return None


def describe(node: Any) -> str:
    """A short human reading of a (valid) condition, used in documentation output."""
    if not isinstance(node, Mapping) or len(node) != 1:
        return str(node)
    ((key, value),) = node.items()
    if key in ("all", "any"):
        joiner = " and " if key == "all" else " or "
        return "(" + joiner.join(describe(v) for v in value) + ")"
    if key == "not":
        return f"not {describe(value)}"
    if key in ("finding", "fact"):
        return str(value)
    if key == "contraindication":
        return f"contraindication {value}"
    if key in OPTIONAL_NUMERIC_FIELDS:
        if value == "given":
            return f"{key} given"
        return " and ".join(f"{key} {COMPARATOR_WORDS[op]} {n}" for op, n in value.items())
    if key in NUMERIC_FIELDS:
        return " and ".join(f"{key} {COMPARATOR_WORDS[op]} {n}" for op, n in value.items())
    return f"{key} = {str(value).lower()}"
