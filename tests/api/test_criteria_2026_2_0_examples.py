"""criteria-2026.2.0 §13 acceptance examples, end to end through ``POST /v1/decisions``.

Each row is the criteria's request and expected answer (scenario, contributing scenarios,
urgency, rating of the requested study, plan as steps of alternatives, safety). T38-T40 are
CDS Hooks examples (tests/cds); T40's engine part (an injury 3 days ago, derived) is here
as the API request the CDS layer derives.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import auth

L, T, C = "lumbar", "thoracic", "cervical"


def _p(short: str, region: str) -> str:
    """criteria §1 shorthands: MRI, MRIwwo, CT, CTw, CTM, XR, SIXR, SIMRI; C-/T-/L- prefix."""
    if short == "SIXR":
        return "xray_sacroiliac_joints"
    if short == "SIMRI":
        return "mri_sacroiliac_joints_without_contrast"
    if short[1:2] == "-":
        region = {"C": C, "T": T, "L": L}[short[0]]
        short = short[2:]
    return {"MRI": f"mri_{region}_without_contrast",
            "MRIwwo": f"mri_{region}_without_and_with_contrast",
            "CT": f"ct_{region}_without_contrast", "CTw": f"ct_{region}_with_contrast",
            "CTM": f"ct_myelography_{region}", "XR": f"xray_{region}"}[short]


UA, MBA, UNA, NC = ("usually_appropriate", "may_be_appropriate", "usually_not_appropriate",
                    "not_covered")

# id, region, age, weeks, findings, extra request fields, expected
EXAMPLES: list[tuple[str, str, int, float, list[str], dict[str, Any], dict[str, Any]]] = [
    ("T01", L, 38, 1, ["bilateral_radiculopathy", "bilateral_leg_weakness"], {},
     dict(scenario="lumbar.cauda_equina", urgency="emergent", rating=UA,
          plan=[["MRI", "MRIwwo"]], reason="image the thoracic cord")),
    ("T02", L, 45, 8, ["radiculopathy", "neurologic_deficit"], {},
     dict(scenario="lumbar.radiculopathy_conservative", urgency="none", rating=UNA, plan=[])),
    ("T02-candidate", L, 45, 8, ["radiculopathy", "neurologic_deficit"],
     {"conservative_care_weeks": 6, "intervention_candidate": True},
     dict(scenario="lumbar.surgical_candidate", urgency="routine", rating=UA)),
    ("T02b", L, 45, 8, ["radiculopathy", "neurologic_deficit", "minor_trauma"],
     {"days_since_injury": 56},
     dict(scenario="lumbar.radiculopathy_conservative", urgency="none", rating=UNA, plan=[],
          reason="more than 4 weeks ago")),
    ("T03", L, 68, 1.5, ["fever"],
     {"contraindications": ["dialysis"], "requested_procedure": "MRIwwo"},
     dict(scenario="lumbar.febrile_infection", also="lumbar.suspected_infection",
          urgency="emergent", rating=UA, plan=[["MRIwwo", "MRI"]], safety="caution",
          alerts=["renal_gadolinium"], alert_text="On haemodialysis")),
    ("T04", T, 66, 1, ["history_of_cancer", "minor_trauma", "progressive_neurologic_deficit"],
     {}, dict(scenario="thoracic.trauma_with_deficit",
              contributing=["thoracic.trauma_with_deficit", "thoracic.suspected_mscc",
                            "thoracic.cord_compression",
                            "thoracic.severe_or_progressive_deficit"],
              urgency="emergent", rating=UA,
              plan=[["CT"], ["MRI", "MRIwwo"], ["C-MRIwwo", "C-MRI"], ["L-MRIwwo", "L-MRI"]],
              assumptions=["days_since_injury"], reason="non-spinal causes")),
    ("T05", L, 55, 2, ["myelopathy_signs", "urinary_retention"], {},
     dict(scenario="lumbar.cauda_equina",
          contributing=["lumbar.cauda_equina", "lumbar.cord_compression"], urgency="emergent",
          rating=UA, plan=[["MRI", "MRIwwo"], ["C-MRI", "C-MRIwwo"], ["T-MRI", "T-MRIwwo"]])),
    ("T05-chronic", L, 55, 20, ["myelopathy_signs", "urinary_retention"], {},
     dict(scenario="lumbar.cauda_equina",
          contributing=["lumbar.cauda_equina", "lumbar.cord_compression"], urgency="emergent")),
    ("T06", T, 35, 3, ["radiculopathy"], {},
     dict(scenario="thoracic.radiculopathy", urgency="routine", rating=UA, plan=[["MRI"]],
          reason="non-spinal causes")),
    ("T07", L, 31, 0.5, ["saddle_anesthesia"], {"contraindications": ["pregnancy"]},
     dict(scenario="lumbar.cauda_equina", urgency="emergent", rating=UA,
          plan=[["MRI", "MRIwwo"]], safety="caution", alerts=["pregnancy"],
          no_alert_text="ionising radiation")),
    ("T08", L, 15, 8, ["night_pain"], {},
     dict(scenario="lumbar.child_red_flag", urgency="routine", rating=MBA, plan=[["XR"]],
          reason="Paediatric criteria applied")),
    ("T09", C, 17, 0, ["significant_trauma", "midline_cervical_tenderness"],
     {"days_since_injury": 0},
     dict(scenario="cervical.trauma_imaging_indicated", urgency="emergent", rating=UNA,
          plan=[["CT"]])),
    ("T10", C, 72, 0, ["minor_trauma"], {"requested_procedure": "CT"},
     dict(scenario="cervical.trauma_imaging_indicated", urgency="emergent", rating=UA,
          plan=[["CT"]], assumptions=["days_since_injury"])),
    ("T11", C, 40, 1, [], {}, dict(scenario="cervical.neck_pain", urgency="none", rating=UNA,
                                   plan=[])),
    ("T11-XR", C, 40, 1, [], {"requested_procedure": "XR"},
     dict(scenario="cervical.neck_pain", urgency="none", rating=MBA)),
    ("T12", C, 45, 2, ["radiculopathy"], {},
     dict(scenario="cervical.radiculopathy_early", urgency="none", rating=MBA, plan=[])),
    ("T12-13wk", C, 45, 13, ["radiculopathy"], {},
     dict(scenario="cervical.radiculopathy_persistent", urgency="routine", rating=UA)),
    ("T13", L, 55, 2, ["unexplained_weight_loss"], {},
     dict(scenario="lumbar.weak_malignancy_risk", urgency="routine", rating=MBA, plan=[["XR"]],
          reason="Weaker cancer risk factors")),
    ("T13b", L, 55, 2, ["unexplained_weight_loss", "elevated_inflammatory_markers"], {},
     dict(scenario="lumbar.suspected_infection", also="lumbar.suspected_malignancy",
          urgency="urgent", rating=UA, plan=[["MRIwwo", "MRI"]])),
    ("T14", L, 50, 0.5, ["urinary_retention"], {"contraindications": ["mr_unsafe_implant"]},
     dict(scenario="lumbar.cauda_equina", urgency="emergent", rating=UA,
          plan=[["CTM", "CT", "MRI", "MRIwwo"]], safety="contraindicated")),
    ("T15", L, 60, 4, ["prior_spine_surgery", "radiculopathy"],
     {"contraindications": ["dialysis"]},
     dict(scenario="lumbar.prior_surgery", urgency="routine", rating=UA,
          plan=[["MRIwwo", "MRI", "XR"]], alerts=["renal_gadolinium"],
          alert_text="On haemodialysis", no_alert_text="saline")),
    ("T16", L, 40, 0, ["minor_trauma", "intoxication", "distracting_injury"],
     {"days_since_injury": 0, "requested_procedure": "CT"},
     dict(scenario="lumbar.trauma_high_risk", urgency="emergent", rating=UA, plan=[["CT"]])),
    ("T17", C, 30, 0, ["minor_trauma"], {"days_since_injury": 1, "requested_procedure": "CT"},
     dict(scenario="cervical.trauma_rule_not_documented", urgency="emergent", rating=UA,
          plan=[["CT"]], reason="the neck is not cleared")),
    ("T18", C, 30, 0, ["minor_trauma", "cspine_rule_low_risk"],
     {"days_since_injury": 1, "requested_procedure": "CT"},
     dict(scenario="cervical.trauma_low_risk", urgency="none", rating=UNA, plan=[])),
    ("T19", C, 30, 0, ["minor_trauma", "cspine_rule_low_risk", "midline_cervical_tenderness"],
     {"days_since_injury": 1, "requested_procedure": "CT"},
     dict(scenario="cervical.trauma_imaging_indicated", urgency="emergent", rating=UA,
          plan=[["CT"]], reason="the high-risk feature prevails")),
    ("T20", C, 30, 2, ["minor_trauma"], {"days_since_injury": 14},
     dict(scenario="cervical.trauma_subacute", urgency="none", rating=MBA, plan=[])),
    ("T21", L, 45, 1, ["minor_trauma"], {"days_since_injury": 2},
     dict(scenario="lumbar.low_velocity_trauma", urgency="routine", rating=UA,
          plan=[["XR", "MRI", "CT"]], reason="Injury 2 days ago.")),
    ("T22", L, 55, 1, ["fever", "diabetes"], {},
     dict(scenario="lumbar.febrile_infection", urgency="emergent", rating=UA,
          plan=[["MRIwwo", "MRI"]])),
    ("T23", L, 55, 1, ["diabetes"], {},
     dict(scenario="lumbar.uncomplicated", urgency="none", rating=UNA, plan=[])),
    ("T24", L, 60, 3, ["history_of_cancer"], {},
     dict(scenario="lumbar.suspected_malignancy", urgency="urgent", rating=UA,
          plan=[["MRIwwo", "MRI"], ["T-MRIwwo", "T-MRI"], ["C-MRIwwo", "C-MRI"]])),
    ("T25", L, 60, 3, ["history_of_cancer", "radiculopathy"], {},
     dict(scenario="lumbar.suspected_mscc", urgency="emergent", rating=UA,
          plan=[["MRIwwo", "MRI"], ["T-MRIwwo", "T-MRI"], ["C-MRIwwo", "C-MRI"]],
          reason="MSCC coordinator")),
    ("T26", T, 50, 8, [], {"conservative_care_weeks": 6},
     dict(scenario="thoracic.failed_conservative_care", urgency="routine", rating=UNA,
          plan=[["XR"]], reason="non-spinal causes")),
    ("T27", L, 28, 26, ["inflammatory_back_pain"], {},
     dict(scenario="lumbar.axial_spa_suspected", urgency="routine", rating=UNA,
          plan=[["SIXR"]], reason="rheumatology")),
    ("T28", L, 28, 26, ["inflammatory_back_pain", "sacroiliac_radiographs_nondiagnostic"], {},
     dict(scenario="lumbar.axial_spa_mri", urgency="routine", rating=MBA, plan=[["SIMRI"]],
          reason="rheumatology")),
    ("T29", L, 10, 0, ["minor_trauma"], {"days_since_injury": 1},
     dict(scenario="lumbar.child_trauma_under_16", urgency="routine", rating=NC, plan=[],
          reason="paediatric trauma criteria", no_would_change=True)),
    ("T30", L, 12, 1, ["fever"], {},
     dict(scenario="lumbar.child_serious_pathology", urgency="urgent", rating=UA,
          plan=[["MRIwwo", "MRI"], ["T-MRIwwo", "T-MRI"], ["C-MRIwwo", "C-MRI"]])),
    ("T31", L, 17, 1, ["saddle_anesthesia"], {},
     dict(scenario="lumbar.child_serious_pathology", urgency="emergent", rating=UA,
          plan=[["MRIwwo", "MRI"], ["T-MRIwwo", "T-MRI"], ["C-MRIwwo", "C-MRI"]])),
    ("T32", C, 50, 2, ["myelopathy_signs", "urinary_retention"], {},
     dict(scenario="cervical.cauda_equina",
          contributing=["cervical.cauda_equina", "cervical.cord_compression"],
          urgency="emergent", rating=UA,
          plan=[["MRI", "MRIwwo"], ["T-MRI", "T-MRIwwo"], ["L-MRI", "L-MRIwwo"]],
          reason="GIRFT pathway")),
    ("T33", L, 60, 1, ["urinary_retention"], {"egfr": 25, "requested_procedure": "MRIwwo"},
     dict(scenario="lumbar.cauda_equina", urgency="emergent", rating=UA,
          plan=[["MRI", "MRIwwo"]], alerts=["renal_gadolinium"],
          no_alert_text="haemodialysis")),
    ("T34", L, 60, 1, ["fever", "iv_drug_use"],
     {"contraindications": ["mr_unsafe_implant", "metformin"], "egfr": 25},
     dict(scenario="lumbar.febrile_infection", urgency="emergent", rating=UA,
          plan=[["CTw", "CT", "CTM", "MRIwwo", "MRI"]], safety="contraindicated",
          alerts=["mr_unsafe_implant", "renal_gadolinium", "renal_iodinated", "metformin"],
          alert_text="withhold it for 48 hours")),
    ("T35", L, 45, 2, ["radiculopathy"], {"contraindications": ["severe_claustrophobia"]},
     dict(scenario="lumbar.radiculopathy_conservative", urgency="none", rating=UNA, plan=[],
          safety="caution")),
    ("T36", L, 70, 0, ["minor_trauma"], {},
     dict(scenario="lumbar.low_velocity_trauma", also="lumbar.fracture_risk", urgency="urgent",
          rating=UA, plan=[["XR", "MRI", "CT"]], assumptions=["days_since_injury"])),
    ("T37", L, 50, 2, [], {"contraindications": ["breastfeeding"],
                           "requested_procedure": "MRIwwo"},
     dict(scenario="lumbar.uncomplicated", urgency="none", rating=UNA, plan=[],
          safety="clear", alerts=["breastfeeding"], levels=["info"])),
    ("T40-engine", L, 40, 1.5, ["significant_trauma"], {"days_since_injury": 3},
     dict(scenario="lumbar.trauma_high_risk", urgency="emergent", rating=UNA, plan=[["CT"]])),
]


@pytest.fixture
def evaluator(app) -> dict[str, str]:
    key = app.extensions["referral_api"].keys.create(["evaluator"], "criteria-examples")[1]
    return auth(key)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_acceptance_example(example, client, evaluator) -> None:
    _, region, age, weeks, findings, extra, want = example
    body: dict[str, Any] = {"patient": {"age": age}, "region": region,
                            "symptom_duration_weeks": weeks, "findings": findings, **extra}
    if "requested_procedure" in body:
        body["requested_procedure"] = _p(body["requested_procedure"], region)
    response = client.post("/v1/decisions", json=body, headers=evaluator)
    assert response.status_code == 201, response.get_data(as_text=True)
    got = response.get_json()
    assert got["ruleset"]["version"] == "2026.2.0"
    assert got["scenario"]["id"] == want["scenario"]
    assert got["urgency"] == want["urgency"]
    if "rating" in want:
        assert got["appropriateness"] == want["rating"]
        assert got["requested_procedure"]["rating"] == want["rating"]
    assert got["contributing_scenarios"] == want.get("contributing", [])
    if "also" in want:
        assert want["also"] in got["also_matched"]
    if "plan" in want:
        steps: list[list[str]] = []
        for item in got["recommended_procedures"]:
            while len(steps) < item["step"]:
                steps.append([])
            steps[item["step"] - 1].append(item["code"])
        assert steps == [[_p(s, region) for s in step] for step in want["plan"]]
    alerts = got["safety"]["alerts"]
    if "safety" in want:
        assert got["safety"]["status"] == want["safety"]
    if "alerts" in want:
        assert [a["code"] for a in alerts] == want["alerts"]
    if "levels" in want:
        assert [a["level"] for a in alerts] == want["levels"]
    if "alert_text" in want:
        assert any(want["alert_text"] in a["message"] for a in alerts)
    if "no_alert_text" in want:
        assert not any(want["no_alert_text"] in a["message"] for a in alerts)
    assert [a["field"] for a in got["assumptions"]] == want.get("assumptions", [])
    if "reason" in want:
        assert any(want["reason"] in r for r in got["reasons"]), got["reasons"]
    if want.get("no_would_change"):
        assert got["would_change_if"] == []
    info = got["patient_information"]
    assert info["locale"] == "en-US" and info["headline"]
    assert "{emergency_number}" not in str(info)
    assert all(a.get("level") in ("info", "caution", "contraindicated") for a in alerts)
    # Never "conservative care" next to an emergency (GUIDE: safety first in what people read).
    if got["urgency"] == "emergent":
        assert not any("conservative care" in r for r in got["reasons"])
