"""Loading rule files: schema validation with file:line problems, and compilation of facts,
scenarios, safety modifiers and embedded tests into the structures of :mod:`rulemodel`.
Pure module."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from referral_api.clinical import compiler_v2
from referral_api.clinical.conditions import (
    AtomTable,
    Compiled,
    ConditionCompiler,
    LineDict,
    RuleProblem,
    line_of,
    load_yaml,
    plain,
)
from referral_api.clinical.lock import (
    compute_sha256,
    file_hashes,
    version_dir,
    version_files,
    vocabulary_path,
)
from referral_api.clinical.model import (
    RULE_SAFETY_STATUSES,
    RULESET_FILE,
    SAFETY_EFFECTS,
    STATUSES,
    VERSION_RE,
    VOCABULARY_FILE,
    EmbeddedTest,
    FactDefinition,
    LanguageTwo,
    ProcedureItem,
    RegionRules,
    RuleError,
    RuleSet,
    SafetyModifier,
    Scenario,
    UrgencyCase,
    version_key,
)
from referral_api.clinical.vocabulary import Vocabulary, VocabularyError, load_vocabulary
from referral_api.enums import REGIONS, URGENCIES

# --- loading and compilation ------------------------------------------------------------------

_RULESET_KEYS = {
    "id", "version", "status", "effective_from", "title", "citation", "url", "regions",
    "facts", "safety",
}
#: Added by rule language 2 (see compiler_v2).
_RULESET_KEYS_V2 = _RULESET_KEYS | {"language", "notes", "assumptions", "patient_information"}
_FACT_KEYS = {"label", "role", "when", "regions", "region_overrides"}
_SCENARIO_KEYS = {
    "id", "title", "when", "urgency", "usually_appropriate", "may_be_appropriate", "rationale",
    "sources", "tests",
}
_SAFETY_KEYS = {
    "id", "trigger", "requires_contrast", "status", "effect", "alert_code", "message",
    "messages", "ionising_message", "sources",
}
_TEST_KEYS = {"name", "request", "expect"}
_EXPECT_KEYS = {
    "scenario", "matches", "not_scenario", "urgency", "appropriateness", "recommended",
    "also_matched", "safety_status",
}
_REQUEST_KEYS = {
    "age", "patient", "requested_procedure", "symptom_duration_weeks",
    "conservative_care_weeks", "intervention_candidate", "findings", "contraindications", "egfr",
}


class _FileChecker:
    """Helpers that record problems located in one file."""

    def __init__(self, file: str, problems: list[RuleProblem]) -> None:
        self.file = file
        self.problems = problems

    def problem(self, line: int | None, message: str) -> None:
        self.problems.append(RuleProblem(self.file, line, message))

    def unknown_keys(self, node: Mapping[str, Any], allowed: set[str], what: str) -> None:
        for key in node:
            if key not in allowed:
                self.problem(
                    line_of(node, key),
                    f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})",
                )

    def text(self, node: Mapping[str, Any], key: str, what: str) -> str:
        value = node.get(key)
        if not isinstance(value, str) or not value.strip():
            self.problem(line_of(node, key, line_of(node)), f"{what} needs '{key}' (text)")
            return ""
        return value.strip()

    def strings(self, node: Mapping[str, Any], key: str, what: str, *, empty: bool) -> list[str]:
        value = node.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(
                line_of(node, key, line_of(node)), f"{what}: '{key}' must be a list of text"
            )
            return []
        if not empty and not value:
            self.problem(line_of(node, key, line_of(node)), f"{what}: '{key}' must not be empty")
        return list(value)


def _load_doc(path: Path, problems: list[RuleProblem], display: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(RuleProblem(display, None, f"cannot be read: {exc}"))
        return None
    doc, found = load_yaml(text, display)
    problems.extend(found)
    if not found and not isinstance(doc, LineDict):
        problems.append(RuleProblem(display, 1, "the file must hold a mapping"))
        return None
    return doc


def _compile_facts(
    doc: Mapping[str, Any],
    table: AtomTable,
    check: _FileChecker,
    contraindications: Any = (),
) -> tuple[list[FactDefinition], dict[str, list[tuple[str, int, Compiled]]]]:
    """Facts in definition order; per region the (name, bit, compiled) steps."""
    facts_node = doc.get("facts")
    definitions: list[FactDefinition] = []
    steps: dict[str, list[tuple[str, int, Compiled]]] = {r: [] for r in REGIONS}
    if not isinstance(facts_node, Mapping):
        check.problem(line_of(doc, "facts", 1), "'facts' must be a mapping of fact name to fact")
        return definitions, steps
    known: dict[str, set[str]] = {r: set() for r in REGIONS}
    for name, node in facts_node.items():
        line = line_of(facts_node, name)
        if not isinstance(name, str) or not re.match(r"^[a-z][a-z0-9_]*$", name):
            check.problem(line, f"fact name {name!r} must be lower_snake_case")
            continue
        if not isinstance(node, Mapping):
            check.problem(line, f"fact {name!r} must be a mapping with 'label' and 'when'")
            continue
        check.unknown_keys(node, _FACT_KEYS, f"fact {name!r}")
        label = check.text(node, "label", f"fact {name!r}")
        role = node.get("role")
        if role is not None and (not isinstance(role, str) or not role.strip()):
            check.problem(line_of(node, "role", line), f"fact {name!r}: 'role' must be text")
            role = None
        regions = node.get("regions", list(REGIONS))
        if not isinstance(regions, list) or not regions or any(r not in REGIONS for r in regions):
            check.problem(
                line_of(node, "regions", line),
                f"fact {name!r}: 'regions' must list some of {', '.join(REGIONS)}",
            )
            regions = list(REGIONS)
        overrides = node.get("region_overrides") or {}
        if not isinstance(overrides, Mapping) or any(r not in regions for r in overrides):
            check.problem(
                line_of(node, "region_overrides", line),
                f"fact {name!r}: 'region_overrides' maps regions of the fact to conditions",
            )
            overrides = {}
        if "when" not in node:
            check.problem(line, f"fact {name!r} needs 'when'")
            continue
        bit = table.fact_bit(name)
        for region in regions:
            raw = overrides.get(region, node["when"])
            raw_line = line_of(overrides, region) if region in overrides else line_of(node, "when")
            compiler = ConditionCompiler(table, check.file, check.problems, known[region],
                                         contraindications)
            compiled = compiler.compile(raw, raw_line)
            if compiled is not None:
                steps[region].append((name, bit, compiled))
                known[region].add(name)
        definitions.append(
            FactDefinition(
                name=name,
                label=label,
                role=role.strip() if isinstance(role, str) else None,
                raw_when=node["when"],
                regions=tuple(regions),
                overrides=dict(overrides),
            )
        )
    return definitions, steps


def _compile_safety(
    doc: Mapping[str, Any], vocabulary: Vocabulary, check: _FileChecker
) -> list[SafetyModifier]:
    node = doc.get("safety")
    out: list[SafetyModifier] = []
    if not isinstance(node, list):
        check.problem(line_of(doc, "safety", 1), "'safety' must be a list of modifiers")
        return out
    for i, row in enumerate(node):
        line = line_of(node, i)
        if not isinstance(row, Mapping):
            check.problem(line, "a safety modifier must be a mapping")
            continue
        check.unknown_keys(row, _SAFETY_KEYS, "safety modifier")
        mod_id = check.text(row, "id", "safety modifier")
        trigger = row.get("trigger")
        contraindications: list[str] = []
        egfr_below = None
        if not isinstance(trigger, Mapping):
            check.problem(line_of(row, "trigger", line), "safety modifier needs 'trigger'")
        else:
            for key in trigger:
                if key not in ("contraindications", "egfr_below"):
                    check.problem(line_of(trigger, key), f"unknown trigger {key!r}")
            contraindications = check.strings(trigger, "contraindications", "trigger", empty=True)
            for code in contraindications:
                if code not in vocabulary.contraindications:
                    check.problem(
                        line_of(trigger, "contraindications"),
                        f"unknown contraindication {code!r}",
                    )
            egfr_below = trigger.get("egfr_below")
            if egfr_below is not None and (
                isinstance(egfr_below, bool) or not isinstance(egfr_below, int | float)
            ):
                check.problem(line_of(trigger, "egfr_below"), "'egfr_below' must be a number")
                egfr_below = None
        status = row.get("status")
        if status not in RULE_SAFETY_STATUSES:
            check.problem(line_of(row, "status", line),
                          f"status must be one of {RULE_SAFETY_STATUSES}")
        effect = row.get("effect")
        if effect not in SAFETY_EFFECTS:
            check.problem(line_of(row, "effect", line), f"effect must be one of {SAFETY_EFFECTS}")
        requires_contrast = row.get("requires_contrast", False)
        if not isinstance(requires_contrast, bool):
            check.problem(line_of(row, "requires_contrast", line), "must be true or false")
            requires_contrast = False
        alert_code = row.get("alert_code")
        if alert_code is not None and not isinstance(alert_code, str):
            check.problem(line_of(row, "alert_code", line), "'alert_code' must be text")
            alert_code = None
        messages = row.get("messages") or {}
        if not isinstance(messages, Mapping) or any(
            k not in contraindications or not isinstance(v, str) for k, v in messages.items()
        ):
            check.problem(
                line_of(row, "messages", line),
                "'messages' maps this modifier's contraindications to alert text",
            )
            messages = {}
        ionising = row.get("ionising_message")
        if ionising is not None and not isinstance(ionising, str):
            check.problem(line_of(row, "ionising_message", line), "must be text")
            ionising = None
        out.append(
            SafetyModifier(
                id=mod_id,
                contraindications=tuple(contraindications),
                egfr_below=float(egfr_below) if egfr_below is not None else None,
                requires_contrast=requires_contrast,
                status=str(status),
                effect=str(effect),
                alert_code=alert_code,
                messages=dict(messages),
                message=check.text(row, "message", "safety modifier"),
                ionising_message=ionising,
                sources=tuple(check.strings(row, "sources", "safety modifier", empty=False)),
            )
        )
    return out


def _compile_items(
    node: Any,
    key: str,
    scenario_line: int | None,
    region_table: tuple[AtomTable, set[str]],
    vocabulary: Vocabulary,
    check: _FileChecker,
) -> list[ProcedureItem]:
    table, known = region_table
    value = node.get(key)
    line = line_of(node, key, scenario_line)
    if not isinstance(value, list):
        check.problem(line, f"'{key}' must be a list of procedure codes ([] when none)")
        return []
    items: list[ProcedureItem] = []
    for i, item in enumerate(value):
        item_line = line_of(value, i, line)
        if isinstance(item, str):
            code, when, raw = item, None, None
        elif isinstance(item, Mapping) and set(item) == {"procedure", "when"}:
            code, raw = item["procedure"], item["when"]
            when = ConditionCompiler(table, check.file, check.problems, known).compile(
                raw, line_of(item, "when", item_line)
            )
            if when is None:
                continue
        else:
            check.problem(item_line, "a list item is a procedure code or {procedure, when}")
            continue
        if code not in vocabulary.procedures:
            check.problem(item_line, f"unknown procedure {code!r} (not in vocabulary.yaml)")
            continue
        items.append(ProcedureItem(code=code, when=when, raw_when=raw))
    return items


def _compile_urgency(
    node: Mapping[str, Any],
    line: int | None,
    region_table: tuple[AtomTable, set[str]],
    check: _FileChecker,
) -> tuple[list[UrgencyCase], str]:
    table, known = region_table
    value = node.get("urgency")
    uline = line_of(node, "urgency", line)
    if isinstance(value, str):
        if value not in URGENCIES:
            check.problem(uline, f"urgency must be one of {', '.join(URGENCIES)}")
        return [], value
    if not isinstance(value, Mapping) or set(value) != {"cases", "else"}:
        check.problem(uline, "urgency is a level or {cases: [{level, when}], else: level}")
        return [], "none"
    cases: list[UrgencyCase] = []
    raw_cases = value["cases"]
    if not isinstance(raw_cases, list) or not raw_cases:
        check.problem(line_of(value, "cases", uline), "'cases' must be a non-empty list")
        raw_cases = []
    for i, case in enumerate(raw_cases):
        cline = line_of(raw_cases, i, uline)
        if not isinstance(case, Mapping) or set(case) != {"level", "when"}:
            check.problem(cline, "an urgency case is {level, when}")
            continue
        if case["level"] not in URGENCIES:
            check.problem(line_of(case, "level", cline), f"urgency must be one of {URGENCIES}")
            continue
        compiled = ConditionCompiler(table, check.file, check.problems, known).compile(
            case["when"], line_of(case, "when", cline)
        )
        if compiled is not None:
            cases.append(UrgencyCase(level=case["level"], when=compiled, raw_when=case["when"]))
    otherwise = value["else"]
    if otherwise not in URGENCIES:
        check.problem(line_of(value, "else", uline), f"urgency must be one of {URGENCIES}")
    return cases, str(otherwise)


def _compile_tests(
    node: Mapping[str, Any],
    scenario_id: str,
    line: int | None,
    region: str,
    vocabulary: Vocabulary,
    check: _FileChecker,
) -> list[EmbeddedTest]:
    value = node.get("tests")
    tline = line_of(node, "tests", line)
    if not isinstance(value, list) or not value:
        check.problem(tline, f"scenario {scenario_id}: 'tests' must list test cases")
        return []
    tests: list[EmbeddedTest] = []
    for i, case in enumerate(value):
        cline = line_of(value, i, tline)
        if not isinstance(case, Mapping):
            check.problem(cline, "a test case is a mapping with name, request, expect")
            continue
        check.unknown_keys(case, _TEST_KEYS, "test case")
        name = check.text(case, "name", "test case")
        request, expect = case.get("request"), case.get("expect")
        if not isinstance(request, Mapping) or not isinstance(expect, Mapping) or not expect:
            check.problem(cline, "a test case needs 'request' and 'expect' mappings")
            continue
        check.unknown_keys(request, _REQUEST_KEYS, "test request")
        check.unknown_keys(expect, _EXPECT_KEYS, "test expectation")
        built = _test_request(request, region)
        if built is None:
            check.problem(line_of(case, "request", cline), "test request needs 'age' and "
                          "'symptom_duration_weeks'")
            continue
        for code in built["findings"]:
            if code not in vocabulary.findings:
                check.problem(line_of(request, "findings", cline), f"unknown finding {code!r}")
        for code in built["contraindications"]:
            if code not in vocabulary.contraindications:
                check.problem(line_of(request, "contraindications", cline),
                              f"unknown contraindication {code!r}")
        proc = built.get("requested_procedure")
        if proc is not None and (
            proc not in vocabulary.procedures or vocabulary.procedures[proc].region != region
        ):
            check.problem(line_of(request, "requested_procedure", cline),
                          f"requested_procedure must be a {region} procedure")
        tests.append(
            EmbeddedTest(
                file=check.file,
                line=cline,
                scenario_id=scenario_id,
                name=name,
                request=built,
                expect=plain(expect),
            )
        )
    return tests


def _test_request(node: Mapping[str, Any], region: str) -> dict[str, Any] | None:
    """A complete engine request from the short form used in rule-file tests."""
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
    if node.get("requested_procedure"):
        request["requested_procedure"] = node["requested_procedure"]
    if node.get("egfr") is not None:
        request["egfr"] = node["egfr"]
    return request


def _expand_refs(refs: int, fact_refs: Mapping[int, int]) -> int:
    """Replace fact bits by the bits those facts read (already expanded)."""
    out = refs
    for bit, inner in fact_refs.items():
        if refs & bit:
            out |= inner
    return out


def _compile_region(
    path: Path,
    display: str,
    region: str,
    table: AtomTable,
    fact_steps: list[tuple[str, int, Compiled]],
    vocabulary: Vocabulary,
    problems: list[RuleProblem],
) -> tuple[RegionRules | None, list[EmbeddedTest]]:
    doc = _load_doc(path, problems, display)
    if doc is None:
        return None, []
    check = _FileChecker(display, problems)
    check.unknown_keys(doc, {"region", "scenarios"}, "a region file")
    if doc.get("region") != region:
        check.problem(line_of(doc, "region", 1), f"'region' must be {region!r} for this file")
    scenarios_node = doc.get("scenarios")
    if not isinstance(scenarios_node, list) or not scenarios_node:
        check.problem(line_of(doc, "scenarios", 1), "'scenarios' must be a non-empty list")
        return None, []
    known = {name for name, _, _ in fact_steps}
    region_table = (table, known)
    fact_refs: dict[int, int] = {}
    fact_findings: dict[str, int] = {}
    finding_mask = (1 << len(table.finding_bits)) - 1
    for name, bit, compiled in fact_steps:
        fact_refs[bit] = _expand_refs(compiled.refs, fact_refs)
        # The findings a fact reads directly (for reasons such as "X is present: a red flag").
        fact_findings[name] = compiled.refs & finding_mask
    scenarios: list[Scenario] = []
    tests: list[EmbeddedTest] = []
    seen: set[str] = set()
    default_index = -1
    relevant = 0
    for index, node in enumerate(scenarios_node):
        line = line_of(scenarios_node, index)
        if not isinstance(node, Mapping):
            check.problem(line, "a scenario must be a mapping")
            continue
        check.unknown_keys(node, _SCENARIO_KEYS, "a scenario")
        sid = check.text(node, "id", "a scenario")
        if sid and not sid.startswith(f"{region}."):
            check.problem(line_of(node, "id", line), f"scenario id must start with '{region}.'")
        if sid in seen:
            check.problem(line_of(node, "id", line), f"duplicate scenario id {sid!r}")
        seen.add(sid)
        raw_when = node.get("when")
        is_default = isinstance(raw_when, Mapping) and dict(raw_when) == {"otherwise": True}
        when: Compiled | None = None
        if is_default:
            if default_index >= 0:
                check.problem(line_of(node, "when", line), "only one scenario may be 'otherwise'")
            if index != len(scenarios_node) - 1:
                check.problem(line_of(node, "when", line), "the 'otherwise' scenario comes last")
            default_index = len(scenarios)
        else:
            when = ConditionCompiler(table, display, problems, known).compile(
                raw_when, line_of(node, "when", line)
            )
        cases, otherwise = _compile_urgency(node, line, region_table, check)
        ua = _compile_items(node, "usually_appropriate", line, region_table, vocabulary, check)
        mba = _compile_items(node, "may_be_appropriate", line, region_table, vocabulary, check)
        codes = [i.code for i in ua] + [i.code for i in mba]
        for code in {c for c in codes if codes.count(c) > 1}:
            check.problem(line, f"scenario {sid}: procedure {code!r} is listed more than once")
        rationale = check.text(node, "rationale", f"scenario {sid}")
        title = check.text(node, "title", f"scenario {sid}")
        sources = check.strings(node, "sources", f"scenario {sid}", empty=False)
        tests.extend(_compile_tests(node, sid, line, region, vocabulary, check))
        refs = when.refs if when is not None else 0
        facts: frozenset[str] = when.facts if when is not None else frozenset()
        for case in cases:
            refs |= case.when.refs
            facts |= case.when.facts
        for item in (*ua, *mba):
            if item.when is not None:
                refs |= item.when.refs
                facts |= item.when.facts
        relevant |= _expand_refs(refs, fact_refs)
        conditional = any(i.when is not None for i in (*ua, *mba))
        scenarios.append(
            Scenario(
                id=sid,
                title=title,
                region=region,
                index=len(scenarios),
                is_default=is_default,
                when=when,
                raw_when=raw_when,
                urgency_cases=tuple(cases),
                urgency_else=otherwise,
                usually_appropriate=tuple(ua),
                may_be_appropriate=tuple(mba),
                rationale=rationale,
                sources=tuple(sources),
                facts=facts,
                line=line,
                static_lists=None
                if conditional
                else (tuple(i.code for i in ua), tuple(i.code for i in mba)),
            )
        )
    if default_index < 0:
        check.problem(line_of(doc, "scenarios", 1), "the region needs a last scenario "
                      "with 'when: {otherwise: true}'")
    ids = {s.id for s in scenarios}
    for test in tests:
        for key in ("scenario", "matches", "not_scenario"):
            target = test.expect.get(key)
            if target is not None and target not in ids:
                check.problem(test.line, f"test expects unknown scenario {target!r}")
    for scenario in scenarios:
        own = [t for t in tests if t.scenario_id == scenario.id]
        if not any(scenario.id in (t.expect.get("scenario"), t.expect.get("matches")) for t in own):
            check.problem(scenario.line, f"scenario {scenario.id} needs a test where it governs")
        if not any(t.expect.get("not_scenario") == scenario.id for t in own):
            check.problem(scenario.line, f"scenario {scenario.id} needs a near-miss test "
                          "(expect: {not_scenario: <its id>})")
    if problems and any(p.file == display for p in problems):
        return None, tests
    rules = RegionRules(
        region=region,
        file=display,
        fact_steps=tuple((bit, c.fn) for _, bit, c in fact_steps),
        scenarios=tuple(scenarios),
        match_steps=tuple(
            (s.index, s.when.fn) for s in scenarios if not s.is_default and s.when is not None
        ),
        default_index=default_index,
        relevant_findings=relevant & ((1 << len(table.finding_bits)) - 1),
        fact_findings=fact_findings,
    )
    return rules, tests


def load_version(
    rules_dir: Path, ruleset_id: str, version: str, vocabulary: Vocabulary
) -> tuple[RuleSet | None, list[RuleProblem]]:
    """Load, validate and compile one version directory (no lock check).

    ``vocabulary`` is the shared v1 vocabulary; a version directory holding its own
    ``vocabulary.yaml`` is compiled and evaluated with that file instead.
    """
    problems: list[RuleProblem] = []
    vdir = version_dir(rules_dir, ruleset_id, version)
    prefix = f"{ruleset_id}/{version}/"
    if (vdir / VOCABULARY_FILE).is_file():
        try:
            vocabulary = load_vocabulary(vocabulary_path(rules_dir, ruleset_id, version))
        except VocabularyError as exc:
            return None, [RuleProblem(prefix + VOCABULARY_FILE, None, str(exc))]
    doc = _load_doc(vdir / RULESET_FILE, problems, prefix + RULESET_FILE)
    if doc is None:
        return None, problems
    check = _FileChecker(prefix + RULESET_FILE, problems)
    language = doc.get("language", 1)
    if language not in (1, 2):
        check.problem(line_of(doc, "language", 1), "'language' must be 1 or 2")
        language = 1
    check.unknown_keys(doc, _RULESET_KEYS_V2 if language == 2 else _RULESET_KEYS,
                       "ruleset.yaml")
    if doc.get("id") != ruleset_id:
        check.problem(line_of(doc, "id", 1), f"'id' must be {ruleset_id!r} (the directory name)")
    if str(doc.get("version")) != version or not VERSION_RE.match(version):
        check.problem(line_of(doc, "version", 1),
                      f"'version' must be {version!r} (the directory name, as N.N.N)")
    status = doc.get("status")
    if status not in STATUSES:
        check.problem(line_of(doc, "status", 1), f"'status' must be one of {', '.join(STATUSES)}")
    effective = doc.get("effective_from")
    if isinstance(effective, str):
        try:
            effective = date.fromisoformat(effective)
        except ValueError:
            effective = None
    if not isinstance(effective, date) or isinstance(effective, datetime):
        check.problem(line_of(doc, "effective_from", 1), "'effective_from' must be a date "
                      "(YYYY-MM-DD)")
        effective = date.min
    title = check.text(doc, "title", "ruleset.yaml")
    citation = check.text(doc, "citation", "ruleset.yaml")
    url = doc.get("url") or ""
    table = AtomTable(vocabulary.findings)
    fact_defs, fact_steps = _compile_facts(
        doc, table, check, vocabulary.contraindications if language == 2 else ())
    regions_node = doc.get("regions")
    if language == 2:
        return _load_language_two(rules_dir, ruleset_id, version, vocabulary, doc, check,
                                  table, fact_defs, fact_steps, str(status), effective,
                                  title, citation, str(url))
    safety = _compile_safety(doc, vocabulary, check)
    regions: dict[str, RegionRules] = {}
    tests: list[EmbeddedTest] = []
    if not isinstance(regions_node, Mapping) or set(regions_node) != set(REGIONS):
        check.problem(line_of(doc, "regions", 1),
                      f"'regions' must map each of {', '.join(REGIONS)} to its file")
    else:
        for region in REGIONS:
            name = regions_node[region]
            if not isinstance(name, str) or "/" in name or not (vdir / name).is_file():
                check.problem(line_of(regions_node, region), f"no file {name!r} in {vdir.name}/")
                continue
            compiled, region_tests = _compile_region(
                vdir / name, prefix + name, region, table, fact_steps[region], vocabulary,
                problems,
            )
            tests.extend(region_tests)
            if compiled is not None:
                regions[region] = compiled
    if problems:
        return None, problems
    try:
        sha = compute_sha256(rules_dir, ruleset_id, version)
        hashes = file_hashes(rules_dir, ruleset_id, version)
    except RuleError as exc:
        return None, exc.problems
    return (
        RuleSet(
            id=ruleset_id,
            version=version,
            status=str(status),
            effective_from=effective,
            sha256=sha,
            files=tuple(version_files(vdir)),
            published=False,
            title=title,
            citation=citation,
            url=str(url),
            regions=regions,
            facts=tuple(fact_defs),
            safety=tuple(safety),
            tests=tuple(tests),
            table=table,
            request_mask=table.request_mask_builder(),
            file_hashes=hashes,
            vocabulary=vocabulary,
        ),
        [],
    )


def _load_language_two(
    rules_dir: Path, ruleset_id: str, version: str, vocabulary: Vocabulary,
    doc: Mapping[str, Any], check: _FileChecker, table: AtomTable,
    fact_defs: list[FactDefinition], fact_steps: dict[str, list[tuple[str, int, Compiled]]],
    status: str, effective: date, title: str, citation: str, url: str,
) -> tuple[RuleSet | None, list[RuleProblem]]:
    """The rest of :func:`load_version` for a language-2 version (see compiler_v2)."""
    problems = check.problems
    vdir = version_dir(rules_dir, ruleset_id, version)
    prefix = f"{ruleset_id}/{version}/"
    v2check = compiler_v2._Check(check.file, problems)
    all_facts = {name for steps in fact_steps.values() for name, _, _ in steps}
    top = ConditionCompiler(table, check.file, problems, all_facts, vocabulary.contraindications)
    notes = compiler_v2.compile_notes(doc.get("notes"), line_of(doc, "notes", 1), top, v2check,
                                      vocabulary, with_regions=True)
    assumptions = compiler_v2.compile_assumptions(
        doc.get("assumptions"), line_of(doc, "assumptions", 1), top, v2check)
    safety = compiler_v2.compile_safety(doc.get("safety"), line_of(doc, "safety", 1),
                                        vocabulary, v2check)
    patient = None
    patient_name = doc.get("patient_information")
    if patient_name is not None:
        if not isinstance(patient_name, str) or "/" in patient_name or not (
                vdir / patient_name).is_file():
            check.problem(line_of(doc, "patient_information", 1),
                          f"no file {patient_name!r} in {vdir.name}/")
        else:
            patient = compiler_v2.load_patient_information(
                vdir / patient_name, prefix + patient_name, problems)
    regions_node = doc.get("regions")
    regions: dict[str, Any] = {}
    tests: list[EmbeddedTest] = []
    if not isinstance(regions_node, Mapping) or set(regions_node) != set(REGIONS):
        check.problem(line_of(doc, "regions", 1),
                      f"'regions' must map each of {', '.join(REGIONS)} to its file")
    else:
        for region in REGIONS:
            name = regions_node[region]
            if not isinstance(name, str) or "/" in name or not (vdir / name).is_file():
                check.problem(line_of(regions_node, region), f"no file {name!r} in {vdir.name}/")
                continue
            region_doc = _load_doc(vdir / name, problems, prefix + name)
            if region_doc is None:
                continue
            compiled, region_tests = compiler_v2.compile_region(
                region_doc, prefix + name, region, table, fact_steps[region], vocabulary,
                problems)
            tests.extend(region_tests)
            if compiled is not None:
                regions[region] = compiled
    if patient is not None and len(regions) == len(REGIONS):
        ids = [s.id for r in regions.values() for s in r.scenarios]
        missing = [i for i in ids if i not in patient.scenarios]
        unknown = [i for i in patient.scenarios if i not in ids]
        if missing or unknown:
            problems.append(RuleProblem(
                prefix + str(patient_name), None,
                f"patient information must cover exactly the version's scenarios (missing: "
                f"{', '.join(missing) or '-'}; unknown: {', '.join(unknown) or '-'})"))
    if problems:
        return None, problems
    try:
        sha = compute_sha256(rules_dir, ruleset_id, version)
        hashes = file_hashes(rules_dir, ruleset_id, version)
    except RuleError as exc:
        return None, exc.problems
    return (
        RuleSet(
            id=ruleset_id, version=version, status=status, effective_from=effective,
            sha256=sha, files=tuple(version_files(vdir)), published=False, title=title,
            citation=citation, url=url, regions=regions, facts=tuple(fact_defs), safety=(),
            tests=tuple(tests), table=table, request_mask=table.request_mask_builder(),
            file_hashes=hashes, vocabulary=vocabulary, language=2,
            v2=LanguageTwo(notes=tuple(notes), assumptions=tuple(assumptions),
                           safety=tuple(safety), patient_information=patient),
        ),
        [],
    )


def discover_versions(rules_dir: Path) -> list[tuple[str, str]]:
    """(ruleset id, version) of every directory holding a ruleset.yaml, sorted."""
    found = []
    for path in sorted(Path(rules_dir).glob(f"*/*/{RULESET_FILE}")):
        found.append((path.parent.parent.name, path.parent.name))
    return sorted(found, key=lambda p: (p[0], version_key(p[1])))


def load_vocabulary_checked(rules_dir: Path) -> tuple[Vocabulary | None, list[RuleProblem]]:
    """The vocabulary, or the problem that prevents loading it."""
    try:
        return load_vocabulary(Path(rules_dir) / VOCABULARY_FILE), []
    except VocabularyError as exc:
        return None, [RuleProblem(VOCABULARY_FILE, None, str(exc))]


