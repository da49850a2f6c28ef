"""Rule set hashes and the publish lock (``rules/rules.lock``). Pure module.

Hashing: each file's canonical content is its parsed YAML as JSON with sorted keys, compact
separators and UTF-8 (so comments and formatting do not count). A version's sha256 is taken
over, for each file in sorted file-name order (the version's files plus "vocabulary.yaml"),
the bytes `<file name>\\n<canonical JSON>\\n`.

"vocabulary.yaml" is the version's own vocabulary when its directory holds one (2026.2.0 and
later: vocabulary v2), else the shared ``rules/vocabulary.yaml`` (v1, as hashed into 2026.1.0:
that computation is unchanged, so the published 2026.1.0 hash still verifies).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from referral_api.clinical.conditions import (
    RuleProblem,
    plain,
)
from referral_api.clinical.model import (
    LOCK_FILE,
    RULESET_FILE,
    SAFE_LOADER,
    VOCABULARY_FILE,
    RuleError,
)

# --- hashing and the lock ---------------------------------------------------------------------


_CANONICAL: dict[tuple[str, int, int], bytes] = {}


def canonical_bytes(path: Path) -> bytes:
    """The canonical content of a YAML file: sorted-key compact JSON of its data, UTF-8.

    Memoised by path, size and modification time: one load hashes each file three times
    (version hash, per-file hashes, lock verification).
    """
    stat = Path(path).stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    cached = _CANONICAL.get(key)
    if cached is not None:
        return cached
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506
    out = json.dumps(
        plain(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    if len(_CANONICAL) > 256:
        _CANONICAL.clear()
    _CANONICAL[key] = out
    return out


def version_dir(rules_dir: Path, ruleset_id: str, version: str) -> Path:
    return Path(rules_dir) / ruleset_id / version


def version_files(version_dir: Path) -> list[str]:
    return sorted(p.name for p in version_dir.glob("*.yaml") if p.is_file())


def vocabulary_path(rules_dir: Path, ruleset_id: str, version: str) -> Path:
    """The vocabulary a version uses: its own vocabulary.yaml, else the shared v1 file."""
    own = version_dir(rules_dir, ruleset_id, version) / VOCABULARY_FILE
    return own if own.is_file() else Path(rules_dir) / VOCABULARY_FILE


def _hashed_paths(rules_dir: Path, ruleset_id: str, version: str) -> dict[str, Path]:
    vdir = version_dir(rules_dir, ruleset_id, version)
    paths = {name: vdir / name for name in version_files(vdir)}
    paths[VOCABULARY_FILE] = vocabulary_path(rules_dir, ruleset_id, version)
    return paths


def file_hashes(rules_dir: Path, ruleset_id: str, version: str) -> dict[str, str]:
    """sha256 of each file's canonical content, the version's files plus vocabulary.yaml."""
    paths = _hashed_paths(rules_dir, ruleset_id, version)
    return {
        name: hashlib.sha256(canonical_bytes(paths[name])).hexdigest() for name in sorted(paths)
    }


def compute_sha256(rules_dir: Path, ruleset_id: str, version: str) -> str:
    """The version's sha256 over its files and vocabulary.yaml (see the module docstring)."""
    vdir = version_dir(rules_dir, ruleset_id, version)
    if not (vdir / RULESET_FILE).is_file():
        raise RuleError([RuleProblem(str(vdir), None, "no ruleset.yaml: unknown version")])
    paths = _hashed_paths(rules_dir, ruleset_id, version)
    digest = hashlib.sha256()
    for name in sorted(paths):
        try:
            content = canonical_bytes(paths[name])
        except (OSError, yaml.YAMLError) as exc:
            raise RuleError([RuleProblem(name, None, f"cannot be hashed: {exc}")]) from exc
        digest.update(name.encode("utf-8") + b"\n" + content + b"\n")
    return digest.hexdigest()


def read_lock(rules_dir: Path) -> dict[str, Any]:
    """The lock file's content ({"rulesets": {id: {version: entry}}}); empty when absent."""
    path = Path(rules_dir) / LOCK_FILE
    if not path.exists():
        return {"rulesets": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RuleError([RuleProblem(LOCK_FILE, None, f"unreadable lock file: {exc}")]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("rulesets"), dict):
        raise RuleError([RuleProblem(LOCK_FILE, None, "lock file lacks a 'rulesets' mapping")])
    return data


def verify_against_lock(
    rules_dir: Path, ruleset_id: str, version: str, entry: Mapping[str, Any]
) -> list[RuleProblem]:
    """Problems when a published version's files differ from its lock entry (naming them)."""
    vdir = version_dir(rules_dir, ruleset_id, version)
    locked: Mapping[str, str] = entry.get("files") or {}
    present = {*version_files(vdir), VOCABULARY_FILE}
    changed: list[str] = []
    for name in sorted(present | set(locked)):
        if name not in locked or name not in present:
            changed.append(name)
            continue
        path = (vocabulary_path(rules_dir, ruleset_id, version) if name == VOCABULARY_FILE
                 else vdir / name)
        try:
            digest = hashlib.sha256(canonical_bytes(path)).hexdigest()
        except (OSError, yaml.YAMLError):
            digest = ""
        if digest != locked[name]:
            changed.append(name)
    if not changed:
        try:
            total = compute_sha256(rules_dir, ruleset_id, version)
        except RuleError:
            total = ""
        if total != entry.get("sha256"):
            changed.append("(version hash)")
    if not changed:
        return []
    own_vocabulary = (vdir / VOCABULARY_FILE).is_file()
    shown = [
        f"{VOCABULARY_FILE}" if n == VOCABULARY_FILE and not own_vocabulary
        else f"{ruleset_id}/{version}/{n}"
        for n in changed
    ]
    return [
        RuleProblem(
            f"{ruleset_id}/{version}",
            None,
            f"published version {version} has been modified; changed files: {', '.join(shown)} "
            "(a published version is immutable: restore the files or publish a new version)",
        )
    ]



def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rules.lock.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
