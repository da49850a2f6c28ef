"""Loader errors with file:line, lock verification, in_force, publish, vocabulary look-ups."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from referral_api.clinical.check import check
from referral_api.clinical.versions import (
    RuleError,
    RuleProblem,
    compute_sha256,
    load_registry,
    publish,
)

VDIR = "spine-imaging/2026.1.0"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _unlock(rules: Path) -> None:
    (rules / "rules.lock").unlink()


def test_real_rules_check_ok():
    report = check(Path(__file__).resolve().parents[2] / "rules")
    assert report.ok, report.lines()
    assert report.tests_run >= 100


def test_problem_str():
    assert str(RuleProblem("a.yaml", 3, "bad")) == "a.yaml:3: bad"
    assert str(RuleProblem("a.yaml", None, "bad")) == "a.yaml: bad"


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(needle)


def test_unknown_finding_names_file_and_line(rules_copy):
    _unlock(rules_copy)
    path = rules_copy / VDIR / "lumbar.yaml"
    _edit(path, "{finding: ankylosed_spine}", "{finding: ankylosed_spinee}")
    line = _line_of(path, "ankylosed_spinee")
    with pytest.raises(RuleError) as err:
        load_registry(rules_copy, require_published=False)
    assert f"{VDIR}/lumbar.yaml:{line}: unknown finding 'ankylosed_spinee'" in str(err.value)


def test_yaml_syntax_error_has_line(rules_copy):
    _unlock(rules_copy)
    path = rules_copy / VDIR / "cervical.yaml"
    _edit(path, "  urgency: emergent\n", "  urgency: [emergent\n")
    with pytest.raises(RuleError) as err:
        load_registry(rules_copy, require_published=False)
    problem = err.value.problems[0]
    assert problem.file == f"{VDIR}/cervical.yaml" and problem.line is not None


def test_bad_urgency_and_procedure_and_key(rules_copy):
    _unlock(rules_copy)
    path = rules_copy / VDIR / "thoracic.yaml"
    _edit(path, "\n  urgency: routine\n", "\n  urgency: soon\n")
    _edit(path, "usually_appropriate: [mri_thoracic_without_contrast]",
          "usually_appropriate: [mri_thoracic_plain]")
    _edit(path, "  rationale:", "  rationale_typo: x\n  rationale:")
    report = check(rules_copy)
    text = "\n".join(report.lines())
    assert not report.ok
    assert f"{VDIR}/thoracic.yaml:{_line_of(path, 'urgency: soon')}: urgency must be" in text
    assert f"{VDIR}/thoracic.yaml:{_line_of(path, 'mri_thoracic_plain')}: unknown procedure" in text
    assert f"{VDIR}/thoracic.yaml:{_line_of(path, 'rationale_typo')}: unknown key" in text


def test_failing_embedded_test_names_its_line(rules_copy):
    _unlock(rules_copy)
    path = rules_copy / VDIR / "lumbar.yaml"
    _edit(path, "name: urinary retention", "name: urinary retention (broken)")
    text = path.read_text(encoding="utf-8")
    start = text.index("name: urinary retention (broken)")
    segment_end = text.index("urgency: emergent", start)
    path.write_text(text[:segment_end] + "urgency: urgent" + text[segment_end + 17:],
                    encoding="utf-8")
    report = check(rules_copy)
    line = _line_of(path, "name: urinary retention (broken)")
    assert any(p.file == f"{VDIR}/lumbar.yaml" and p.line == line and "expected urgency urgent"
               in p.message for p in report.problems), report.lines()


def test_tampered_published_file_is_refused(rules_copy):
    path = rules_copy / VDIR / "cervical.yaml"
    _edit(path, "urgency: urgent", "urgency: emergent")
    with pytest.raises(RuleError) as err:
        load_registry(rules_copy)
    assert f"{VDIR}/cervical.yaml" in str(err.value)
    assert "modified" in str(err.value)
    report = check(rules_copy)
    assert not report.ok and any("cervical.yaml" in line for line in report.lines())


def test_comment_change_keeps_hash(rules_copy):
    before = compute_sha256(rules_copy, "spine-imaging", "2026.1.0")
    path = rules_copy / VDIR / "lumbar.yaml"
    path.write_text("# an extra comment\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    assert compute_sha256(rules_copy, "spine-imaging", "2026.1.0") == before
    # Still matches the lock: the published version loads.
    assert load_registry(rules_copy).get("2026.1.0").sha256 == before


def test_vocabulary_change_breaks_published_version(rules_copy):
    _edit(rules_copy / "vocabulary.yaml", "label: Night pain", "label: Pain at night")
    with pytest.raises(RuleError) as err:
        load_registry(rules_copy)
    assert "vocabulary.yaml" in str(err.value)


def test_active_unpublished_version_refused(rules_copy):
    _unlock(rules_copy)
    with pytest.raises(RuleError, match="not published"):
        load_registry(rules_copy)
    assert load_registry(rules_copy, require_published=False).get("2026.1.0").published is False


def _new_version(rules: Path, version: str, effective: str, status: str) -> None:
    src, dst = rules / VDIR, rules / "spine-imaging" / version
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    _edit(dst / "ruleset.yaml", "version: 2026.1.0", f"version: {version}")
    _edit(dst / "ruleset.yaml", "effective_from: 2026-01-01", f"effective_from: {effective}")
    _edit(dst / "ruleset.yaml", "status: active", f"status: {status}")


def test_in_force_by_effective_from(rules_copy):
    _new_version(rules_copy, "2027.1.0", "2027-03-01", "active")
    _new_version(rules_copy, "2027.2.0", "2027-01-01", "draft")
    publish(rules_copy, "2027.1.0")
    registry = load_registry(rules_copy)
    assert [r.version for r in registry.versions()] == [
        "2026.1.0", "2026.2.0", "2027.1.0", "2027.2.0"]
    assert registry.in_force(datetime(2026, 6, 1, tzinfo=UTC)).version == "2026.1.0"
    assert registry.in_force(datetime(2026, 11, 30, 23, 59)).version == "2026.1.0"
    assert registry.in_force(datetime(2026, 12, 1, tzinfo=UTC)).version == "2026.2.0"
    assert registry.in_force(datetime(2027, 2, 28, 23, 59)).version == "2026.2.0"
    assert registry.in_force(datetime(2027, 3, 1, tzinfo=UTC)).version == "2027.1.0"
    with pytest.raises(LookupError):
        registry.in_force(datetime(2025, 12, 31, tzinfo=UTC))
    with pytest.raises(KeyError):
        registry.get("9.9.9")
    assert registry.get("2027.2.0").published is False


def test_publish_writes_lock_and_refuses_changed_republish(rules_copy):
    _new_version(rules_copy, "2027.1.0", "2027-03-01", "active")
    sha = publish(rules_copy, "2027.1.0")
    lock = json.loads((rules_copy / "rules.lock").read_text(encoding="utf-8"))
    entry = lock["rulesets"]["spine-imaging"]["2027.1.0"]
    assert entry["sha256"] == sha == compute_sha256(rules_copy, "spine-imaging", "2027.1.0")
    assert set(entry["files"]) == {"cervical.yaml", "lumbar.yaml", "ruleset.yaml",
                                   "thoracic.yaml", "vocabulary.yaml"}
    assert publish(rules_copy, "2027.1.0") == sha  # idempotent
    _edit(rules_copy / "spine-imaging/2027.1.0/ruleset.yaml", "title: Spine", "title: The spine")
    with pytest.raises(RuleError, match=r"ruleset\.yaml"):
        publish(rules_copy, "2027.1.0")


def test_publish_refuses_failing_tests(rules_copy):
    _new_version(rules_copy, "2027.1.0", "2027-03-01", "draft")
    path = rules_copy / "spine-imaging/2027.1.0/lumbar.yaml"
    _edit(path, "usually_appropriate: [mri_lumbar_without_contrast, mri_lumbar_without_and_with",
          "usually_appropriate: [mri_lumbar_without_and_with_contrast, mri_lumbar_without_contrast")
    with pytest.raises(RuleError):
        publish(rules_copy, "2027.1.0")
    assert "2027.1.0" not in (rules_copy / "rules.lock").read_text(encoding="utf-8")


def test_sha_covers_all_files(rules_copy):
    before = compute_sha256(rules_copy, "spine-imaging", "2026.1.0")
    _edit(rules_copy / VDIR / "thoracic.yaml", "title: Uncomplicated thoracic back pain",
          "title: Uncomplicated thoracic pain")
    assert compute_sha256(rules_copy, "spine-imaging", "2026.1.0") != before


def test_to_json_and_summary(ruleset):
    data = ruleset.to_json()
    assert data["version"] == "2026.1.0" and data["status"] == "active"
    assert data["effective_from"] == "2026-01-01" and data["sha256"] == ruleset.sha256
    lumbar = data["regions"]["lumbar"]
    assert lumbar[0]["id"] == "lumbar.ankylosed_spine_trauma"
    assert lumbar[-1]["when"] == {"otherwise": True}
    cord = next(s for s in lumbar if s["id"] == "lumbar.cord_compression")
    assert cord["urgency"]["else"] == "urgent"
    assert data["safety_modifiers"][0]["id"] == "mri_contraindicated"
    json.dumps(data)
    assert set(ruleset.summary()) == {"version", "status", "effective_from", "sha256"}


def test_vocabulary(vocabulary):
    assert len(vocabulary.findings) == 26 and len(vocabulary.contraindications) == 9
    assert len(vocabulary.procedures) == 24
    ctm = vocabulary.procedures["ct_myelography_lumbar"]
    assert ctm.cpt == ("62284", "72132") and ctm.uses_contrast and ctm.uses_ionising_radiation
    assert vocabulary.procedure_for_code("cpt", "72052").code == "xray_cervical"
    assert vocabulary.procedure_for_code("http://loinc.org", "36532-0").code == \
        "mri_thoracic_without_contrast"
    assert vocabulary.procedure_for_code("cpt", "62284+72129").code == "ct_myelography_thoracic"
    assert vocabulary.procedure_for_code("cpt", "72129").code == "ct_thoracic_with_contrast"
    assert vocabulary.procedure_for_code("cpt", "62284") is None
    assert vocabulary.procedure_for_code("cpt", "70450") is None
    assert vocabulary.procedure_for_codes(
        [("http://www.ama-assn.org/go/cpt", "72126"), ("cpt", "62284")]
    ).code == "ct_myelography_cervical"
    assert vocabulary.default_procedure("lumbar").code == "mri_lumbar_without_contrast"
    mri_w = vocabulary.procedures["mri_lumbar_with_contrast"]
    assert mri_w.uses_gadolinium and mri_w.is_mri and not mri_w.uses_ionising_radiation
    assert not vocabulary.procedures["mri_lumbar_without_contrast"].uses_contrast
    assert vocabulary.findings["history_of_cancer"].icd10 == ("C", "Z85")
    assert vocabulary.recent_only_findings == {"saddle_anesthesia", "urinary_retention",
                                               "bowel_or_bladder_incontinence"}
    assert vocabulary.cauda_equina_diagnosis_codes["snomed"] == ("192970008", "12454008")
    assert "M54.4" in vocabulary.spine_pain_codes["icd10"]
    data = vocabulary.to_json()
    assert [f["code"] for f in data["findings"]][:2] == ["radiculopathy", "neurologic_deficit"]
    json.dumps(data)


def test_2026_2_0_has_its_own_vocabulary_and_2026_1_0_keeps_its_hash(registry):
    old, new = registry.get("2026.1.0"), registry.get("2026.2.0")
    assert old.sha256 == "f04216d7e10ff4c202e2baf29de77fac1b62795c673e030fb320e54d22ebade0"
    assert old.vocabulary.format == 1 and new.vocabulary.format == 2
    assert registry.vocabulary_for("2026.1.0") is old.vocabulary
    assert registry.vocabulary_at(datetime(2026, 11, 30, tzinfo=UTC)) is old.vocabulary
    assert registry.vocabulary_at(datetime(2026, 12, 1, tzinfo=UTC)) is new.vocabulary
    assert "bilateral_radiculopathy" not in old.vocabulary.findings
    assert new.effective_from.isoformat() == "2026-12-01" and new.published


def test_v2_vocabulary_change_breaks_only_2026_2_0(rules_copy):
    _edit(rules_copy / "spine-imaging/2026.2.0/vocabulary.yaml", "label: Night pain",
          "label: Pain at night")
    with pytest.raises(RuleError) as err:
        load_registry(rules_copy)
    assert "spine-imaging/2026.2.0/vocabulary.yaml" in str(err.value)
    assert "2026.1.0" not in str(err.value)
