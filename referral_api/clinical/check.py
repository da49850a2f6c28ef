"""`referral-api rules check`: validate every rule file, run embedded tests, verify the lock.

Pure module: returns a CheckReport; the CLI prints `report.lines()` and exits non-zero unless
`report.ok`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from referral_api.clinical.compiler import discover_versions, load_version, load_vocabulary_checked
from referral_api.clinical.conditions import RuleProblem
from referral_api.clinical.engine import evaluate
from referral_api.clinical.lock import read_lock, verify_against_lock
from referral_api.clinical.model import RULESET_FILE, RuleError, RuleSet
from referral_api.clinical.vocabulary import Vocabulary


@dataclass
class CheckReport:
    """Outcome of a rules check: problems (file:line) and what was checked."""

    problems: list[RuleProblem] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    tests_run: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.problems

    def lines(self) -> list[str]:
        """Printable lines: one per problem, then a summary."""
        out = [f"ERROR {p}" for p in self.problems]
        out.extend(self.checked)
        verdict = "OK" if self.ok else f"FAILED ({len(self.problems)} problem(s))"
        out.append(f"rules check: {verdict}; {self.tests_run} embedded test(s) run")
        return out


def _mismatch(expect: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """Human-readable differences between a test's expectation and the engine's answer."""
    errors: list[str] = []
    governing = result["scenario"]["id"]
    matched = [governing, *result["also_matched"]]
    if "scenario" in expect and expect["scenario"] != governing:
        errors.append(f"expected scenario {expect['scenario']}, got {governing}")
    if "matches" in expect and expect["matches"] not in matched:
        errors.append(f"expected {expect['matches']} to match; matched {', '.join(matched)}")
    if "not_scenario" in expect and expect["not_scenario"] == governing:
        errors.append(f"expected {governing} not to govern (near miss), but it does")
    for key in ("urgency", "appropriateness"):
        if key in expect and expect[key] != result[key]:
            errors.append(f"expected {key} {expect[key]}, got {result[key]}")
    if "recommended" in expect:
        got = [p["code"] for p in result["recommended_procedures"]]
        if list(expect["recommended"]) != got:
            errors.append(f"expected recommended {expect['recommended']}, got {got}")
    if "also_matched" in expect and list(expect["also_matched"]) != result["also_matched"]:
        errors.append(f"expected also_matched {expect['also_matched']}, got "
                      f"{result['also_matched']}")
    if "safety_status" in expect and expect["safety_status"] != result["safety"]["status"]:
        errors.append(f"expected safety_status {expect['safety_status']}, got "
                      f"{result['safety']['status']}")
    errors.extend(_mismatch_v2(expect, result))
    return errors


def _plan(result: dict[str, Any]) -> list[list[str]]:
    """The recommended procedures grouped by step (rule language 2)."""
    steps: list[list[str]] = []
    for item in result["recommended_procedures"]:
        while len(steps) < item.get("step", 1):
            steps.append([])
        steps[item.get("step", 1) - 1].append(item["code"])
    return steps


def _mismatch_v2(expect: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """Expectations only language-2 tests use: plan, contributing, alerts, assumptions, reasons."""
    errors: list[str] = []
    if "plan" in expect and [list(s) for s in expect["plan"]] != _plan(result):
        errors.append(f"expected plan {expect['plan']}, got {_plan(result)}")
    if "contributing" in expect and list(expect["contributing"]) != result.get(
            "contributing_scenarios"):
        errors.append(f"expected contributing {expect['contributing']}, got "
                      f"{result.get('contributing_scenarios')}")
    alerts = result["safety"]["alerts"]
    if "alerts" in expect and list(expect["alerts"]) != [a["code"] for a in alerts]:
        errors.append(f"expected alerts {expect['alerts']}, got {[a['code'] for a in alerts]}")
    if "alert_levels" in expect and list(expect["alert_levels"]) != [
            a.get("level") for a in alerts]:
        errors.append(f"expected alert levels {expect['alert_levels']}, got "
                      f"{[a.get('level') for a in alerts]}")
    fields = [a["field"] for a in result["assumptions"]]
    if "assumptions" in expect and list(expect["assumptions"]) != fields:
        errors.append(f"expected assumptions {expect['assumptions']}, got {fields}")
    for text in expect.get("reasons_include") or ():
        if not any(text in reason for reason in result["reasons"]):
            errors.append(f"expected a reason containing {text!r}")
    return errors


def run_embedded_tests(ruleset: RuleSet, vocabulary: Vocabulary) -> list[RuleProblem]:
    """Run every test written in the rule files; a failure names the test's file and line."""
    problems: list[RuleProblem] = []
    for test in ruleset.tests:
        try:
            result = evaluate(test.request, ruleset, ruleset.vocabulary or vocabulary,
                              counterfactuals=False)
        except (KeyError, ValueError) as exc:
            problems.append(RuleProblem(test.file, test.line, f"test '{test.name}': {exc}"))
            continue
        for error in _mismatch(dict(test.expect), result):
            problems.append(RuleProblem(test.file, test.line, f"test '{test.name}': {error}"))
    return problems


def patient_information_problems(ruleset: RuleSet) -> list[RuleProblem]:
    """The readability check (US grade 8 or below, fields, levels) of a version's patient
    information, located in its file; none for versions without patient texts."""
    info = ruleset.v2.patient_information if ruleset.v2 is not None else None
    if info is None:
        return []
    # Deferred: textstat is needed only here, never on the decision path.
    from referral_api.clinical.readability import check_patient_information

    doc = {"locale": info.locale, "placeholders": dict(info.placeholders),
           "scenarios": {k: dict(v) for k, v in info.scenarios.items()}}
    ids = [s.id for rules in ruleset.regions.values() for s in rules.scenarios]
    where = f"{ruleset.id}/{ruleset.version}/patient-information.yaml"
    return [RuleProblem(where, None, text) for text in check_patient_information(doc, ids)]


def check(rules_dir: Path) -> CheckReport:
    """Validate every version, run its embedded tests and verify published versions' hashes."""
    rules_dir = Path(rules_dir)
    report = CheckReport()
    vocabulary, problems = load_vocabulary_checked(rules_dir)
    report.problems.extend(problems)
    if vocabulary is None:
        return report
    try:
        lock = read_lock(rules_dir)["rulesets"]
    except RuleError as exc:
        report.problems.extend(exc.problems)
        lock = {}
    versions = discover_versions(rules_dir)
    if not versions:
        report.problems.append(RuleProblem(str(rules_dir), None, "no rule set version found"))
    for ruleset_id, version in versions:
        entry = lock.get(ruleset_id, {}).get(version)
        if isinstance(entry, dict):
            report.problems.extend(verify_against_lock(rules_dir, ruleset_id, version, entry))
        ruleset, found = load_version(rules_dir, ruleset_id, version, vocabulary)
        report.problems.extend(found)
        if ruleset is None:
            continue
        if not isinstance(entry, dict) and ruleset.status != "draft":
            report.problems.append(RuleProblem(
                f"{ruleset_id}/{version}/{RULESET_FILE}", None,
                f"version {version} is {ruleset.status} but not published",
            ))
        failures = run_embedded_tests(ruleset, vocabulary)
        report.problems.extend(failures)
        report.problems.extend(patient_information_problems(ruleset))
        report.tests_run += len(ruleset.tests)
        state = "published" if isinstance(entry, dict) else "not published"
        report.checked.append(
            f"checked {ruleset_id} {version} ({ruleset.status}, {state}, sha256 "
            f"{ruleset.sha256[:12]}…): {len(ruleset.tests)} tests, {len(failures)} failed"
        )
    return report
