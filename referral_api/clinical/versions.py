"""Versioned rule sets: load every version of a rules directory, publish one.

Pure module. The parts: ``rulecompiler`` reads and validates the files (file:line problems)
and compiles them into the structures of ``rulemodel``; ``rulelock`` hashes versions and
keeps the publish lock (its docstring defines the hash). Layout of a rules directory:

    rules/vocabulary.yaml                       vocabulary v1 (part of the hash of versions
                                                without their own, i.e. 2026.1.0)
    rules/<ruleset id>/<version>/vocabulary.yaml   a version's own vocabulary (v2, 2026.2.0)
    rules/rules.lock                            published versions and their hashes (JSON)
    rules/<ruleset id>/<version>/ruleset.yaml   facts, safety modifiers, metadata
    rules/<ruleset id>/<version>/<region>.yaml  one file per region: scenarios in rule order
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from referral_api.clinical.check import patient_information_problems, run_embedded_tests
from referral_api.clinical.compiler import discover_versions, load_version, load_vocabulary_checked
from referral_api.clinical.conditions import RuleProblem
from referral_api.clinical.lock import (
    compute_sha256,
    read_lock,
    verify_against_lock,
    version_dir,
    write_atomically,
)
from referral_api.clinical.model import (
    LOCK_FILE,
    RULESET_FILE,
    RuleError,
    RuleRegistry,
    RuleSet,
)

# The public API of rule sets; the parts live in rulemodel (compiled structures), rulelock
# (hashes and the lock) and rulecompiler (reading and compiling the files).
__all__ = [
    "RuleError",
    "RuleProblem",
    "RuleRegistry",
    "RuleSet",
    "compute_sha256",
    "load_registry",
    "publish",
]


def _mark_published(ruleset: RuleSet) -> RuleSet:
    return RuleSet(**{**ruleset.__dict__, "published": True})


#: Registries already loaded in this process, by the rules directory's fingerprint (every
#: file's path, size and modification time): parsing and hashing two versions' YAML costs
#: about two seconds, and apps (tests, workers) load the same unchanged directory again.
_LOADED: dict[tuple, RuleRegistry] = {}
_LOADED_MAX = 8


def _fingerprint(rules_dir: Path, require_published: bool) -> tuple:
    files = []
    for path in sorted(rules_dir.rglob("*")):
        if path.is_file():
            stat = path.stat()
            files.append((str(path.relative_to(rules_dir)), stat.st_size, stat.st_mtime_ns))
    return (str(rules_dir.resolve()), require_published, tuple(files))


def load_registry(rules_dir: Path, *, require_published: bool = True) -> RuleRegistry:
    """Load every version; RuleError (naming files and lines) when any is invalid or tampered.

    Published versions (in rules.lock) must match their lock entry. Active or retired versions
    that are not published are refused when `require_published`; drafts never need the lock.
    An unchanged directory loaded before in this process gives the same registry back.
    """
    rules_dir = Path(rules_dir)
    key = _fingerprint(rules_dir, require_published)
    cached = _LOADED.get(key)
    if cached is not None:
        return cached
    registry = _load_registry(rules_dir, require_published)
    if len(_LOADED) >= _LOADED_MAX:
        _LOADED.clear()
    _LOADED[key] = registry
    return registry


def _load_registry(rules_dir: Path, require_published: bool) -> RuleRegistry:
    vocabulary, problems = load_vocabulary_checked(rules_dir)
    if vocabulary is None:
        raise RuleError(problems)
    lock = read_lock(rules_dir)["rulesets"]
    rulesets: list[RuleSet] = []
    seen_versions: dict[str, str] = {}
    versions = discover_versions(rules_dir)
    if not versions:
        raise RuleError([RuleProblem(str(rules_dir), None, "no rule set version found")])
    for ruleset_id, version in versions:
        if version in seen_versions:
            problems.append(RuleProblem(f"{ruleset_id}/{version}", None,
                                        f"version {version} also exists for "
                                        f"{seen_versions[version]}"))
            continue
        seen_versions[version] = ruleset_id
        ruleset, found = load_version(rules_dir, ruleset_id, version, vocabulary)
        entry = lock.get(ruleset_id, {}).get(version)
        if isinstance(entry, dict):
            tampered = verify_against_lock(rules_dir, ruleset_id, version, entry)
            problems.extend(tampered)
            if found and not tampered:
                problems.extend(found)
            if ruleset is not None and not tampered:
                rulesets.append(_mark_published(ruleset))
            continue
        problems.extend(found)
        if ruleset is None:
            continue
        if ruleset.status != "draft" and require_published:
            problems.append(RuleProblem(
                f"{ruleset_id}/{version}/{RULESET_FILE}", None,
                f"version {version} is {ruleset.status} but not published: run "
                f"'referral-api rules publish {version}'",
            ))
            continue
        rulesets.append(ruleset)
    if problems:
        raise RuleError(problems)
    return RuleRegistry(vocabulary, rulesets)



def publish(rules_dir: Path, version: str, ruleset_id: str = "spine-imaging") -> str:
    """Validate a version, run its embedded tests and record its hashes in rules.lock.

    Returns the version's sha256. Publishing again with identical content is a no-op; a
    published version whose content changed is refused (publish a new version instead).
    """
    rules_dir = Path(rules_dir)
    vocabulary, problems = load_vocabulary_checked(rules_dir)
    if vocabulary is None:
        raise RuleError(problems)
    if not (version_dir(rules_dir, ruleset_id, version) / RULESET_FILE).is_file():
        raise RuleError([RuleProblem(f"{ruleset_id}/{version}", None, "unknown version")])
    ruleset, problems = load_version(rules_dir, ruleset_id, version, vocabulary)
    if ruleset is None:
        raise RuleError(problems)
    failures = run_embedded_tests(ruleset, vocabulary)
    failures += patient_information_problems(ruleset)
    if failures:
        raise RuleError(failures)
    lock = read_lock(rules_dir)
    existing = lock["rulesets"].get(ruleset_id, {}).get(version)
    if isinstance(existing, dict):
        if existing.get("sha256") == ruleset.sha256:
            return ruleset.sha256
        changed = verify_against_lock(rules_dir, ruleset_id, version, existing)
        raise RuleError(changed or [RuleProblem(f"{ruleset_id}/{version}", None,
                                                "already published with different content")])
    lock["rulesets"].setdefault(ruleset_id, {})[version] = {
        "sha256": ruleset.sha256,
        "files": dict(ruleset.file_hashes),
        "published_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    lock["comment"] = (
        "Written by 'referral-api rules publish'. Do not edit. sha256 per version covers the "
        "canonical JSON of its YAML files and vocabulary.yaml (see docs/rules-authoring.md)."
    )
    write_atomically(rules_dir / LOCK_FILE, json.dumps(lock, indent=2, sort_keys=True) + "\n")
    return ruleset.sha256


