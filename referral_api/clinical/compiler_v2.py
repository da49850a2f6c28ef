"""Compiling rule language 2 (``language: 2`` in ruleset.yaml; 2026.2.0 and later). Pure module.

What language 2 adds to the files of language 1 (``docs/rules-authoring.md``):

- scenarios: ``age`` (band: adult, age16, child, under16), ``plan`` (UA steps: each a list of
  alternatives, or ``{when, procedures}``), ``may_be_appropriate`` items that may be
  ``{procedure, recommend: true}`` (★), ``not_covered``, ``notes`` (reason templates) and
  ``sources`` as ``{text, evidence: [tags]}``; several ``when: {otherwise: true}`` defaults,
  one per age band;
- ruleset.yaml: ``notes`` (version-wide reason templates, optionally per region),
  ``assumptions`` (e.g. an undated injury), ``patient_information`` (the file of patient
  texts) and ``safety`` rows with ``applies_when`` (route set in play), ``level`` and messages
  whose variants and additions depend on safety conditions (below).

Safety conditions (evaluated once per decision, not in the bit mask): ``contraindication:
code``, ``egfr: {lt|lte|gt|gte: n}`` (false when no eGFR), ``egfr: missing``, ``in_play:
<route set>``, ``urgency: <level>``, ``all``/``any``/``not``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from referral_api.clinical.conditions import (
    COMPARATORS,
    AtomTable,
    Compiled,
    ConditionCompiler,
    LineDict,
    RuleProblem,
    line_of,
    load_yaml,
    plain,
)
from referral_api.clinical.model import (
    AGE_BANDS,
    COME_BACK_LEVELS,
    EVIDENCE_TAGS,
    PATIENT_FIELDS,
    ROUTE_SETS,
    SAFETY_EFFECTS_V2,
    SAFETY_LEVELS,
    AssumptionRule,
    EmbeddedTest,
    Note,
    PatientInformation,
    PlanStep,
    RegionRulesV2,
    SafetyRow,
    ScenarioV2,
    Source,
    UrgencyCase,
)
from referral_api.clinical.vocabulary import Vocabulary
from referral_api.enums import REGIONS, URGENCIES

_SCENARIO_KEYS = {
    "id", "title", "age", "when", "urgency", "plan", "may_be_appropriate", "not_covered",
    "rationale", "notes", "sources", "tests",
}
_SAFETY_KEYS = {
    "id", "contraindications", "alert_code", "applies_when", "when", "level", "effect",
    "message", "variants", "additions", "sources",
}
_TEST_KEYS = {"name", "request", "expect"}
_EXPECT_KEYS = {
    "scenario", "matches", "not_scenario", "urgency", "appropriateness", "recommended",
    "also_matched", "safety_status", "plan", "contributing", "alerts", "alert_levels",
    "assumptions", "reasons_include",
}
_REQUEST_KEYS = {
    "age", "patient", "requested_procedure", "symptom_duration_weeks",
    "conservative_care_weeks", "intervention_candidate", "findings", "contraindications", "egfr",
    "days_since_injury",
}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class _Check:
    """Records problems located in one file."""

    def __init__(self, file: str, problems: list[RuleProblem]) -> None:
        self.file = file
        self.problems = problems

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(RuleProblem(self.file, line, message))

    def keys(self, node: Mapping[str, Any], allowed: set[str], what: str) -> None:
        for key in node:
            if key not in allowed:
                self.problem(line_of(node, key), f"unknown key {key!r} in {what} "
                             f"(allowed: {', '.join(sorted(allowed))})")

    def text(self, node: Mapping[str, Any], key: str, what: str) -> str:
        value = node.get(key)
        if not isinstance(value, str) or not value.strip():
            self.problem(line_of(node, key, line_of(node)), f"{what} needs '{key}' (text)")
            return ""
        return " ".join(value.split())


def compile_sources(node: Any, line: int | None, check: _Check, what: str) -> list[Source]:
    """``sources``: a non-empty list of ``{text, evidence: [tags]}`` (tags of the criteria)."""
    if not isinstance(node, list) or not node:
        check.problem(line, f"{what}: 'sources' must be a non-empty list of {{text, evidence}}")
        return []
    out = []
    for i, item in enumerate(node):
        item_line = line_of(node, i, line)
        if not isinstance(item, Mapping) or set(item) != {"text", "evidence"}:
            check.problem(item_line, f"{what}: a source is {{text, evidence: [tags]}}")
            continue
        tags = item["evidence"]
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not tags or any(t not in EVIDENCE_TAGS for t in tags):
            check.problem(item_line, f"{what}: evidence must list tags among "
                          f"{', '.join(EVIDENCE_TAGS)}")
            continue
        text = item["text"]
        if not isinstance(text, str) or not text.strip():
            check.problem(item_line, f"{what}: a source needs text")
            continue
        out.append(Source(text=" ".join(text.split()), evidence=tuple(tags)))
    return out


def compile_notes(node: Any, line: int | None, compiler: ConditionCompiler, check: _Check,
                  vocabulary: Vocabulary, *, with_regions: bool) -> list[Note]:
    """``notes``: reason templates ``{text, when?, features?, regions?}``."""
    if node is None:
        return []
    if not isinstance(node, list):
        check.problem(line, "'notes' must be a list of {text, when}")
        return []
    allowed = {"text", "when", "features"} | ({"regions"} if with_regions else set())
    out = []
    for i, item in enumerate(node):
        item_line = line_of(node, i, line)
        if not isinstance(item, Mapping):
            check.problem(item_line, "a note is {text, when}")
            continue
        check.keys(item, allowed, "a note")
        text = check.text(item, "text", "a note")
        when = None
        if "when" in item:
            when = compiler.compile(item["when"], line_of(item, "when", item_line))
            if when is None:
                continue
        features = item.get("features") or []
        if not isinstance(features, list) or any(f not in vocabulary.findings for f in features):
            check.problem(line_of(item, "features", item_line),
                          "'features' lists finding codes")
            features = []
        if "{features}" in text and not features:
            check.problem(item_line, "a note with {features} needs 'features'")
        regions = item.get("regions", list(REGIONS))
        if not isinstance(regions, list) or any(r not in REGIONS for r in regions):
            check.problem(line_of(item, "regions", item_line), "'regions' lists regions")
            regions = list(REGIONS)
        out.append(Note(text=text, when=when, raw_when=item.get("when"),
                        features=tuple(features), regions=tuple(regions)))
    return out


def compile_assumptions(node: Any, line: int | None, compiler: ConditionCompiler,
                        check: _Check) -> list[AssumptionRule]:
    """``assumptions``: ``{when, field, assumed, message}``, listed when `when` holds."""
    if node is None:
        return []
    if not isinstance(node, list):
        check.problem(line, "'assumptions' must be a list")
        return []
    out = []
    for i, item in enumerate(node):
        item_line = line_of(node, i, line)
        if not isinstance(item, Mapping):
            check.problem(item_line, "an assumption is {when, field, assumed, message}")
            continue
        check.keys(item, {"when", "field", "assumed", "message"}, "an assumption")
        when = compiler.compile(item.get("when"), line_of(item, "when", item_line))
        if when is None:
            continue
        out.append(AssumptionRule(
            when=when, raw_when=item["when"], field=check.text(item, "field", "an assumption"),
            assumed=str(item.get("assumed", "")),
            message=check.text(item, "message", "an assumption")))
    return out


# --- safety conditions -------------------------------------------------------------------------


def _safety_condition(node: Any, line: int | None, vocabulary: Vocabulary,
                      check: _Check) -> Callable[[Any], bool] | None:
    """Compile a safety condition into a predicate over a :class:`safety.SafetyContext`."""
    if not isinstance(node, Mapping) or len(node) != 1:
        check.problem(line, "a safety condition is a mapping with one key (contraindication, "
                      "egfr, in_play, urgency, all, any, not)")
        return None
    ((key, value),) = node.items()
    key_line = line_of(node, key, line)
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            check.problem(key_line, f"'{key}' needs a non-empty list")
            return None
        parts = [_safety_condition(v, line_of(value, i, key_line), vocabulary, check)
                 for i, v in enumerate(value)]
        if any(p is None for p in parts):
            return None
        fns = tuple(p for p in parts if p is not None)
        if key == "all":
            return lambda ctx: all(f(ctx) for f in fns)
        return lambda ctx: any(f(ctx) for f in fns)
    if key == "not":
        inner = _safety_condition(value, key_line, vocabulary, check)
        if inner is None:
            return None
        return lambda ctx: not inner(ctx)
    if key == "contraindication":
        if value not in vocabulary.contraindications:
            check.problem(key_line, f"unknown contraindication {value!r}")
            return None
        return lambda ctx: value in ctx.contraindications
    if key == "egfr":
        if value == "missing":
            return lambda ctx: ctx.egfr is None
        if not isinstance(value, Mapping) or len(value) != 1:
            check.problem(key_line, "'egfr' is 'missing' or one comparison, e.g. {lt: 30}")
            return None
        ((op, number),) = value.items()
        if op not in COMPARATORS or isinstance(number, bool) or not isinstance(
                number, int | float):
            check.problem(key_line, "'egfr' needs a comparison with a number")
            return None
        compare = COMPARATORS[op]
        return lambda ctx: ctx.egfr is not None and compare(ctx.egfr, number)
    if key == "in_play":
        if value not in ROUTE_SETS:
            check.problem(key_line, f"'in_play' must be one of {', '.join(ROUTE_SETS)}")
            return None
        return lambda ctx: ctx.in_play(value)
    if key == "urgency":
        if value not in URGENCIES:
            check.problem(key_line, f"urgency must be one of {', '.join(URGENCIES)}")
            return None
        return lambda ctx: ctx.urgency == value
    check.problem(key_line, f"unknown safety condition {key!r}")
    return None


def _texts(node: Any, line: int | None, vocabulary: Vocabulary, check: _Check,
           what: str) -> list[tuple[Callable[[Any], bool], Any, str]]:
    if node is None:
        return []
    if not isinstance(node, list):
        check.problem(line, f"'{what}' must be a list of {{when, text}}")
        return []
    out = []
    for i, item in enumerate(node):
        item_line = line_of(node, i, line)
        if not isinstance(item, Mapping) or set(item) != {"when", "text"}:
            check.problem(item_line, f"an item of '{what}' is {{when, text}}")
            continue
        fn = _safety_condition(item["when"], line_of(item, "when", item_line), vocabulary, check)
        if fn is not None:
            out.append((fn, item["when"], check.text(item, "text", what)))
    return out


def compile_safety(node: Any, line: int | None, vocabulary: Vocabulary,
                   check: _Check) -> list[SafetyRow]:
    """The language-2 safety table (criteria-2026.2.0 §9), rows in order of application."""
    if not isinstance(node, list) or not node:
        check.problem(line, "'safety' must be a non-empty list of rows")
        return []
    rows: list[SafetyRow] = []
    for i, row in enumerate(node):
        row_line = line_of(node, i, line)
        if not isinstance(row, Mapping):
            check.problem(row_line, "a safety row must be a mapping")
            continue
        check.keys(row, _SAFETY_KEYS, "a safety row")
        row_id = check.text(row, "id", "a safety row")
        codes = row.get("contraindications") or []
        if not isinstance(codes, list) or any(c not in vocabulary.contraindications
                                              for c in codes):
            check.problem(line_of(row, "contraindications", row_line),
                          "'contraindications' lists contraindication codes")
            codes = []
        alert_code = row.get("alert_code")
        if not codes and not isinstance(alert_code, str):
            check.problem(row_line, "a safety row needs 'contraindications' or 'alert_code'")
        applies = row.get("applies_when")
        if applies not in ROUTE_SETS:
            check.problem(line_of(row, "applies_when", row_line),
                          f"'applies_when' must be one of {', '.join(ROUTE_SETS)}")
        when = None
        if "when" in row:
            when = _safety_condition(row["when"], line_of(row, "when", row_line), vocabulary,
                                     check)
        level_node = row.get("level")
        level_cases: list[tuple[str, Callable[[Any], bool], Any]] = []
        level_else = "caution"
        if isinstance(level_node, str):
            level_else = level_node
        elif isinstance(level_node, Mapping) and set(level_node) == {"cases", "else"}:
            level_else = level_node["else"]
            for j, case in enumerate(level_node["cases"] or []):
                case_line = line_of(level_node["cases"], j, row_line)
                if not isinstance(case, Mapping) or set(case) != {"level", "when"}:
                    check.problem(case_line, "a level case is {level, when}")
                    continue
                fn = _safety_condition(case["when"], case_line, vocabulary, check)
                if case["level"] not in SAFETY_LEVELS:
                    check.problem(case_line, f"level must be one of {', '.join(SAFETY_LEVELS)}")
                elif fn is not None:
                    level_cases.append((case["level"], fn, case["when"]))
        else:
            check.problem(line_of(row, "level", row_line), "'level' is a level or "
                          "{cases: [{level, when}], else: level}")
        if level_else not in SAFETY_LEVELS:
            check.problem(line_of(row, "level", row_line),
                          f"level must be one of {', '.join(SAFETY_LEVELS)}")
        effect = row.get("effect", "none")
        if effect not in SAFETY_EFFECTS_V2:
            check.problem(line_of(row, "effect", row_line),
                          f"'effect' must be one of {', '.join(SAFETY_EFFECTS_V2)}")
        rows.append(SafetyRow(
            id=row_id,
            contraindications=tuple(codes),
            alert_code=alert_code if isinstance(alert_code, str) else None,
            applies_when=str(applies),
            when=when,
            raw_when=row.get("when"),
            level_cases=tuple(level_cases),
            level_else=str(level_else),
            effect=str(effect),
            message=check.text(row, "message", "a safety row"),
            variants=tuple(_texts(row.get("variants"), line_of(row, "variants", row_line),
                                  vocabulary, check, "variants")),
            additions=tuple(_texts(row.get("additions"), line_of(row, "additions", row_line),
                                   vocabulary, check, "additions")),
            sources=tuple(compile_sources(row.get("sources"), line_of(row, "sources", row_line),
                                          check, f"safety row {row_id}")),
        ))
    return rows


# --- patient information -------------------------------------------------------------------------


def load_patient_information(path: Path, display: str,
                             problems: list[RuleProblem]) -> PatientInformation | None:
    """Read and check patient-information.yaml (its scenario ids are checked by the caller)."""
    check = _Check(display, problems)
    try:
        doc, found = load_yaml(path.read_text(encoding="utf-8"), display)
    except OSError as exc:
        check.problem(None, f"cannot be read: {exc}")
        return None
    problems.extend(found)
    if found:
        return None
    if not isinstance(doc, LineDict):
        check.problem(1, "the file must hold a mapping")
        return None
    check.keys(doc, {"locale", "placeholders", "scenarios"}, "patient-information.yaml")
    locale = doc.get("locale")
    if not isinstance(locale, str) or not locale:
        check.problem(line_of(doc, "locale", 1), "'locale' is required (e.g. en-US)")
    placeholders = doc.get("placeholders") or {}
    if not isinstance(placeholders, Mapping) or any(
            not isinstance(v, str | int | float) for v in placeholders.values()):
        check.problem(line_of(doc, "placeholders", 1), "'placeholders' maps names to defaults")
        placeholders = {}
    scenarios = doc.get("scenarios")
    if not isinstance(scenarios, Mapping) or not scenarios:
        check.problem(line_of(doc, "scenarios", 1), "'scenarios' maps scenario ids to texts")
        return None
    out: dict[str, dict[str, Any]] = {}
    for sid, text in scenarios.items():
        sline = line_of(scenarios, sid)
        if not isinstance(text, Mapping):
            check.problem(sline, f"{sid}: a mapping of {', '.join(PATIENT_FIELDS)}")
            continue
        missing = [f for f in PATIENT_FIELDS if f not in text]
        extra = [f for f in text if f not in PATIENT_FIELDS]
        if missing or extra:
            check.problem(sline, f"{sid}: fields must be exactly {', '.join(PATIENT_FIELDS)}"
                          f" (missing: {', '.join(missing) or '-'}; unknown: "
                          f"{', '.join(map(str, extra)) or '-'})")
            continue
        ok = True
        for name in ("headline", "what_is_happening", "why_this_decision", "about_the_scan"):
            if name == "about_the_scan" and text[name] is None:
                continue  # null: no scan to explain (the readability check agrees)
            if not isinstance(text[name], str) or not text[name].strip():
                check.problem(line_of(text, name, sline), f"{sid}.{name} must be text")
                ok = False
        for name in ("meanwhile", "questions_to_ask"):
            items = text[name]
            if not isinstance(items, list) or not items or not all(
                    isinstance(i, str) and i.strip() for i in items):
                check.problem(line_of(text, name, sline), f"{sid}.{name} is a list of text")
                ok = False
        if text["if_scan_booked"] is not None and not isinstance(text["if_scan_booked"], str):
            check.problem(line_of(text, "if_scan_booked", sline),
                          f"{sid}.if_scan_booked is text or null")
            ok = False
        come_back = text["come_back_if"]
        if not isinstance(come_back, list) or not come_back:
            check.problem(line_of(text, "come_back_if", sline),
                          f"{sid}.come_back_if is a list of {{sign, level, action}}")
            ok = False
        else:
            for j, item in enumerate(come_back):
                iline = line_of(come_back, j, sline)
                if (not isinstance(item, Mapping) or set(item) != {"sign", "level", "action"}
                        or item["level"] not in COME_BACK_LEVELS
                        or not all(isinstance(item[k], str) for k in ("sign", "action"))):
                    check.problem(iline, f"{sid}.come_back_if items are {{sign, level "
                                  f"({'|'.join(COME_BACK_LEVELS)}), action}}")
                    ok = False
        for name in _placeholders_used(text):
            if name not in placeholders:
                check.problem(sline, f"{sid}: placeholder {{{name}}} has no default in "
                              "'placeholders'")
                ok = False
        if ok:
            out[str(sid)] = plain(text)
    return PatientInformation(locale=str(locale or ""),
                              placeholders={str(k): str(v) for k, v in placeholders.items()},
                              scenarios=out)


def _placeholders_used(node: Any) -> set[str]:
    if isinstance(node, str):
        return set(_PLACEHOLDER.findall(node))
    if isinstance(node, Mapping):
        return set().union(*(_placeholders_used(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_placeholders_used(v) for v in node)) if node else set()
    return set()


# --- scenarios ---------------------------------------------------------------------------------


def _codes(node: Any, line: int | None, vocabulary: Vocabulary, check: _Check,
           what: str) -> list[str]:
    if not isinstance(node, list) or not node:
        check.problem(line, f"{what} must be a non-empty list of procedure codes")
        return []
    out = []
    for i, code in enumerate(node):
        if code not in vocabulary.procedures:
            check.problem(line_of(node, i, line), f"unknown procedure {code!r}")
            continue
        out.append(code)
    return out


def _compile_plan(node: Any, line: int | None, compiler: ConditionCompiler,
                  vocabulary: Vocabulary, check: _Check) -> list[PlanStep]:
    if node is None:
        return []
    if not isinstance(node, list):
        check.problem(line, "'plan' is a list of steps (each a list of procedure codes, or "
                      "{when, procedures})")
        return []
    steps = []
    for i, step in enumerate(node):
        step_line = line_of(node, i, line)
        if isinstance(step, list):
            steps.append(PlanStep(codes=tuple(_codes(step, step_line, vocabulary, check,
                                                     "a plan step"))))
        elif isinstance(step, Mapping) and set(step) == {"when", "procedures"}:
            when = compiler.compile(step["when"], line_of(step, "when", step_line))
            codes = _codes(step["procedures"], step_line, vocabulary, check, "a plan step")
            if when is not None:
                steps.append(PlanStep(codes=tuple(codes), when=when, raw_when=step["when"]))
        else:
            check.problem(step_line, "a plan step is a list of procedure codes or "
                          "{when, procedures}")
    return steps


def _compile_mba(node: Any, line: int | None, vocabulary: Vocabulary,
                 check: _Check) -> tuple[list[str], list[str]]:
    if node is None:
        return [], []
    if not isinstance(node, list):
        check.problem(line, "'may_be_appropriate' is a list of codes or {procedure, recommend}")
        return [], []
    codes, starred = [], []
    for i, item in enumerate(node):
        item_line = line_of(node, i, line)
        if isinstance(item, Mapping) and set(item) == {"procedure", "recommend"} and \
                isinstance(item["recommend"], bool):
            code = item["procedure"]
            star = item["recommend"]
        elif isinstance(item, str):
            code, star = item, False
        else:
            check.problem(item_line, "an MBA item is a code or {procedure, recommend: true}")
            continue
        if code not in vocabulary.procedures:
            check.problem(item_line, f"unknown procedure {code!r}")
            continue
        codes.append(code)
        if star:
            starred.append(code)
    return codes, starred


def _compile_urgency(node: Mapping[str, Any], line: int | None, compiler: ConditionCompiler,
                     check: _Check) -> tuple[list[UrgencyCase], str]:
    value = node.get("urgency")
    uline = line_of(node, "urgency", line)
    if isinstance(value, str):
        if value not in URGENCIES:
            check.problem(uline, f"urgency must be one of {', '.join(URGENCIES)}")
        return [], value
    if not isinstance(value, Mapping) or set(value) != {"cases", "else"} or not isinstance(
            value["cases"], list):
        check.problem(uline, "urgency is a level or {cases: [{level, when}], else: level}")
        return [], "none"
    cases = []
    for i, case in enumerate(value["cases"]):
        cline = line_of(value["cases"], i, uline)
        if not isinstance(case, Mapping) or set(case) != {"level", "when"} or \
                case["level"] not in URGENCIES:
            check.problem(cline, "an urgency case is {level, when}")
            continue
        compiled = compiler.compile(case["when"], line_of(case, "when", cline))
        if compiled is not None:
            cases.append(UrgencyCase(level=case["level"], when=compiled, raw_when=case["when"]))
    if value["else"] not in URGENCIES:
        check.problem(line_of(value, "else", uline), "urgency must be a level")
    return cases, str(value["else"])


def _test_request(node: Mapping[str, Any], region: str) -> dict[str, Any] | None:
    patient = dict(node.get("patient") or {})
    if "age" in node:
        patient["age"] = node["age"]
    if not isinstance(patient.get("age"), int) or "symptom_duration_weeks" not in node:
        return None
    request: dict[str, Any] = {
        "patient": patient,
        "region": region,
        "symptom_duration_weeks": node["symptom_duration_weeks"],
        "conservative_care_weeks": node.get("conservative_care_weeks", 0),
        "intervention_candidate": bool(node.get("intervention_candidate", False)),
        "findings": list(node.get("findings") or []),
        "contraindications": list(node.get("contraindications") or []),
    }
    for key in ("requested_procedure", "egfr", "days_since_injury"):
        if node.get(key) is not None:
            request[key] = node[key]
    return request


def _compile_tests(node: Mapping[str, Any], sid: str, line: int | None, region: str,
                   vocabulary: Vocabulary, check: _Check) -> list[EmbeddedTest]:
    value = node.get("tests")
    tline = line_of(node, "tests", line)
    if not isinstance(value, list) or not value:
        check.problem(tline, f"scenario {sid}: 'tests' must list test cases")
        return []
    tests = []
    for i, case in enumerate(value):
        cline = line_of(value, i, tline)
        if not isinstance(case, Mapping):
            check.problem(cline, "a test case is a mapping with name, request, expect")
            continue
        check.keys(case, _TEST_KEYS, "a test case")
        name = check.text(case, "name", "a test case")
        request, expect = case.get("request"), case.get("expect")
        if not isinstance(request, Mapping) or not isinstance(expect, Mapping) or not expect:
            check.problem(cline, "a test case needs 'request' and 'expect' mappings")
            continue
        check.keys(request, _REQUEST_KEYS, "a test request")
        check.keys(expect, _EXPECT_KEYS, "a test expectation")
        built = _test_request(request, region)
        if built is None:
            check.problem(cline, "a test request needs 'age' and 'symptom_duration_weeks'")
            continue
        for code in built["findings"]:
            if code not in vocabulary.findings:
                check.problem(cline, f"unknown finding {code!r}")
        for code in built["contraindications"]:
            if code not in vocabulary.contraindications:
                check.problem(cline, f"unknown contraindication {code!r}")
        proc = built.get("requested_procedure")
        if proc is not None and (proc not in vocabulary.procedures
                                 or vocabulary.procedures[proc].region != region):
            check.problem(cline, f"requested_procedure must be a {region} procedure")
        tests.append(EmbeddedTest(file=check.file, line=cline, scenario_id=sid, name=name,
                                  request=built, expect=plain(expect)))
    return tests


def _expand(refs: int, fact_refs: Mapping[int, int]) -> int:
    out = refs
    for bit, inner in fact_refs.items():
        if refs & bit:
            out |= inner
    return out


def compile_region(
    doc: Mapping[str, Any],
    display: str,
    region: str,
    table: AtomTable,
    fact_steps: list[tuple[str, int, Compiled]],
    vocabulary: Vocabulary,
    problems: list[RuleProblem],
) -> tuple[RegionRulesV2 | None, list[EmbeddedTest]]:
    """Compile one language-2 region file (already parsed)."""
    check = _Check(display, problems)
    before = len(problems)
    check.keys(doc, {"region", "scenarios"}, "a region file")
    if doc.get("region") != region:
        check.problem(line_of(doc, "region", 1), f"'region' must be {region!r} for this file")
    nodes = doc.get("scenarios")
    if not isinstance(nodes, list) or not nodes:
        check.problem(line_of(doc, "scenarios", 1), "'scenarios' must be a non-empty list")
        return None, []
    known = {name for name, _, _ in fact_steps}
    compiler = ConditionCompiler(table, display, problems, known, vocabulary.contraindications)
    fact_refs: dict[int, int] = {}
    fact_findings: dict[str, int] = {}
    finding_mask = (1 << len(table.finding_bits)) - 1
    for name, bit, compiled in fact_steps:
        fact_refs[bit] = _expand(compiled.refs, fact_refs)
        fact_findings[name] = compiled.refs & finding_mask
    scenarios: list[ScenarioV2] = []
    tests: list[EmbeddedTest] = []
    seen: set[str] = set()
    default_bands: dict[str, int] = {}
    relevant = 0
    for index, node in enumerate(nodes):
        line = line_of(nodes, index)
        if not isinstance(node, Mapping):
            check.problem(line, "a scenario must be a mapping")
            continue
        check.keys(node, _SCENARIO_KEYS, "a scenario")
        sid = check.text(node, "id", "a scenario")
        if sid and not sid.startswith(f"{region}."):
            check.problem(line_of(node, "id", line), f"scenario id must start with '{region}.'")
        if sid in seen:
            check.problem(line_of(node, "id", line), f"duplicate scenario id {sid!r}")
        seen.add(sid)
        band = node.get("age")
        if band not in AGE_BANDS:
            check.problem(line_of(node, "age", line),
                          f"'age' must be one of {', '.join(AGE_BANDS)}")
            band = "adult"
        op, years = AGE_BANDS[band]
        band_fn = compiler.compile({"age": {op: years}}, line)
        assert band_fn is not None
        raw_when = node.get("when")
        is_default = isinstance(raw_when, Mapping) and dict(raw_when) == {"otherwise": True}
        when = None
        if is_default:
            if band in default_bands:
                check.problem(line_of(node, "when", line),
                              f"a second 'otherwise' scenario for age band {band}")
            default_bands[band] = len(scenarios)
        else:
            when = compiler.compile(raw_when, line_of(node, "when", line))
        cases, otherwise = _compile_urgency(node, line, compiler, check)
        plan = _compile_plan(node.get("plan"), line_of(node, "plan", line), compiler,
                             vocabulary, check)
        mba, starred = _compile_mba(node.get("may_be_appropriate"),
                                    line_of(node, "may_be_appropriate", line), vocabulary, check)
        listed = [c for s in plan for c in s.codes]
        for code in {c for c in mba if c in listed}:
            check.problem(line, f"scenario {sid}: {code!r} is both in the plan and MBA")
        not_covered = node.get("not_covered", False)
        if not isinstance(not_covered, bool):
            check.problem(line_of(node, "not_covered", line), "'not_covered' is true or false")
            not_covered = False
        notes = compile_notes(node.get("notes"), line_of(node, "notes", line), compiler, check,
                              vocabulary, with_regions=False)
        sources = compile_sources(node.get("sources"), line_of(node, "sources", line), check,
                                  f"scenario {sid}")
        tests.extend(_compile_tests(node, sid, line, region, vocabulary, check))
        refs = when.refs if when is not None else 0
        facts: frozenset[str] = when.facts if when is not None else frozenset()
        for part in [*(c.when for c in cases), *(s.when for s in plan if s.when)]:
            refs |= part.refs
            facts |= part.facts
        relevant |= _expand(refs, fact_refs)
        scenarios.append(ScenarioV2(
            id=sid, title=check.text(node, "title", f"scenario {sid}"), region=region,
            index=len(scenarios), band=band, band_fn=band_fn, is_default=is_default,
            when=when, raw_when=raw_when, urgency_cases=tuple(cases), urgency_else=otherwise,
            plan=tuple(plan), mba=tuple(mba), recommend=tuple(starred),
            not_covered=not_covered,
            rationale=check.text(node, "rationale", f"scenario {sid}"), notes=tuple(notes),
            sources=tuple(sources), facts=facts, line=line,
        ))
    if set(default_bands) != {"adult", "child"}:
        check.problem(line_of(doc, "scenarios", 1), "the region needs one 'otherwise' scenario "
                      "for age band adult and one for age band child")
    ids = {s.id for s in scenarios}
    for test in tests:
        for key in ("scenario", "matches", "not_scenario"):
            target = test.expect.get(key)
            if target is not None and target not in ids:
                check.problem(test.line, f"test expects unknown scenario {target!r}")
    for scenario in scenarios:
        own = [t for t in tests if t.scenario_id == scenario.id]
        if not any(scenario.id in (t.expect.get("scenario"), t.expect.get("matches"))
                   for t in own):
            check.problem(scenario.line, f"scenario {scenario.id} needs a test where it governs")
        if not any(t.expect.get("not_scenario") == scenario.id for t in own):
            check.problem(scenario.line, f"scenario {scenario.id} needs a near-miss test "
                          "(expect: {not_scenario: <its id>})")
    if len(problems) > before:
        return None, tests
    match_steps = []
    for s in scenarios:
        if s.is_default or s.when is None:
            continue
        band_test, when_test = s.band_fn.fn, s.when.fn
        match_steps.append((s.index, _both(band_test, when_test)))
    rules = RegionRulesV2(
        region=region,
        file=display,
        fact_steps=tuple((bit, c.fn) for _, bit, c in fact_steps),
        scenarios=tuple(scenarios),
        match_steps=tuple(match_steps),
        defaults=tuple((i, scenarios[i].band_fn.fn) for i in sorted(default_bands.values())),
        relevant_findings=relevant & finding_mask,
        fact_findings=fact_findings,
    )
    return rules, tests


def _both(first: Callable[[int], bool], second: Callable[[int], bool]) -> Callable[[int], bool]:
    return lambda m: first(m) and second(m)
