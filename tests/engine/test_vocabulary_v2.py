"""Vocabulary v2 (rule set 2026.2.0's own file): a superset of v1 with the delta's attributes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from referral_api.clinical.vocabulary import VocabularyError, load_vocabulary, parse_vocabulary

RULES = Path(__file__).resolve().parents[2] / "rules"
V1 = RULES / "vocabulary.yaml"
V2 = RULES / "spine-imaging" / "2026.2.0" / "vocabulary.yaml"


@pytest.fixture(scope="module")
def v1():
    return load_vocabulary(V1)


@pytest.fixture(scope="module")
def v2():
    return load_vocabulary(V2)


def test_v2_is_a_superset_of_v1(v1, v2) -> None:
    assert v1.format == 1 and v2.format == 2
    assert set(v1.findings) <= set(v2.findings)
    assert set(v1.contraindications) <= set(v2.contraindications)
    assert set(v1.procedures) <= set(v2.procedures)
    for code, proc in v1.procedures.items():
        assert v2.procedures[code].cpt == proc.cpt


def test_v2_finding_order_follows_the_delta(v2) -> None:
    order = list(v2.findings)
    assert order.index("bilateral_radiculopathy") == order.index("radiculopathy") + 1
    assert order.index("bilateral_leg_weakness") == order.index("severe_motor_deficit") + 1
    assert order[order.index("bowel_or_bladder_incontinence") + 1:][:2] == [
        "altered_bladder_or_bowel_sensation", "new_sexual_dysfunction"]
    assert order[order.index("elevated_inflammatory_markers") + 1:][:4] == [
        "diabetes", "recent_spinal_procedure", "indwelling_vascular_device", "wound_over_spine"]
    assert order.index("midline_spinal_tenderness") + 1 == order.index(
        "midline_cervical_tenderness")
    assert order.index("intoxication") == order.index("altered_mental_status") + 1
    assert order.index("cspine_rule_low_risk") == order.index("distracting_injury") + 1
    assert order[-5:] == ["abnormal_spine_imaging", "inflammatory_back_pain",
                          "sacroiliac_radiographs_nondiagnostic", "opll_on_imaging",
                          "cervicogenic_headache"]


def test_v2_attributes(v2) -> None:
    cancer = v2.findings["history_of_cancer"]
    assert cancer.icd10_exclude == ("C44", "Z85.828")
    assert v2.findings["fever"].recency_days == 14
    assert v2.findings["recent_bacterial_infection"].recency_days == 84
    assert v2.findings["intoxication"].recency_days == 2
    assert v2.findings["minor_trauma"].recency_days == 28
    assert not v2.findings["cspine_rule_low_risk"].red_flag
    assert not v2.findings["bilateral_radiculopathy"].derivable
    non_red = {f.code for f in v2.findings.values() if not f.red_flag}
    assert non_red == {"degenerative_changes_on_radiographs", "opll_on_imaging",
                       "cervicogenic_headache", "sacroiliac_radiographs_nondiagnostic",
                       "cspine_rule_low_risk", "inflammatory_back_pain"}
    old = v2.findings["midline_cervical_tenderness"]
    assert old.deprecated and old.replaced_by == ("midline_spinal_tenderness",)
    legacy = v2.contraindications["prior_gadolinium_reaction"]
    assert legacy.deprecated and set(legacy.replaced_by) == {
        "prior_gadolinium_reaction_mild", "prior_gadolinium_reaction_severe"}
    assert v2.contraindications["pregnancy"].icd10_exclude[0] == "O80"
    si = v2.procedures["xray_sacroiliac_joints"]
    assert (si.region, si.site, si.cpt, si.cpt_aliases, si.cds_hooks_trigger) == (
        "lumbar", "sacroiliac", ("72200",), ("72202",), False)
    assert v2.procedures["mri_sacroiliac_joints_without_contrast"].cpt == ("72195",)
    assert v2.procedures["ct_lumbar_with_contrast"].uses_iv_iodinated
    assert not v2.procedures["ct_myelography_lumbar"].uses_iv_iodinated
    assert "altered_bladder_or_bowel_sensation" in v2.cauda_equina_findings


def test_v1_json_is_unchanged_and_v2_json_adds_attributes(v1, v2) -> None:
    one = v1.to_json()
    assert "format" not in one and "red_flag" not in one["findings"][0]
    assert "site" not in one["procedures"][0]
    two = v2.to_json()
    assert two["format"] == 2
    assert two["findings"][0]["red_flag"] is True
    assert two["procedures"][-1]["site"] == "sacroiliac"


def test_v2_refuses_unknown_keys_and_dangling_replacements() -> None:
    data = yaml.safe_load(V2.read_text(encoding="utf-8"))
    data["findings"]["fever"]["recency_weeks"] = 2
    with pytest.raises(VocabularyError, match="unknown key"):
        parse_vocabulary(data)
    data = yaml.safe_load(V2.read_text(encoding="utf-8"))
    data["findings"]["midline_cervical_tenderness"]["replaced_by"] = ["no_such_finding"]
    with pytest.raises(VocabularyError, match="unknown"):
        parse_vocabulary(data)
