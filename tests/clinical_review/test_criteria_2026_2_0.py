"""Second reading of spine-imaging 2026.2.0, written from the criteria text alone.

Source: ``../shared/clinical/criteria-2026.2.0.md`` with ``../shared/spec/api-v1.md``,
``vocabulary.md`` and ``vocabulary-2026.2.0-delta.md``. Every expected value below was read
from those documents (the scenario tables of §5-§8, the derived facts of §2, the combination
rules of §3, the safety rows of §9, the reason templates of §11 and the acceptance examples of
§13), never from the rule files or the engine, so that a mis-encoded row shows up as a failing
test. Everything goes through the HTTP API (``POST /v1/decisions``) with the shared fixtures.

Notation follows the criteria: "MRI w/o", "MRI w/wo", "CT w/o", "CT w/", "CTM", "XR" of the
request's region unless prefixed ``C-``, ``T-``, ``L-``; "SI XR" and "SI MRI w/o" are the
sacroiliac studies. A plan is written as in §13: steps separated by ``;`` (or ``→`` as in the
tables), alternatives within a step by `` / `` (first preferred).

Where the text can be read more than one way the test encodes one reading and the module-level
``AMBIGUITIES`` list says which and why. Where the engine disagrees with the text after the
merge, the test is marked ``xfail(strict=True, reason="disagreement: …")`` (see
``docs/rule-changes/2026.2.0-second-reading.md``).
"""

from __future__ import annotations

from typing import Any

import pytest

VERSION = "2026.2.0"
UA = "usually_appropriate"
MBA = "may_be_appropriate"
UNA = "usually_not_appropriate"
NC = "not_covered"

AMBIGUITIES: list[tuple[str, str]] = [
    ("§2 injury / §7 rows 3-6",
     "`days_since_injury` given without any injury finding still means an injury (§2: 'or "
     "`days_since_injury` is given'; delta §6: 'Giving it asserts that an injury occurred'). "
     "Read literally: a cervical request with only days 3 is `trauma_rule_not_documented` "
     "(emergent CT), a lumbar one is `low_velocity_trauma`."),
    ("§2 midline_tenderness",
     "`midline_cervical_tenderness` counts as an injury and as midline tenderness 'in the "
     "cervical region' only. Read: in a lumbar or thoracic request it is ignored (no injury)."),
    ("§3.7 + §8 c2",
     "A child under 16 whose injury makes c2 emergent while c1 (e.g. fever) is only urgent: c2 "
     "governs alone, so the answer is `not_covered`, emergent, with no plan, even though c1 "
     "would have recommended MRI. Read literally (also-matched c1 is listed in `also_matched`)."),
    ("§3.7 rating",
     "Ratings come only from the contributing scenarios: a study that an also-matched "
     "(non-contributing) scenario rates UA is UNA when the governing scenario does not list it "
     "(e.g. L-XR for `lumbar.trauma_with_deficit` with `low_velocity_trauma` also matched)."),
    ("§7 row 18",
     "`cervical.fracture_risk` is 'osteoporosis or long_term_corticosteroids' only; age >= 70 "
     "(part of the §2 fact `fracture_risk`) is not in the cervical condition. Read: a "
     "75-year-old with neck pain and no injury gets `cervical.neck_pain`."),
    ("§7 row 14 / no weak-risk row",
     "The cervical table has no `weak_malignancy_risk` row: night pain alone in an adult neck "
     "request falls to `cervical.neck_pain` (or the duration rows)."),
    ("§11 R-C2 {feature}",
     "'{feature}' is read as the vocabulary label of the high-risk finding (§11: reason texts "
     "name findings by their vocabulary labels); mid-sentence its first letter may be lower "
     "case (first reading demanded the label verbatim; relaxed after the merge)."),
    ("§11 reasons",
     "Templates are checked as substrings of the reasons joined with a space, so a template "
     "may be one list item or split over several consecutive items."),
    ("§9 row 3 {alternative}",
     "'{alternative} names the non-MRI study': read as the vocabulary label of that procedure "
     "appearing in the message."),
    ("§9 row 3 region",
     "{alternative} is 'of the request's region': for a lumbar request with cord signs (plan: "
     "cervical and thoracic MRI; MBA names only C-CTM and T-CTM) the text gives lumbar CT "
     "myelography. Literal; the clinical board may prefer the cord's region."),
    ("§9 row 4",
     "'If urgency is emergent, the last sentence leads': read as the message starting with "
     "'In an emergency do not wait'."),
    ("§9 rows 16-17 with dialysis",
     "Renal rows: the dialysis contraindication produces no alert of its own (no row names it "
     "alone); it only selects the dialysis sentence of rows 16-17."),
    ("§3.2 defaults in also_matched",
     "The default scenarios (adult 'otherwise', child_no_red_flags) never appear in "
     "`also_matched` when another scenario matched (they do not match then)."),
    ("§5 row 1 MBA '—'",
     "MRI substitution for a step of MRIs only, when the contributing MBA lists hold no CT/CTM "
     "of the region, uses CTM of the region (§9: 'or CTM of r when there are none')."),
    ("§12.2 vs §12.3",
     "§12.3 says its texts measure FK 0.3-7.2, but with the pinned textstat several given items "
     "exceed the binding FK <= 8.0 of §12.2 (e.g. the cauda equina headline 'You need an "
     "emergency MRI scan today.' = 9.1). Read: a given item meeting §12.2 is returned verbatim; "
     "one failing it may be reworded and must then meet §12.2 "
     "(test_patient_information_texts.py). come_back_if wording is not compared verbatim."),
    ("§8 c1 plan for a lumbar child without `whole_spine_due`",
     "Only the first step (MRI w/wo / MRI w/o of the region) when `whole_spine_due` fails."),
]

# ------------------------------------------------------------------------------------------
# Notation
# ------------------------------------------------------------------------------------------

_PREFIX = {"C-": "cervical", "T-": "thoracic", "L-": "lumbar"}
_SHORT = {
    "MRI w/o": "mri_{r}_without_contrast",
    "MRI w/": "mri_{r}_with_contrast",
    "MRI w/wo": "mri_{r}_without_and_with_contrast",
    "CT w/o": "ct_{r}_without_contrast",
    "CT w/": "ct_{r}_with_contrast",
    "CT w/wo": "ct_{r}_without_and_with_contrast",
    "CTM": "ct_myelography_{r}",
    "XR": "xray_{r}",
}


def P(region: str, text: str) -> str:
    """Vocabulary code of one criteria item ('MRI w/o', 'T-MRI w/wo', 'SI XR', ...)."""
    text = text.strip()
    if text == "SI XR":
        return "xray_sacroiliac_joints"
    if text == "SI MRI w/o":
        return "mri_sacroiliac_joints_without_contrast"
    if text[:2] in _PREFIX:
        region, text = _PREFIX[text[:2]], text[2:]
    return _SHORT[text].format(r=region)


def plan_of(region: str, text: str) -> list[list[str]]:
    """A plan in criteria notation ('A / B; C' or 'A / B → C') as a list of steps of codes."""
    text = text.strip()
    if text in ("", "—"):
        return []
    steps = text.replace("→", ";").split(";")
    return [[P(region, item) for item in step.split(" / ")] for step in steps]


def steps_of(body: dict[str, Any]) -> list[list[str]]:
    """The response's plan as steps, checking that `step` numbers run 1, 2, ... in order."""
    steps: list[list[str]] = []
    for item in body["recommended_procedures"]:
        step = item["step"]
        assert isinstance(step, int) and step >= 1, item
        if step == len(steps) + 1:
            steps.append([])
        assert step == len(steps), f"steps out of order: {body['recommended_procedures']}"
        steps[-1].append(item["code"])
    codes = [item["code"] for item in body["recommended_procedures"]]
    assert len(codes) == len(set(codes)), f"a procedure appears twice: {codes}"
    return steps


def alerts(body: dict[str, Any]) -> list[str]:
    return [a["code"] for a in body["safety"]["alerts"]]


def alert(body: dict[str, Any], code: str) -> dict[str, Any]:
    found = [a for a in body["safety"]["alerts"] if a["code"] == code]
    assert len(found) == 1, f"expected one {code} alert: {body['safety']}"
    return found[0]


def text_of(body: dict[str, Any]) -> str:
    return " ".join(body["reasons"])


def request(region: str, age: float, weeks: float, findings: tuple[str, ...] | list[str] = (),
            *, care: float | None = None, candidate: bool | None = None,
            contra: tuple[str, ...] | list[str] = (), egfr: float | None = None,
            requested: str | None = None, days: int | None = None) -> dict[str, Any]:
    """An API request body built from the criteria's shorthand."""
    body: dict[str, Any] = {
        "patient": {"age": age},
        "region": region,
        "symptom_duration_weeks": weeks,
        "findings": list(findings),
    }
    if care is not None:
        body["conservative_care_weeks"] = care
    if candidate is not None:
        body["intervention_candidate"] = candidate
    if contra:
        body["contraindications"] = list(contra)
    if egfr is not None:
        body["egfr"] = egfr
    if requested is not None:
        body["requested_procedure"] = P(region, requested)
    if days is not None:
        body["days_since_injury"] = days
    return body


@pytest.fixture
def decide(client, evaluator_headers):
    """POST /v1/decisions; asserts 201 under rule set 2026.2.0 and returns the body."""

    def _decide(body: dict[str, Any]) -> dict[str, Any]:
        response = client.post("/v1/decisions", json=body, headers=evaluator_headers)
        assert response.status_code == 201, (response.status_code, response.get_json())
        result = response.get_json()
        assert result["ruleset"]["version"] == VERSION
        assert result["appropriateness"] == result["requested_procedure"]["rating"]
        return result

    return _decide


@pytest.fixture
def labels(client, evaluator_headers):
    """Vocabulary labels (findings, contraindications, procedures) of the version in force."""
    cache: dict[str, str] = {}

    def _label(code: str) -> str:
        if not cache:
            response = client.get(f"/v1/vocabulary?ruleset_version={VERSION}",
                                  headers=evaluator_headers)
            assert response.status_code == 200
            vocab = response.get_json()
            for kind in ("findings", "contraindications", "procedures"):
                for entry in vocab[kind]:
                    cache[entry["code"]] = entry["label"]
        return cache[code]

    return _label


# ------------------------------------------------------------------------------------------
# Exact texts (§3.11, §11)
# ------------------------------------------------------------------------------------------

ASSUMED_INJURY = {"field": "days_since_injury", "assumed": "0-7",
                  "message": "Injury date not given: treated as an injury in the last 7 days."}
R_INJURY_UNKNOWN = "Injury date not given: treated as within 7 days."
R_INJURY_OLD = "The injury was more than 4 weeks ago and is not treated as an acute injury."
CSPINE_LOW_RISK_LABEL = "Low risk by NEXUS or Canadian C-spine rule (documented)"
R_C1 = ("No documented low-risk result from NEXUS or the Canadian C-spine rule: the neck is not "
        "cleared, so CT is indicated. If the rule was applied and was negative, record it "
        f"(\"{CSPINE_LOW_RISK_LABEL}\"): no imaging is then needed.")
R_CES = ("Emergency: refer now for same-day MRI (GIRFT pathway). Record pre- and post-void "
         "bladder volumes; a residual over 200 ml makes CES more likely, under 200 ml does not "
         "exclude it; catheterise above 600 ml. Give the CES safety-net card.")
R_CES_BILATERAL = ("If the lumbar MRI does not explain weakness of both legs, image the "
                   "thoracic cord.")
R_MSCC = "Contact the MSCC coordinator now and follow the local MSCC pathway (NICE NG234)."
R_T = ("Thoracic pain: consider non-spinal causes before or alongside spine imaging — acute "
       "aortic syndrome (sudden severe tearing pain), acute coronary syndrome, pulmonary "
       "embolism, pneumonia or pleural disease, gallbladder, pancreas or kidney disease, and "
       "herpes zoster (band-like pain before the rash).")
R_SPA = "Refer to rheumatology for assessment of axial spondyloarthritis."
R_CHILD = "Paediatric criteria applied (ACR Back Pain–Child)."
R_CHILD_TRAUMA = ("Injured child under 16: apply paediatric trauma criteria (ACR Suspected "
                  "Spine Trauma–Child; PECARN).")
ABNORMAL_IMAGING_LABEL = "Abnormal spine imaging"


def r_weak(markers_label: str) -> str:
    return ("Weaker cancer risk factors: radiographs with ESR/CRP (and a blood count) first. If "
            f"either is abnormal, record it (\"{ABNORMAL_IMAGING_LABEL}\", \"{markers_label}\"): "
            "the answer becomes suspected malignancy or suspected infection (MRI within a week).")


# ------------------------------------------------------------------------------------------
# Scenario rows (§5-§8): a matching case and a near miss for every row
# ------------------------------------------------------------------------------------------


def case(name: str, region: str, age: float, weeks: float, findings: tuple[str, ...] = (), *,
         scenario: str, urgency: str, rating: str, plan: str = "",
         contributing: tuple[str, ...] = (), also: tuple[str, ...] | None = None,
         ratings: dict[str, str] | None = None, assumed: bool = False,
         marks: Any = (), **fields: Any) -> Any:
    """One scenario case. ``rating`` is the rating of the region's MRI w/o (the default
    requested study); ``ratings`` the ratings of other requested studies (criteria shorthand);
    ``also`` the expected `also_matched` (scenario ids without region prefix), or None."""
    expected = {"scenario": f"{region}.{scenario}", "urgency": urgency, "rating": rating,
                "plan": plan, "contributing": [f"{region}.{s}" for s in contributing],
                "also": None if also is None else [f"{region}.{s}" for s in also],
                "ratings": ratings or {}, "assumed": assumed}
    body = request(region, age, weeks, findings, **fields)
    return pytest.param(body, expected, id=name, marks=marks)


LUMBAR = [
    # 1 ankylosed_spine_trauma
    case("L1-match-fresh", "lumbar", 60, 0.5, ("ankylosed_spine", "minor_trauma"), days=3,
         scenario="ankylosed_spine_trauma", urgency="emergent", rating=UA,
         plan="CT w/o / XR → MRI w/o", also=("low_velocity_trauma",),
         ratings={"CTM": UNA, "MRI w/wo": UNA, "CT w/o": UA}),
    case("L1-match-8-28d-urgent", "lumbar", 60, 2, ("ankylosed_spine", "minor_trauma"), days=14,
         scenario="ankylosed_spine_trauma", urgency="urgent", rating=UA,
         plan="CT w/o / XR → MRI w/o", also=("low_velocity_trauma",)),
    case("L1-miss-injury-40d", "lumbar", 60, 6, ("ankylosed_spine", "minor_trauma"), days=40,
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    # 2 trauma_with_deficit
    case("L2-match-fresh", "lumbar", 30, 0, ("minor_trauma", "neurologic_deficit"), days=2,
         scenario="trauma_with_deficit", urgency="emergent", rating=UA, plan="CT w/o → MRI w/o",
         also=("low_velocity_trauma", "radiculopathy_conservative"),
         ratings={"CTM": MBA, "XR": UNA, "CT w/o": UA}),
    case("L2-match-14d-urgent", "lumbar", 30, 2, ("minor_trauma", "neurologic_deficit"), days=14,
         scenario="trauma_with_deficit", urgency="urgent", rating=UA, plan="CT w/o → MRI w/o",
         also=("low_velocity_trauma", "radiculopathy_conservative")),
    case("L2-match-14d-severe-union", "lumbar", 30, 2, ("minor_trauma", "severe_motor_deficit"),
         days=14, scenario="trauma_with_deficit", urgency="emergent", rating=UA,
         plan="CT w/o → MRI w/o / MRI w/wo",
         contributing=("trauma_with_deficit", "severe_or_progressive_deficit"),
         also=("severe_or_progressive_deficit", "low_velocity_trauma"),
         ratings={"MRI w/wo": UA, "CTM": MBA}),
    case("L2-miss-29d", "lumbar", 30, 5, ("minor_trauma", "neurologic_deficit"), days=29,
         scenario="radiculopathy_conservative", urgency="none", rating=UNA, plan="", also=()),
    # 3 trauma_high_risk
    case("L3-match-T16", "lumbar", 40, 0, ("minor_trauma", "intoxication", "distracting_injury"),
         days=0, scenario="trauma_high_risk", urgency="emergent", rating=UNA, plan="CT w/o",
         also=("low_velocity_trauma",), ratings={"CT w/o": UA, "XR": MBA, "CTM": UNA}),
    case("L3-match-10d-urgent", "lumbar", 40, 1.5, ("significant_trauma",), days=10,
         scenario="trauma_high_risk", urgency="urgent", rating=UNA, plan="CT w/o",
         also=("low_velocity_trauma",)),
    case("L3-miss-no-injury", "lumbar", 40, 0, ("intoxication", "altered_mental_status"),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    # 4 suspected_mscc
    case("L4-match-T25", "lumbar", 60, 3, ("history_of_cancer", "radiculopathy"),
         scenario="suspected_mscc", urgency="emergent", rating=UA,
         plan="L-MRI w/wo / L-MRI w/o; T-MRI w/wo / T-MRI w/o; C-MRI w/wo / C-MRI w/o",
         also=("suspected_malignancy", "radiculopathy_conservative"),
         ratings={"CTM": MBA, "CT w/o": MBA, "CT w/": MBA, "XR": UNA}),
    case("L4-miss-T24", "lumbar", 60, 3, ("history_of_cancer",),
         scenario="suspected_malignancy", urgency="urgent", rating=UA,
         plan="L-MRI w/wo / L-MRI w/o; T-MRI w/wo / T-MRI w/o; C-MRI w/wo / C-MRI w/o",
         also=(), ratings={"XR": MBA, "CTM": MBA}),
    # 5 infection_with_deficit
    case("L5-match", "lumbar", 40, 1, ("iv_drug_use", "neurologic_deficit"),
         scenario="infection_with_deficit", urgency="emergent", rating=UA,
         plan="MRI w/wo / MRI w/o", also=("suspected_infection", "radiculopathy_conservative"),
         ratings={"CT w/": MBA, "CTM": MBA, "CT w/o": UNA, "XR": UNA}),
    case("L5-miss-radicular-pain-only", "lumbar", 40, 1, ("iv_drug_use", "radiculopathy"),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=("radiculopathy_conservative",), ratings={"CT w/o": MBA}),
    # 6 cauda_equina
    case("L6-match-T01", "lumbar", 38, 1, ("bilateral_radiculopathy", "bilateral_leg_weakness"),
         scenario="cauda_equina", urgency="emergent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=(), ratings={"CTM": MBA, "CT w/o": MBA, "XR": UNA, "MRI w/wo": UA}),
    case("L6-miss-sexual-dysfunction-alone", "lumbar", 40, 1, ("new_sexual_dysfunction",),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    # 7 cord_compression
    case("L7-match-subacute-urgent", "lumbar", 55, 8, ("myelopathy_signs",),
         scenario="cord_compression", urgency="urgent", rating=MBA,
         plan="C-MRI w/o / C-MRI w/wo → T-MRI w/o / T-MRI w/wo", also=(),
         ratings={"CTM": UNA, "MRI w/wo": UNA}),
    case("L7-match-acute-emergent", "lumbar", 55, 2, ("myelopathy_signs",),
         scenario="cord_compression", urgency="emergent", rating=MBA,
         plan="C-MRI w/o / C-MRI w/wo → T-MRI w/o / T-MRI w/wo", also=()),
    case("L7-miss-age17", "lumbar", 17, 8, ("myelopathy_signs",),
         scenario="child_serious_pathology", urgency="urgent", rating=UA,
         plan="MRI w/wo / MRI w/o → T-MRI w/wo / T-MRI w/o → C-MRI w/wo / C-MRI w/o", also=()),
    # 8 febrile_infection
    case("L8-match-T22", "lumbar", 55, 1, ("fever", "diabetes"),
         scenario="febrile_infection", urgency="emergent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=("suspected_infection",),
         ratings={"CT w/": MBA, "CT w/o": MBA, "CTM": MBA, "XR": MBA}),
    case("L8-miss-markers-not-risk", "lumbar", 55, 1, ("fever", "elevated_inflammatory_markers"),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=()),
    # 9 severe_or_progressive_deficit
    case("L9-match", "lumbar", 40, 2, ("severe_motor_deficit",),
         scenario="severe_or_progressive_deficit", urgency="emergent", rating=UA,
         plan="MRI w/o / MRI w/wo", also=(), ratings={"CT w/o": MBA, "CTM": MBA, "XR": UNA}),
    case("L9-miss-stable-deficit", "lumbar", 40, 2, ("neurologic_deficit",),
         scenario="radiculopathy_conservative", urgency="none", rating=UNA, plan="", also=()),
    # 10 suspected_infection
    case("L10-match-procedure", "lumbar", 40, 3, ("recent_spinal_procedure",),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=(), ratings={"CT w/": MBA, "CT w/o": MBA, "CTM": MBA, "XR": MBA}),
    case("L10-match-wound", "lumbar", 40, 3, ("wound_over_spine",),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=()),
    case("L10-miss-risk-factor-only", "lumbar", 40, 3, ("indwelling_vascular_device",),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    # 11 suspected_malignancy (cancer case in L4-miss-T24)
    case("L11-match-weak-factor-plus-imaging", "lumbar", 55, 2,
         ("night_pain", "abnormal_spine_imaging"),
         scenario="suspected_malignancy", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=("abnormal_imaging",), ratings={"XR": MBA, "CT w/": MBA}),
    case("L11-miss-weak-factor-only", "lumbar", 55, 2, ("night_pain",),
         scenario="weak_malignancy_risk", urgency="routine", rating=MBA, plan="XR", also=()),
    # 12 abnormal_imaging
    case("L12-match", "lumbar", 55, 2, ("abnormal_spine_imaging",),
         scenario="abnormal_imaging", urgency="urgent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=(), ratings={"CT w/o": MBA, "XR": UNA}),
    case("L12-miss-degenerative", "lumbar", 55, 2, ("degenerative_changes_on_radiographs",),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    # 13 fracture_with_deficit
    case("L13-match-age72", "lumbar", 72, 2, ("neurologic_deficit",),
         scenario="fracture_with_deficit", urgency="urgent", rating=UA,
         plan="MRI w/o / CT w/o / XR", also=("fracture_risk", "radiculopathy_conservative"),
         ratings={"CTM": MBA, "MRI w/wo": UNA}),
    case("L13-miss-age69", "lumbar", 69, 2, ("neurologic_deficit",),
         scenario="radiculopathy_conservative", urgency="none", rating=UNA, plan="", also=()),
    # 14 low_velocity_trauma
    case("L14-match-T21", "lumbar", 45, 1, ("minor_trauma",), days=2,
         scenario="low_velocity_trauma", urgency="routine", rating=UA, plan="XR / MRI w/o / CT w/o",
         also=(), ratings={"MRI w/wo": MBA, "CTM": MBA, "XR": UA, "CT w/o": UA}),
    case("L14-match-age65-urgent", "lumbar", 65, 1, ("minor_trauma",), days=2,
         scenario="low_velocity_trauma", urgency="urgent", rating=UA, plan="XR / MRI w/o / CT w/o",
         also=()),
    case("L14-match-age64-routine", "lumbar", 64, 1, ("minor_trauma",), days=2,
         scenario="low_velocity_trauma", urgency="routine", rating=UA,
         plan="XR / MRI w/o / CT w/o", also=()),
    case("L14-match-age16", "lumbar", 16, 1, ("minor_trauma",), days=2,
         scenario="low_velocity_trauma", urgency="routine", rating=UA,
         plan="XR / MRI w/o / CT w/o", also=()),
    case("L14-miss-29d", "lumbar", 45, 5, ("minor_trauma",), days=29,
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    # 15 prior_surgery
    case("L15-match", "lumbar", 45, 3, ("prior_spine_surgery",),
         scenario="prior_surgery", urgency="routine", rating=UA, plan="MRI w/wo / MRI w/o / XR",
         also=(), ratings={"CT w/o": MBA, "CTM": MBA, "CT w/": UNA}),
    case("L15-miss-age17", "lumbar", 17, 3, ("prior_spine_surgery",),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
    # 16 fracture_risk
    case("L16-match-age70", "lumbar", 70, 2, (),
         scenario="fracture_risk", urgency="routine", rating=UA, plan="XR / MRI w/o / CT w/o",
         also=(), ratings={"MRI w/wo": MBA, "CTM": MBA}),
    case("L16-match-osteoporosis", "lumbar", 50, 2, ("osteoporosis",),
         scenario="fracture_risk", urgency="routine", rating=UA, plan="XR / MRI w/o / CT w/o",
         also=()),
    case("L16-miss-age69", "lumbar", 69, 2, (),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    # 17 axial_spa_mri
    case("L17-match-T28", "lumbar", 28, 26,
         ("inflammatory_back_pain", "sacroiliac_radiographs_nondiagnostic"),
         scenario="axial_spa_mri", urgency="routine", rating=MBA, plan="SI MRI w/o",
         also=("axial_spa_suspected",), ratings={"SI MRI w/o": UA, "SI XR": UNA}),
    case("L17-miss-11w", "lumbar", 28, 11,
         ("inflammatory_back_pain", "sacroiliac_radiographs_nondiagnostic"),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    # 18 axial_spa_suspected
    case("L18-match-T27", "lumbar", 28, 26, ("inflammatory_back_pain",),
         scenario="axial_spa_suspected", urgency="routine", rating=UNA, plan="SI XR", also=(),
         ratings={"SI XR": UA, "SI MRI w/o": MBA, "XR": MBA}),
    case("L18-match-12w", "lumbar", 28, 12, ("inflammatory_back_pain",),
         scenario="axial_spa_suspected", urgency="routine", rating=UNA, plan="SI XR", also=()),
    case("L18-miss-11.9w", "lumbar", 28, 11.9, ("inflammatory_back_pain",),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    # 19 weak_malignancy_risk
    case("L19-match-T13", "lumbar", 55, 2, ("unexplained_weight_loss",),
         scenario="weak_malignancy_risk", urgency="routine", rating=MBA, plan="XR", also=(),
         ratings={"XR": UA, "MRI w/wo": MBA, "CT w/o": UNA}),
    case("L19-miss-T13b", "lumbar", 55, 2, ("unexplained_weight_loss",
                                             "elevated_inflammatory_markers"),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=("suspected_malignancy",)),
    # 20 surgical_candidate
    case("L20-match-T02-care6", "lumbar", 45, 8, ("radiculopathy", "neurologic_deficit"),
         care=6, candidate=True, scenario="surgical_candidate", urgency="routine", rating=UA,
         plan="MRI w/o", also=("radiculopathy_conservative",),
         ratings={"MRI w/wo": MBA, "CT w/o": MBA, "CTM": MBA, "XR": MBA}),
    case("L20-match-6w-no-findings", "lumbar", 45, 6, (), care=6, candidate=True,
         scenario="surgical_candidate", urgency="routine", rating=UA, plan="MRI w/o", also=()),
    case("L20-miss-care5", "lumbar", 45, 8, ("radiculopathy", "neurologic_deficit"),
         care=5, candidate=True, scenario="radiculopathy_conservative", urgency="none",
         rating=UNA, plan="", also=()),
    case("L20-miss-not-candidate", "lumbar", 45, 8, ("radiculopathy",), care=6, candidate=False,
         scenario="radiculopathy_conservative", urgency="none", rating=UNA, plan="", also=()),
    # 21 radiculopathy_conservative
    case("L21-match-T02", "lumbar", 45, 8, ("radiculopathy", "neurologic_deficit"),
         scenario="radiculopathy_conservative", urgency="none", rating=UNA, plan="", also=(),
         ratings={"XR": UNA, "MRI w/wo": UNA}),
    case("L21-miss-bilateral-is-ces", "lumbar", 45, 8, ("bilateral_radiculopathy",),
         scenario="cauda_equina", urgency="emergent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=()),
    # 22 uncomplicated
    case("L22-match", "lumbar", 45, 2, (),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=(),
         ratings={"XR": UNA, "CT w/o": UNA}),
    case("L22-miss-age17", "lumbar", 17, 2, (),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
]

THORACIC = [
    case("T1-match", "thoracic", 60, 0.5, ("ankylosed_spine", "minor_trauma"), days=3,
         scenario="ankylosed_spine_trauma", urgency="emergent", rating=UA,
         plan="CT w/o / XR → MRI w/o", also=("low_velocity_trauma",)),
    case("T1-miss-40d", "thoracic", 60, 6, ("ankylosed_spine", "minor_trauma"), days=40,
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    case("T2-match-14d-urgent", "thoracic", 30, 4, ("minor_trauma", "neurologic_deficit"),
         days=14, scenario="trauma_with_deficit", urgency="urgent", rating=UA,
         plan="CT w/o → MRI w/o", also=("cord_compression", "low_velocity_trauma"),
         ratings={"CTM": MBA, "XR": UNA}),
    case("T2-match-fresh-union-with-cord", "thoracic", 30, 0,
         ("minor_trauma", "neurologic_deficit"),
         days=2, scenario="trauma_with_deficit", urgency="emergent", rating=UA,
         plan="CT w/o → MRI w/o / MRI w/wo",
         contributing=("trauma_with_deficit", "cord_compression"),
         also=("cord_compression", "low_velocity_trauma"),
         ratings={"MRI w/wo": UA, "XR": MBA, "CT w/": MBA}),
    case("T2-miss-29d", "thoracic", 30, 5, ("minor_trauma", "neurologic_deficit"), days=29,
         scenario="cord_compression", urgency="urgent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=()),
    case("T3-match", "thoracic", 40, 0, ("significant_trauma",), days=0,
         scenario="trauma_high_risk", urgency="emergent", rating=UNA, plan="CT w/o",
         also=("low_velocity_trauma",), ratings={"XR": MBA, "CT w/o": UA}),
    case("T3-miss-no-injury", "thoracic", 40, 0, ("altered_mental_status",),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    case("T4-match", "thoracic", 60, 2, ("history_of_cancer", "radiculopathy"),
         scenario="suspected_mscc", urgency="emergent", rating=UA,
         plan="MRI w/wo / MRI w/o → C-MRI w/wo / C-MRI w/o → L-MRI w/wo / L-MRI w/o",
         also=("suspected_malignancy", "radiculopathy"),
         ratings={"CTM": MBA, "CT w/o": MBA, "CT w/": MBA, "XR": UNA}),
    case("T4-miss-cancer-only", "thoracic", 60, 2, ("history_of_cancer",),
         scenario="suspected_malignancy", urgency="urgent", rating=UA,
         plan="MRI w/wo / MRI w/o → C-MRI w/wo / C-MRI w/o → L-MRI w/wo / L-MRI w/o", also=()),
    case("T5-match", "thoracic", 40, 8, ("immunosuppression", "myelopathy_signs"),
         scenario="infection_with_deficit", urgency="emergent", rating=UA,
         plan="MRI w/wo / MRI w/o", also=("cord_compression", "suspected_infection"),
         ratings={"CT w/": MBA, "CTM": MBA, "XR": UNA}),
    case("T5-miss", "thoracic", 40, 8, ("immunosuppression", "radiculopathy"),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=("radiculopathy",)),
    case("T6-match", "thoracic", 50, 1, ("urinary_retention",),
         scenario="cauda_equina", urgency="emergent", rating=UA,
         plan="MRI w/o / MRI w/wo → L-MRI w/o / L-MRI w/wo", also=(),
         ratings={"CTM": MBA, "CT w/o": UNA}),
    case("T6-miss-sexual-dysfunction-thoracic-radicular", "thoracic", 50, 1,
         ("new_sexual_dysfunction", "radiculopathy"),
         scenario="radiculopathy", urgency="routine", rating=UA, plan="MRI w/o", also=()),
    case("T7-match-urgent", "thoracic", 50, 8, ("myelopathy_signs",),
         scenario="cord_compression", urgency="urgent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=(), ratings={"XR": MBA, "CTM": MBA, "CT w/o": MBA, "CT w/": MBA}),
    case("T7-match-deficit", "thoracic", 50, 8, ("neurologic_deficit",),
         scenario="cord_compression", urgency="urgent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=()),
    case("T7-match-acute-emergent", "thoracic", 50, 2, ("myelopathy_signs",),
         scenario="cord_compression", urgency="emergent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=()),
    case("T7-miss-radicular", "thoracic", 50, 8, ("radiculopathy",),
         scenario="radiculopathy", urgency="routine", rating=UA, plan="MRI w/o", also=()),
    case("T8-match", "thoracic", 50, 1, ("fever", "long_term_corticosteroids"),
         scenario="febrile_infection", urgency="emergent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=("suspected_infection", "fracture_risk")),
    case("T8-miss-fever-only", "thoracic", 50, 1, ("fever",),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=()),
    case("T9-match", "thoracic", 50, 8, ("severe_motor_deficit",),
         scenario="severe_or_progressive_deficit", urgency="emergent", rating=UA,
         plan="MRI w/o / MRI w/wo", also=("cord_compression",),
         ratings={"CTM": MBA, "CT w/o": MBA, "XR": UNA}),
    case("T9-miss-stable-deficit", "thoracic", 50, 8, ("neurologic_deficit",),
         scenario="cord_compression", urgency="urgent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=()),
    case("T10-match", "thoracic", 40, 2, ("elevated_inflammatory_markers",),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=(), ratings={"XR": MBA, "CTM": MBA}),
    case("T10-miss-diabetes", "thoracic", 40, 2, ("diabetes",),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    case("T11-match", "thoracic", 60, 2, ("unexplained_weight_loss", "abnormal_spine_imaging"),
         scenario="suspected_malignancy", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=("abnormal_imaging",)),
    case("T11-miss", "thoracic", 60, 2, ("unexplained_weight_loss",),
         scenario="weak_malignancy_risk", urgency="routine", rating=MBA, plan="XR", also=(),
         ratings={"MRI w/wo": MBA, "XR": UA}),
    case("T12-match", "thoracic", 60, 2, ("abnormal_spine_imaging",),
         scenario="abnormal_imaging", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=(), ratings={"CT w/o": MBA}),
    case("T12-miss", "thoracic", 60, 2, ("degenerative_changes_on_radiographs",),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    case("T13-match", "thoracic", 45, 1, ("minor_trauma",), days=2,
         scenario="low_velocity_trauma", urgency="routine", rating=UA,
         plan="XR / MRI w/o / CT w/o", also=(), ratings={"MRI w/wo": MBA, "CTM": MBA}),
    case("T13-match-age66-urgent", "thoracic", 66, 1, ("minor_trauma",), days=2,
         scenario="low_velocity_trauma", urgency="urgent", rating=UA,
         plan="XR / MRI w/o / CT w/o", also=()),
    case("T13-miss-30d", "thoracic", 45, 5, ("minor_trauma",), days=30,
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    case("T14-match", "thoracic", 45, 3, ("prior_spine_surgery",),
         scenario="prior_surgery", urgency="routine", rating=UA, plan="MRI w/wo / MRI w/o / XR",
         also=(), ratings={"CT w/o": MBA, "CTM": MBA}),
    case("T14-miss-age17", "thoracic", 17, 3, ("prior_spine_surgery",),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
    case("T15-match", "thoracic", 50, 2, ("osteoporosis",),
         scenario="fracture_risk", urgency="routine", rating=UA, plan="XR / MRI w/o / CT w/o",
         also=(), ratings={"MRI w/wo": MBA}),
    case("T15-match-age70", "thoracic", 70, 2, (),
         scenario="fracture_risk", urgency="routine", rating=UA, plan="XR / MRI w/o / CT w/o",
         also=()),
    case("T15-miss-age69", "thoracic", 69, 2, (),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    case("T16-match-T06", "thoracic", 35, 3, ("radiculopathy",),
         scenario="radiculopathy", urgency="routine", rating=UA, plan="MRI w/o", also=(),
         ratings={"XR": MBA, "MRI w/wo": UNA}),
    case("T16-miss-deficit-is-cord", "thoracic", 35, 3, ("neurologic_deficit",),
         scenario="cord_compression", urgency="emergent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=()),
    case("T17-match", "thoracic", 28, 26,
         ("inflammatory_back_pain", "sacroiliac_radiographs_nondiagnostic"),
         scenario="axial_spa_mri", urgency="routine", rating=UNA, plan="SI MRI w/o",
         also=("axial_spa_suspected",), ratings={"XR": UNA}),
    case("T17-miss", "thoracic", 28, 26, ("sacroiliac_radiographs_nondiagnostic",),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    case("T18-match", "thoracic", 28, 26, ("inflammatory_back_pain",),
         scenario="axial_spa_suspected", urgency="routine", rating=UNA, plan="SI XR", also=(),
         ratings={"XR": MBA}),
    case("T18-miss-11w", "thoracic", 28, 11, ("inflammatory_back_pain",),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    case("T19-match", "thoracic", 55, 2, ("night_pain",),
         scenario="weak_malignancy_risk", urgency="routine", rating=MBA, plan="XR", also=(),
         ratings={"MRI w/wo": MBA}),
    case("T19-miss", "thoracic", 55, 2, ("night_pain", "elevated_inflammatory_markers"),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=("suspected_malignancy",)),
    case("T20-match-T26", "thoracic", 50, 8, (), care=6,
         scenario="failed_conservative_care", urgency="routine", rating=UNA, plan="XR", also=(),
         ratings={"XR": MBA, "CT w/o": UNA}),
    case("T20-miss-care5", "thoracic", 50, 8, (), care=5,
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
    case("T21-match", "thoracic", 40, 1, (),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=(),
         ratings={"XR": UNA}),
    case("T21-miss-age17", "thoracic", 17, 1, (),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
]

CERVICAL = [
    case("C1-match-low-risk-documented", "cervical", 60, 0.5,
         ("ankylosed_spine", "minor_trauma", "cspine_rule_low_risk"), days=3,
         scenario="ankylosed_spine_trauma", urgency="emergent", rating=UA,
         plan="CT w/o / XR → MRI w/o", also=("trauma_low_risk",), ratings={"CTM": UNA}),
    case("C1-match-union-not-cleared", "cervical", 60, 0.5, ("ankylosed_spine", "minor_trauma"),
         days=3, scenario="ankylosed_spine_trauma", urgency="emergent", rating=UA,
         plan="CT w/o / XR → MRI w/o",
         contributing=("ankylosed_spine_trauma", "trauma_rule_not_documented"),
         also=("trauma_rule_not_documented",)),
    case("C1-miss-40d", "cervical", 60, 0.5, ("ankylosed_spine", "minor_trauma"), days=40,
         scenario="neck_pain", urgency="none", rating=UNA, plan="", also=()),
    case("C2-match-fresh-union", "cervical", 40, 0, ("minor_trauma", "radiculopathy"), days=1,
         scenario="trauma_with_deficit", urgency="emergent", rating=UA, plan="CT w/o → MRI w/o",
         contributing=("trauma_with_deficit", "trauma_imaging_indicated"),
         also=("trauma_imaging_indicated", "radiculopathy_early"),
         ratings={"CTM": MBA, "XR": MBA}),
    case("C2-match-14d-urgent", "cervical", 40, 2, ("minor_trauma", "radiculopathy"), days=14,
         scenario="trauma_with_deficit", urgency="urgent", rating=UA, plan="CT w/o → MRI w/o",
         also=("trauma_imaging_indicated", "radiculopathy_early"),
         ratings={"XR": UNA, "CTM": MBA}),
    case("C2-miss-29d", "cervical", 40, 0.5, ("minor_trauma", "radiculopathy"), days=29,
         scenario="radiculopathy_early", urgency="none", rating=MBA, plan="", also=()),
    case("C3-match-T09", "cervical", 17, 0, ("significant_trauma", "midline_cervical_tenderness"),
         days=0, scenario="trauma_imaging_indicated", urgency="emergent", rating=UNA,
         plan="CT w/o", also=(), ratings={"CT w/o": UA, "XR": MBA}),
    case("C3-match-T10", "cervical", 72, 0, ("minor_trauma",),
         scenario="trauma_imaging_indicated", urgency="emergent", rating=UNA, plan="CT w/o",
         also=(), assumed=True, ratings={"CT w/o": UA}),
    case("C3-match-10d-urgent", "cervical", 40, 2, ("significant_trauma",), days=10,
         scenario="trauma_imaging_indicated", urgency="urgent", rating=UNA, plan="CT w/o",
         also=()),
    case("C3-miss-age64", "cervical", 64, 0, ("minor_trauma",),
         scenario="trauma_rule_not_documented", urgency="emergent", rating=UNA, plan="CT w/o",
         also=(), assumed=True),
    case("C4-match-T17", "cervical", 30, 0, ("minor_trauma",), days=1,
         scenario="trauma_rule_not_documented", urgency="emergent", rating=UNA, plan="CT w/o",
         also=(), ratings={"CT w/o": UA, "XR": MBA}),
    case("C4-miss-T18", "cervical", 30, 0, ("minor_trauma", "cspine_rule_low_risk"), days=1,
         scenario="trauma_low_risk", urgency="none", rating=UNA, plan="", also=(),
         ratings={"CT w/o": UNA, "XR": UNA}),
    case("C5-match-age64", "cervical", 64, 0, ("minor_trauma", "cspine_rule_low_risk"), days=1,
         scenario="trauma_low_risk", urgency="none", rating=UNA, plan="", also=()),
    case("C5-miss-age65", "cervical", 65, 0, ("minor_trauma", "cspine_rule_low_risk"), days=1,
         scenario="trauma_imaging_indicated", urgency="emergent", rating=UNA, plan="CT w/o",
         also=()),
    case("C5-miss-T19", "cervical", 30, 0,
         ("minor_trauma", "cspine_rule_low_risk", "midline_cervical_tenderness"), days=1,
         scenario="trauma_imaging_indicated", urgency="emergent", rating=UNA, plan="CT w/o",
         also=(), ratings={"CT w/o": UA}),
    case("C6-match-T20", "cervical", 30, 2, ("minor_trauma",), days=14,
         scenario="trauma_subacute", urgency="none", rating=MBA, plan="", also=(),
         ratings={"XR": MBA, "CT w/o": MBA, "CTM": UNA}),
    case("C6-match-8d", "cervical", 30, 2, ("minor_trauma",), days=8,
         scenario="trauma_subacute", urgency="none", rating=MBA, plan="", also=()),
    case("C6-match-28d", "cervical", 30, 2, ("minor_trauma",), days=28,
         scenario="trauma_subacute", urgency="none", rating=MBA, plan="", also=()),
    case("C6-miss-7d", "cervical", 30, 1, ("minor_trauma",), days=7,
         scenario="trauma_rule_not_documented", urgency="emergent", rating=UNA, plan="CT w/o",
         also=()),
    case("C6-miss-29d", "cervical", 30, 2, ("minor_trauma",), days=29,
         scenario="neck_pain", urgency="none", rating=UNA, plan="", also=()),
    case("C7-match", "cervical", 60, 2, ("history_of_cancer", "radiculopathy"),
         scenario="suspected_mscc", urgency="emergent", rating=UA,
         plan="MRI w/wo / MRI w/o → T-MRI w/wo / T-MRI w/o → L-MRI w/wo / L-MRI w/o",
         also=("suspected_malignancy", "radiculopathy_early"),
         ratings={"CTM": MBA, "CT w/": MBA, "XR": UNA}),
    case("C7-miss", "cervical", 60, 3, ("history_of_cancer",),
         scenario="suspected_malignancy", urgency="urgent", rating=UA,
         plan="MRI w/wo / MRI w/o → T-MRI w/wo / T-MRI w/o → L-MRI w/wo / L-MRI w/o", also=(),
         ratings={"CTM": UNA, "XR": MBA, "CT w/": MBA}),
    case("C8-match", "cervical", 40, 2, ("iv_drug_use", "neurologic_deficit"),
         scenario="infection_with_deficit", urgency="emergent", rating=UA,
         plan="MRI w/wo / MRI w/o", also=("suspected_infection", "radiculopathy_early"),
         ratings={"CT w/": MBA, "CTM": MBA}),
    case("C8-miss", "cervical", 40, 2, ("iv_drug_use", "radiculopathy"),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=("radiculopathy_early",)),
    case("C9-match", "cervical", 50, 2, ("saddle_anesthesia",),
         scenario="cauda_equina", urgency="emergent", rating=UA,
         plan="MRI w/o / MRI w/wo → T-MRI w/o / T-MRI w/wo → L-MRI w/o / L-MRI w/wo", also=(),
         ratings={"CTM": MBA, "CT w/o": UNA}),
    case("C9-miss-sexual-dysfunction-arm-radicular", "cervical", 50, 2,
         ("new_sexual_dysfunction", "radiculopathy"),
         scenario="radiculopathy_early", urgency="none", rating=MBA, plan="", also=()),
    case("C10-match-chronic-urgent", "cervical", 55, 20, ("myelopathy_signs",),
         scenario="cord_compression", urgency="urgent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=("chronic_neck_pain",), ratings={"CTM": MBA, "CT w/": MBA, "XR": UNA}),
    case("C10-match-acute-emergent", "cervical", 55, 2, ("myelopathy_signs",),
         scenario="cord_compression", urgency="emergent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=()),
    # row 23's condition has no duration limit: it also matches (below row 20) when chronic
    case("C10-miss", "cervical", 55, 20, ("radiculopathy",),
         scenario="radiculopathy_persistent", urgency="routine", rating=UA, plan="MRI w/o",
         also=("chronic_neck_pain", "radiculopathy_early")),
    case("C11-match", "cervical", 50, 1, ("fever", "immunosuppression"),
         scenario="febrile_infection", urgency="emergent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=("suspected_infection",), ratings={"CTM": UNA, "XR": MBA, "CT w/o": MBA}),
    case("C11-miss", "cervical", 50, 1, ("fever",),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=()),
    case("C12-match", "cervical", 50, 2, ("progressive_neurologic_deficit",),
         scenario="severe_or_progressive_deficit", urgency="emergent", rating=UA,
         plan="MRI w/o / MRI w/wo", also=(), ratings={"CTM": MBA, "CT w/o": MBA, "XR": UNA}),
    case("C12-miss", "cervical", 50, 2, ("neurologic_deficit",),
         scenario="radiculopathy_early", urgency="none", rating=MBA, plan="", also=()),
    case("C13-match", "cervical", 40, 2, ("recent_bacterial_infection",),
         scenario="suspected_infection", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=(), ratings={"CTM": UNA, "CT w/": MBA, "XR": MBA}),
    case("C13-miss", "cervical", 40, 2, ("long_term_corticosteroids",),
         scenario="fracture_risk", urgency="routine", rating=MBA, plan="XR / CT w/o", also=()),
    case("C14-match-cancer", "cervical", 60, 3, ("history_of_cancer",),
         scenario="suspected_malignancy", urgency="urgent", rating=UA,
         plan="MRI w/wo / MRI w/o → T-MRI w/wo / T-MRI w/o → L-MRI w/wo / L-MRI w/o", also=()),
    case("C14-match-weak-plus-imaging", "cervical", 55, 2, ("night_pain", "abnormal_spine_imaging"),
         scenario="suspected_malignancy", urgency="urgent", rating=UA, plan="MRI w/wo / MRI w/o",
         also=("abnormal_imaging",)),
    case("C14-miss-night-pain", "cervical", 55, 2, ("night_pain",),
         scenario="neck_pain", urgency="none", rating=UNA, plan="", also=()),
    case("C15-match", "cervical", 55, 2, ("abnormal_spine_imaging",),
         scenario="abnormal_imaging", urgency="urgent", rating=UA, plan="MRI w/o / MRI w/wo",
         also=(), ratings={"CT w/o": MBA}),
    case("C15-miss", "cervical", 55, 2, ("degenerative_changes_on_radiographs",),
         scenario="neck_pain", urgency="none", rating=UNA, plan="", also=()),
    case("C16-match", "cervical", 50, 3, ("prior_spine_surgery",),
         scenario="prior_surgery", urgency="routine", rating=MBA, plan="XR / CT w/o", also=(),
         ratings={"MRI w/wo": MBA, "CTM": MBA, "XR": UA}),
    case("C16-miss-age17", "cervical", 17, 3, ("prior_spine_surgery",),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
    case("C17-match", "cervical", 50, 3, ("opll_on_imaging",),
         scenario="opll", urgency="routine", rating=MBA, plan="CT w/o", also=(),
         ratings={"CTM": MBA, "XR": UNA}),
    case("C17-miss-age17", "cervical", 17, 3, ("opll_on_imaging",),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
    case("C18-match", "cervical", 50, 3, ("osteoporosis",),
         scenario="fracture_risk", urgency="routine", rating=MBA, plan="XR / CT w/o", also=(),
         ratings={"MRI w/wo": UNA}),
    case("C18-match-with-low-risk-injury", "cervical", 50, 0,
         ("minor_trauma", "osteoporosis", "cspine_rule_low_risk"), days=1,
         scenario="fracture_risk", urgency="routine", rating=MBA, plan="XR / CT w/o",
         also=("trauma_low_risk",)),
    case("C18-miss-age75-no-osteoporosis", "cervical", 75, 2, (),
         scenario="neck_pain", urgency="none", rating=UNA, plan="", also=()),
    case("C19-match", "cervical", 50, 13, ("degenerative_changes_on_radiographs",),
         scenario="degenerative_on_radiographs", urgency="routine", rating=UA, plan="MRI w/o",
         also=("chronic_neck_pain",), ratings={"CT w/o": MBA, "CTM": MBA, "XR": UNA}),
    case("C19-miss-12w", "cervical", 50, 12, ("degenerative_changes_on_radiographs",),
         scenario="neck_pain", urgency="none", rating=UNA, plan="", also=()),
    case("C20-match-T12-13w", "cervical", 45, 13, ("radiculopathy",),
         scenario="radiculopathy_persistent", urgency="routine", rating=UA, plan="MRI w/o",
         also=("chronic_neck_pain", "radiculopathy_early"),
         ratings={"XR": MBA, "CT w/o": MBA, "CTM": MBA}),
    case("C20-match-6w-candidate", "cervical", 45, 6, ("radiculopathy",), care=6,
         candidate=True, scenario="radiculopathy_persistent", urgency="routine", rating=UA,
         plan="MRI w/o", also=("radiculopathy_early",)),
    case("C20-miss-12w", "cervical", 45, 12, ("radiculopathy",),
         scenario="radiculopathy_early", urgency="none", rating=MBA, plan="", also=()),
    case("C21-match", "cervical", 40, 13, (),
         scenario="chronic_neck_pain", urgency="routine", rating=MBA, plan="XR", also=(),
         ratings={"XR": MBA, "CT w/o": UNA}),
    case("C21-miss-12w", "cervical", 40, 12, (),
         scenario="neck_pain", urgency="none", rating=UNA, plan="", also=()),
    case("C22-match", "cervical", 40, 2, ("cervicogenic_headache",),
         scenario="cervicogenic_headache", urgency="none", rating=MBA, plan="", also=(),
         ratings={"XR": MBA, "CT w/o": MBA, "CTM": UNA}),
    case("C22-miss-with-radiculopathy", "cervical", 40, 2,
         ("cervicogenic_headache", "radiculopathy"),
         scenario="radiculopathy_early", urgency="none", rating=MBA, plan="", also=()),
    case("C23-match-T12", "cervical", 45, 2, ("radiculopathy",),
         scenario="radiculopathy_early", urgency="none", rating=MBA, plan="", also=(),
         ratings={"XR": MBA, "CT w/o": UNA}),
    case("C23-miss", "cervical", 45, 2, (),
         scenario="neck_pain", urgency="none", rating=UNA, plan="", also=()),
    case("C24-match-T11", "cervical", 40, 1, (),
         scenario="neck_pain", urgency="none", rating=UNA, plan="", also=(),
         ratings={"XR": MBA, "CT w/o": UNA}),
    case("C24-miss-age17", "cervical", 17, 1, (),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
]

CHILD = [
    # c1 child_serious_pathology
    case("c1-L-T30", "lumbar", 12, 1, ("fever",),
         scenario="child_serious_pathology", urgency="urgent", rating=UA,
         plan="MRI w/wo / MRI w/o; T-MRI w/wo / T-MRI w/o; C-MRI w/wo / C-MRI w/o", also=(),
         ratings={"XR": MBA, "CT w/o": UNA}),
    case("c1-L-T31-age17-ces", "lumbar", 17, 1, ("saddle_anesthesia",),
         scenario="child_serious_pathology", urgency="emergent", rating=UA,
         plan="MRI w/wo / MRI w/o; T-MRI w/wo / T-MRI w/o; C-MRI w/wo / C-MRI w/o", also=()),
    case("c1-L-deficit-region-only", "lumbar", 12, 1, ("neurologic_deficit",),
         scenario="child_serious_pathology", urgency="urgent", rating=UA,
         plan="MRI w/wo / MRI w/o", also=()),
    case("c1-L-febrile-emergent", "lumbar", 12, 1, ("fever", "diabetes"),
         scenario="child_serious_pathology", urgency="emergent", rating=UA,
         plan="MRI w/wo / MRI w/o; T-MRI w/wo / T-MRI w/o; C-MRI w/wo / C-MRI w/o", also=()),
    case("c1-T-weight-loss", "thoracic", 10, 1, ("unexplained_weight_loss",),
         scenario="child_serious_pathology", urgency="urgent", rating=UA,
         plan="MRI w/wo / MRI w/o; C-MRI w/wo / C-MRI w/o; L-MRI w/wo / L-MRI w/o", also=()),
    case("c1-C-myelopathy-acute", "cervical", 10, 1, ("myelopathy_signs",),
         scenario="child_serious_pathology", urgency="emergent", rating=UA,
         plan="MRI w/wo / MRI w/o; T-MRI w/wo / T-MRI w/o; L-MRI w/wo / L-MRI w/o", also=()),
    case("c1-C-myelopathy-subacute-urgent", "cervical", 10, 6, ("myelopathy_signs",),
         scenario="child_serious_pathology", urgency="urgent", rating=UA,
         plan="MRI w/wo / MRI w/o; T-MRI w/wo / T-MRI w/o; L-MRI w/wo / L-MRI w/o", also=()),
    case("c1-C-age17-neck-injury-10d-fever", "cervical", 17, 1, ("minor_trauma", "fever"),
         days=10, scenario="child_serious_pathology", urgency="urgent", rating=UA,
         plan="MRI w/wo / MRI w/o; T-MRI w/wo / T-MRI w/o; L-MRI w/wo / L-MRI w/o",
         also=("trauma_subacute",)),
    case("c1-miss-night-pain", "lumbar", 12, 1, ("night_pain",),
         scenario="child_red_flag", urgency="routine", rating=MBA, plan="XR", also=()),
    # c2 child_trauma_under_16
    case("c2-L-T29", "lumbar", 10, 0, ("minor_trauma",), days=1,
         scenario="child_trauma_under_16", urgency="routine", rating=NC, plan="", also=(),
         ratings={"CT w/o": NC, "XR": NC}),
    case("c2-L-high-risk-emergent", "lumbar", 10, 0, ("significant_trauma",), days=1,
         scenario="child_trauma_under_16", urgency="emergent", rating=NC, plan="", also=()),
    case("c2-C-neck-not-cleared-emergent", "cervical", 10, 0, ("minor_trauma",), days=1,
         scenario="child_trauma_under_16", urgency="emergent", rating=NC, plan="", also=()),
    case("c2-C-low-risk-routine", "cervical", 10, 0, ("minor_trauma", "cspine_rule_low_risk"),
         days=1, scenario="child_trauma_under_16", urgency="routine", rating=NC, plan="", also=()),
    case("c2-C-subacute-routine", "cervical", 10, 2, ("minor_trauma",), days=14,
         scenario="child_trauma_under_16", urgency="routine", rating=NC, plan="", also=()),
    case("c2-T-routine", "thoracic", 12, 0, ("minor_trauma",), days=1,
         scenario="child_trauma_under_16", urgency="routine", rating=NC, plan="", also=()),
    case("c2-miss-age16", "lumbar", 16, 0, ("minor_trauma",), days=1,
         scenario="low_velocity_trauma", urgency="routine", rating=UA,
         plan="XR / MRI w/o / CT w/o", also=()),
    case("c2-miss-29d", "lumbar", 10, 1, ("minor_trauma",), days=29,
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
    # c3 child_red_flag
    case("c3-L-T08", "lumbar", 15, 8, ("night_pain",),
         scenario="child_red_flag", urgency="routine", rating=MBA, plan="XR", also=(),
         ratings={"XR": UA, "MRI w/wo": MBA, "CT w/o": UNA}),
    case("c3-T-radiculopathy", "thoracic", 12, 1, ("radiculopathy",),
         scenario="child_red_flag", urgency="routine", rating=MBA, plan="XR", also=()),
    case("c3-C-inflammatory", "cervical", 12, 1, ("inflammatory_back_pain",),
         scenario="child_red_flag", urgency="routine", rating=MBA, plan="XR", also=()),
    case("c3-age4", "lumbar", 4, 1, (),
         scenario="child_red_flag", urgency="routine", rating=MBA, plan="XR", also=()),
    case("c3-duration-4.5", "lumbar", 12, 4.5, (),
         scenario="child_red_flag", urgency="routine", rating=MBA, plan="XR", also=()),
    case("c3-miss-age5", "lumbar", 5, 1, (),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
    case("c3-miss-duration-4", "lumbar", 12, 4, (),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
    # c4 child_no_red_flags
    case("c4-L", "lumbar", 12, 1, (),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=(),
         ratings={"XR": UNA}),
    case("c4-T", "thoracic", 12, 1, (),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
    case("c4-C", "cervical", 12, 1, (),
         scenario="child_no_red_flags", urgency="none", rating=UNA, plan="", also=()),
    case("c4-miss-age18", "lumbar", 18, 1, (),
         scenario="uncomplicated", urgency="none", rating=UNA, plan="", also=()),
]


STAR_SCENARIOS = {"thoracic.failed_conservative_care", "cervical.chronic_neck_pain"}


def check_case(decide, body: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """Post ``body`` and compare with the expected answer; returns the response body."""
    region = body["region"]
    result = decide(body)
    assert result["scenario"]["id"] == expected["scenario"]
    assert result["urgency"] == expected["urgency"]
    assert result["appropriateness"] == expected["rating"]
    assert steps_of(result) == plan_of(region, expected["plan"])
    # plan items are the UA plan (rated UA), or the ★ MBA items of a scenario without one
    starred = expected["scenario"] in STAR_SCENARIOS
    for item in result["recommended_procedures"]:
        assert item["rating"] == (MBA if starred else UA), item
    assert result["contributing_scenarios"] == expected["contributing"]
    if expected["also"] is not None:
        assert result["also_matched"] == expected["also"]
    if expected["assumed"]:
        assert result["assumptions"] == [ASSUMED_INJURY]
    else:
        assert result["assumptions"] == []
    if region == "thoracic":
        assert R_T in text_of(result), "every thoracic answer carries R-T (§6, §11)"
    for item, rating in expected["ratings"].items():
        again = decide(dict(body, requested_procedure=P(region, item)))
        assert again["scenario"]["id"] == expected["scenario"]
        assert again["appropriateness"] == rating, f"rating of {item}"
    return result


@pytest.mark.parametrize(("body", "expected"), LUMBAR)
def test_lumbar_rows(decide, body, expected):
    """§5: every lumbar row, a match and a near miss."""
    check_case(decide, body, expected)


@pytest.mark.parametrize(("body", "expected"), THORACIC)
def test_thoracic_rows(decide, body, expected):
    """§6: every thoracic row, a match and a near miss; every answer carries R-T."""
    check_case(decide, body, expected)


@pytest.mark.parametrize(("body", "expected"), CERVICAL)
def test_cervical_rows(decide, body, expected):
    """§7: every cervical row, a match and a near miss."""
    check_case(decide, body, expected)


@pytest.mark.parametrize(("body", "expected"), CHILD)
def test_under_18_rows(decide, body, expected):
    """§8: the four child rows in each region, with matches and near misses."""
    result = check_case(decide, body, expected)
    text = text_of(result)
    if expected["scenario"].endswith("child_trauma_under_16"):
        assert R_CHILD_TRAUMA in text
        assert result["would_change_if"] == [], "§3.10: empty for not_covered"
    elif ".child_" in expected["scenario"]:
        assert R_CHILD in text


# ------------------------------------------------------------------------------------------
# §2 derived facts at their boundaries
# ------------------------------------------------------------------------------------------

def fact(name: str, region: str, age: float, weeks: float, findings: tuple[str, ...] = (), *,
         scenario: str, urgency: str, marks: Any = (), **fields: Any) -> Any:
    """A request that isolates one derived fact: the governing scenario and urgency show it."""
    return pytest.param(request(region, age, weeks, findings, **fields),
                        f"{region}.{scenario}", urgency, id=name, marks=marks)


FACTS = [
    # adult / age16 / child
    fact("adult-18", "lumbar", 18, 2, scenario="uncomplicated", urgency="none"),
    fact("child-17", "lumbar", 17, 2, scenario="child_no_red_flags", urgency="none"),
    fact("age16-trauma-row", "lumbar", 16, 0, ("significant_trauma",), days=1,
         scenario="trauma_high_risk", urgency="emergent"),
    fact("age15-no-adult-trauma-row", "lumbar", 15, 0, ("significant_trauma",), days=1,
         scenario="child_trauma_under_16", urgency="emergent"),
    fact("age17-not-adult-row-mscc", "lumbar", 17, 2, ("history_of_cancer", "radiculopathy"),
         scenario="child_serious_pathology", urgency="emergent"),
    # acute / subacute / chronic
    fact("acute-3.9w", "lumbar", 55, 3.9, ("myelopathy_signs",),
         scenario="cord_compression", urgency="emergent"),
    fact("subacute-4w", "lumbar", 55, 4, ("myelopathy_signs",),
         scenario="cord_compression", urgency="urgent"),
    fact("subacute-12w", "cervical", 40, 12, (), scenario="neck_pain", urgency="none"),
    fact("chronic-12.5w", "cervical", 40, 12.5, (), scenario="chronic_neck_pain",
         urgency="routine"),
    # injury windows
    fact("fresh-7d", "lumbar", 40, 1, ("significant_trauma",), days=7,
         scenario="trauma_high_risk", urgency="emergent"),
    fact("not-fresh-8d", "lumbar", 40, 1.2, ("significant_trauma",), days=8,
         scenario="trauma_high_risk", urgency="urgent"),
    fact("recent-28d", "lumbar", 40, 4, ("significant_trauma",), days=28,
         scenario="trauma_high_risk", urgency="urgent"),
    fact("not-recent-29d", "lumbar", 40, 5, ("significant_trauma",), days=29,
         scenario="uncomplicated", urgency="none"),
    fact("days-0", "lumbar", 40, 0, ("significant_trauma",), days=0,
         scenario="trauma_high_risk", urgency="emergent"),
    fact("unknown-days-fresh", "lumbar", 40, 0, ("significant_trauma",),
         scenario="trauma_high_risk", urgency="emergent"),
    # injury from days alone (AMBIGUITIES §2 injury)
    fact("days-alone-is-injury-lumbar", "lumbar", 40, 1, (), days=3,
         scenario="low_velocity_trauma", urgency="routine"),
    fact("days-alone-is-injury-cervical", "cervical", 40, 1, (), days=3,
         scenario="trauma_rule_not_documented", urgency="emergent"),
    # TR5: altered mental status / intoxication are not injuries; TR2 lifting not an injury
    fact("ams-alone-no-injury", "cervical", 40, 0, ("altered_mental_status",),
         scenario="neck_pain", urgency="none"),
    fact("ams-with-injury-high-risk", "lumbar", 40, 0, ("minor_trauma", "altered_mental_status"),
         days=0, scenario="trauma_high_risk", urgency="emergent"),
    fact("intoxication-with-injury-cervical", "cervical", 40, 0, ("minor_trauma", "intoxication"),
         days=0, scenario="trauma_imaging_indicated", urgency="emergent"),
    fact("distracting-injury-is-injury", "thoracic", 40, 0, ("distracting_injury",),
         scenario="trauma_high_risk", urgency="emergent"),
    # midline tenderness
    fact("midline-spinal-lumbar", "lumbar", 40, 0, ("midline_spinal_tenderness",),
         scenario="trauma_high_risk", urgency="emergent"),
    fact("midline-spinal-cervical", "cervical", 40, 0, ("midline_spinal_tenderness",), days=1,
         scenario="trauma_imaging_indicated", urgency="emergent"),
    fact("midline-cervical-in-lumbar-ignored", "lumbar", 40, 0, ("midline_cervical_tenderness",),
         scenario="uncomplicated", urgency="none"),
    fact("midline-cervical-in-cervical", "cervical", 40, 0, ("midline_cervical_tenderness",),
         scenario="trauma_imaging_indicated", urgency="emergent"),
    # suspected_ces: each finding, and the GIRFT sexual-dysfunction nuance
    *[fact(f"ces-{code}", "lumbar", 45, 1, (code,), scenario="cauda_equina", urgency="emergent")
      for code in ("saddle_anesthesia", "urinary_retention", "bowel_or_bladder_incontinence",
                   "altered_bladder_or_bowel_sensation", "bilateral_leg_weakness",
                   "bilateral_radiculopathy")],
    fact("ces-sexual-dysfunction-alone-no", "lumbar", 45, 1, ("new_sexual_dysfunction",),
         scenario="uncomplicated", urgency="none"),
    fact("ces-sexual-plus-sciatica-lumbar", "lumbar", 45, 1,
         ("new_sexual_dysfunction", "radiculopathy"), scenario="cauda_equina", urgency="emergent"),
    fact("ces-sexual-plus-deficit-lumbar", "lumbar", 45, 1,
         ("new_sexual_dysfunction", "neurologic_deficit"),
         scenario="cauda_equina", urgency="emergent"),
    fact("ces-sexual-plus-deficit-cervical", "cervical", 45, 1,
         ("new_sexual_dysfunction", "neurologic_deficit"),
         scenario="cauda_equina", urgency="emergent"),
    fact("ces-sexual-plus-bilateral-radicular-thoracic", "thoracic", 45, 1,
         ("new_sexual_dysfunction", "bilateral_radiculopathy"),
         scenario="cauda_equina", urgency="emergent"),
    fact("ces-sexual-plus-arm-radicular-no", "cervical", 45, 1,
         ("new_sexual_dysfunction", "radiculopathy"),
         scenario="radiculopathy_early", urgency="none"),
    fact("ces-sexual-plus-thoracic-radicular-no", "thoracic", 45, 1,
         ("new_sexual_dysfunction", "radiculopathy"), scenario="radiculopathy", urgency="routine"),
    # infection_risk: fever plus each risk factor is emergent (I1)
    *[fact(f"febrile-{code}", "lumbar", 50, 1, ("fever", code),
           scenario="febrile_infection", urgency="emergent")
      for code in ("iv_drug_use", "immunosuppression", "long_term_corticosteroids", "diabetes",
                   "recent_spinal_procedure", "indwelling_vascular_device",
                   "recent_bacterial_infection", "history_of_cancer", "wound_over_spine")],
    fact("febrile-dialysis-contraindication", "lumbar", 50, 1, ("fever",), contra=("dialysis",),
         scenario="febrile_infection", urgency="emergent"),
    fact("fever-markers-not-risk", "lumbar", 50, 1, ("fever", "elevated_inflammatory_markers"),
         scenario="suspected_infection", urgency="urgent"),
    fact("fever-alone", "lumbar", 50, 1, ("fever",),
         scenario="suspected_infection", urgency="urgent"),
    fact("dialysis-alone-no-infection", "lumbar", 50, 1, (), contra=("dialysis",),
         scenario="uncomplicated", urgency="none"),
    # infection_with_neurology needs deficit, myelopathy or CES (I2)
    fact("infection-with-ces", "lumbar", 50, 1, ("recent_bacterial_infection", "urinary_retention"),
         scenario="infection_with_deficit", urgency="emergent"),
    fact("infection-with-myelopathy", "cervical", 50, 8, ("immunosuppression", "myelopathy_signs"),
         scenario="infection_with_deficit", urgency="emergent"),
    # malignancy (M1-M3)
    fact("weight-loss-age-70-is-fracture-risk", "lumbar", 70, 2, ("unexplained_weight_loss",),
         scenario="fracture_risk", urgency="routine"),
    fact("weight-loss-age-50", "lumbar", 50, 2, ("unexplained_weight_loss",),
         scenario="weak_malignancy_risk", urgency="routine"),
    fact("weight-loss-plus-sciatica-not-mscc", "lumbar", 50, 2,
         ("unexplained_weight_loss", "radiculopathy"),
         scenario="weak_malignancy_risk", urgency="routine"),
    fact("night-pain-plus-imaging", "lumbar", 50, 2, ("night_pain", "abnormal_spine_imaging"),
         scenario="suspected_malignancy", urgency="urgent"),
    fact("mscc-cancer-plus-bilateral-radicular", "lumbar", 60, 2,
         ("history_of_cancer", "bilateral_radiculopathy"),
         scenario="suspected_mscc", urgency="emergent"),
    fact("mscc-cancer-plus-myelopathy", "cervical", 60, 20,
         ("history_of_cancer", "myelopathy_signs"), scenario="suspected_mscc", urgency="emergent"),
    # fracture_risk
    fact("fracture-risk-steroids", "lumbar", 40, 2, ("long_term_corticosteroids",),
         scenario="fracture_risk", urgency="routine"),
    fact("lvt-age55-fracture-risk-urgent", "lumbar", 55, 0, ("minor_trauma", "osteoporosis"),
         days=1, scenario="low_velocity_trauma", urgency="urgent"),
    fact("lvt-age55-no-fracture-risk-routine", "lumbar", 55, 0, ("minor_trauma",), days=1,
         scenario="low_velocity_trauma", urgency="routine"),
    fact("lvt-age70-urgent", "lumbar", 70, 0, ("minor_trauma",), days=1,
         scenario="low_velocity_trauma", urgency="urgent"),
    # cervical_rule_positive
    fact("crp-age65", "cervical", 65, 0, ("minor_trauma",), days=1,
         scenario="trauma_imaging_indicated", urgency="emergent"),
    fact("crp-age64-not-cleared", "cervical", 64, 0, ("minor_trauma",), days=1,
         scenario="trauma_rule_not_documented", urgency="emergent"),
    fact("crp-bilateral-radicular", "cervical", 40, 0,
         ("minor_trauma", "bilateral_radiculopathy"), days=1,
         scenario="trauma_with_deficit", urgency="emergent"),
    # axial_spa_suspected, child_red_flag, whole_spine_due
    fact("spa-12w", "lumbar", 30, 12, ("inflammatory_back_pain",),
         scenario="axial_spa_suspected", urgency="routine"),
    fact("child-duration-4.1", "thoracic", 10, 4.1, (), scenario="child_red_flag",
         urgency="routine"),
    fact("child-abnormal-imaging-serious", "lumbar", 12, 1, ("abnormal_spine_imaging",),
         scenario="child_serious_pathology", urgency="urgent"),
    fact("child-cancer-mscc-emergent", "lumbar", 12, 1, ("history_of_cancer", "radiculopathy"),
         scenario="child_serious_pathology", urgency="emergent"),
    fact("child-severe-deficit-emergent", "thoracic", 12, 1, ("severe_motor_deficit",),
         scenario="child_serious_pathology", urgency="emergent"),
]


@pytest.mark.parametrize(("body", "scenario", "urgency"), FACTS)
def test_derived_facts(decide, body, scenario, urgency):
    """§2: each derived fact at its boundary, seen through the governing scenario."""
    result = decide(body)
    assert result["scenario"]["id"] == scenario
    assert result["urgency"] == urgency


def test_injury_days_unknown_assumption(decide):
    """§2 injury_days_unknown, §3.11, delta §6: the exact assumption entry."""
    result = decide(request("lumbar", 45, 1, ("minor_trauma",)))
    assert result["scenario"]["id"] == "lumbar.low_velocity_trauma"
    assert result["assumptions"] == [ASSUMED_INJURY]
    assert R_INJURY_UNKNOWN in text_of(result)


def test_injury_days_given_no_assumption(decide):
    """§3.11: days given → no assumption; reason 'Injury {n} days ago.'"""
    result = decide(request("lumbar", 45, 1, ("minor_trauma",), days=3))
    assert result["assumptions"] == []
    assert "Injury 3 days ago." in text_of(result)


def test_days_alone_lists_no_assumption(decide):
    """§2: days given without a finding is an injury; nothing is assumed."""
    result = decide(request("lumbar", 45, 1, (), days=3))
    assert result["assumptions"] == []


def test_lifting_onset_sciatica_at_8_weeks(decide):
    """Review item [i], T02b: an injury 56 days ago is not recent; reason says so."""
    result = decide(request("lumbar", 45, 8, ("radiculopathy", "neurologic_deficit",
                                               "minor_trauma"), days=56))
    assert result["scenario"]["id"] == "lumbar.radiculopathy_conservative"
    assert result["urgency"] == "none"
    assert result["appropriateness"] == UNA
    assert steps_of(result) == []
    assert R_INJURY_OLD in text_of(result)
    assert result["assumptions"] == []


# ------------------------------------------------------------------------------------------
# §3 combination, §4 urgency
# ------------------------------------------------------------------------------------------

def test_union_T04_trauma_mscc_cord_deficit(decide):
    """§3.5-3.6, T04: four emergent scenarios merged in table order."""
    result = decide(request("thoracic", 66, 1, ("history_of_cancer", "minor_trauma",
                                                  "progressive_neurologic_deficit")))
    assert result["scenario"]["id"] == "thoracic.trauma_with_deficit"
    assert result["urgency"] == "emergent"
    assert result["appropriateness"] == UA
    assert result["contributing_scenarios"] == [
        "thoracic.trauma_with_deficit", "thoracic.suspected_mscc", "thoracic.cord_compression",
        "thoracic.severe_or_progressive_deficit"]
    assert steps_of(result) == plan_of(
        "thoracic", "T-CT w/o; T-MRI w/o / T-MRI w/wo; C-MRI w/wo / C-MRI w/o; "
                    "L-MRI w/wo / L-MRI w/o")
    assert result["also_matched"] == [
        "thoracic.suspected_mscc", "thoracic.cord_compression",
        "thoracic.severe_or_progressive_deficit", "thoracic.suspected_malignancy",
        "thoracic.low_velocity_trauma"]
    assert result["assumptions"] == [ASSUMED_INJURY]
    text = text_of(result)
    assert R_T in text and R_MSCC in text
    assert "Several emergencies apply (" in text


@pytest.mark.parametrize("weeks", [2, 20])
def test_union_T05_ces_and_cord(decide, weeks):
    """T05 and C6: CES plus cord signs images the cord too, also when chronic."""
    result = decide(request("lumbar", 55, weeks, ("myelopathy_signs", "urinary_retention")))
    assert result["scenario"]["id"] == "lumbar.cauda_equina"
    assert result["urgency"] == "emergent"
    assert result["appropriateness"] == UA
    assert result["contributing_scenarios"] == ["lumbar.cauda_equina", "lumbar.cord_compression"]
    assert steps_of(result) == plan_of(
        "lumbar", "L-MRI w/o / L-MRI w/wo; C-MRI w/o / C-MRI w/wo; T-MRI w/o / T-MRI w/wo")
    assert R_CES in text_of(result)


def test_union_cancer_fall_weakness(decide):
    """Review [e]: known cancer + fall + weakness gets CT then whole-spine MRI."""
    result = decide(request("lumbar", 66, 1, ("history_of_cancer", "minor_trauma",
                                                "neurologic_deficit")))
    assert result["scenario"]["id"] == "lumbar.trauma_with_deficit"
    assert result["contributing_scenarios"] == ["lumbar.trauma_with_deficit",
                                                "lumbar.suspected_mscc"]
    assert steps_of(result) == plan_of(
        "lumbar", "L-CT w/o; L-MRI w/o / L-MRI w/wo; T-MRI w/wo / T-MRI w/o; "
                  "C-MRI w/wo / C-MRI w/o")
    assert result["also_matched"] == ["lumbar.suspected_mscc", "lumbar.suspected_malignancy",
                                      "lumbar.low_velocity_trauma",
                                      "lumbar.radiculopathy_conservative"]
    assert R_MSCC in text_of(result)


def test_union_infection_before_ces(decide):
    """C3: infection (contrast) comes before CES (non-contrast) in the merged plan."""
    result = decide(request("lumbar", 50, 1, ("fever", "diabetes", "urinary_retention")))
    assert result["scenario"]["id"] == "lumbar.infection_with_deficit"
    assert result["contributing_scenarios"] == [
        "lumbar.infection_with_deficit", "lumbar.cauda_equina", "lumbar.febrile_infection"]
    assert steps_of(result) == plan_of("lumbar", "MRI w/wo / MRI w/o")
    assert result["also_matched"] == ["lumbar.cauda_equina", "lumbar.febrile_infection",
                                      "lumbar.suspected_infection"]
    assert R_CES in text_of(result), "R-CES for every contributing *.cauda_equina"


def test_union_cord_then_region_new_step(decide):
    """§3.6 merge: a step sharing nothing with the plan is added at the end."""
    result = decide(request("lumbar", 55, 8, ("myelopathy_signs",
                                               "progressive_neurologic_deficit")))
    assert result["scenario"]["id"] == "lumbar.cord_compression"
    assert result["contributing_scenarios"] == ["lumbar.cord_compression",
                                                "lumbar.severe_or_progressive_deficit"]
    assert steps_of(result) == plan_of(
        "lumbar", "C-MRI w/o / C-MRI w/wo; T-MRI w/o / T-MRI w/wo; L-MRI w/o / L-MRI w/wo")
    assert result["appropriateness"] == UA, "§3.7: best rating of any contributing scenario"


def test_union_rating_mba_from_other_contributor(decide):
    """§3.7: MBA when a contributing scenario lists the study as MBA and none as UA."""
    result = decide(request("lumbar", 55, 8, ("myelopathy_signs", "progressive_neurologic_deficit"),
                            requested="CTM"))
    assert result["appropriateness"] == MBA


def test_child_under_16_union_with_serious_pathology(decide):
    """§3.7 exception: not_covered only when child_trauma_under_16 contributes alone."""
    result = decide(request("lumbar", 10, 0, ("significant_trauma", "saddle_anesthesia"), days=1))
    assert result["scenario"]["id"] == "lumbar.child_serious_pathology"
    assert result["urgency"] == "emergent"
    assert result["contributing_scenarios"] == ["lumbar.child_serious_pathology",
                                                "lumbar.child_trauma_under_16"]
    assert result["appropriateness"] == UA
    assert steps_of(result) == plan_of(
        "lumbar", "MRI w/wo / MRI w/o; T-MRI w/wo / T-MRI w/o; C-MRI w/wo / C-MRI w/o")


def test_child_under_16_injury_and_fever_serious_governs(decide):
    """§3.4: urgent c1 beats routine c2; the answer is covered."""
    result = decide(request("lumbar", 10, 1, ("minor_trauma", "fever"), days=2))
    assert result["scenario"]["id"] == "lumbar.child_serious_pathology"
    assert result["urgency"] == "urgent"
    assert result["appropriateness"] == UA
    assert result["also_matched"] == ["lumbar.child_trauma_under_16"]
    assert result["contributing_scenarios"] == []


def test_child_under_16_high_risk_injury_and_fever_not_covered(decide):
    """§3.7/§8 c2 (see AMBIGUITIES): emergent c2 governs alone over urgent c1."""
    result = decide(request("lumbar", 10, 0, ("significant_trauma", "fever"), days=1))
    assert result["scenario"]["id"] == "lumbar.child_trauma_under_16"
    assert result["urgency"] == "emergent"
    assert result["appropriateness"] == NC
    assert steps_of(result) == []
    assert result["also_matched"] == ["lumbar.child_serious_pathology"]
    assert result["would_change_if"] == []


def test_star_recommendation_is_step_1_with_mba_rating(decide):
    """§3.6 / C4: the ★ MBA item is recommended as step 1 and keeps its MBA rating."""
    result = decide(request("cervical", 40, 13, ()))
    items = result["recommended_procedures"]
    assert [(i["code"], i["step"], i["rating"]) for i in items] == [
        ("xray_cervical", 1, MBA)]


def test_non_star_mba_never_recommended(decide):
    """C4: acute neck pain (XR MBA, no ★) recommends nothing; urgency none."""
    result = decide(request("cervical", 40, 1, ()))
    assert result["recommended_procedures"] == []
    assert result["urgency"] == "none"


def test_contributing_empty_for_single_emergency(decide):
    """§3.5: one emergent match → contributing_scenarios is []."""
    result = decide(request("lumbar", 40, 1, ("saddle_anesthesia",)))
    assert result["contributing_scenarios"] == []


def test_urgent_ties_broken_by_table_order(decide):
    """§3.4: equal urgency → first in table order (suspected_infection before malignancy)."""
    result = decide(request("lumbar", 55, 2, ("history_of_cancer", "recent_spinal_procedure")))
    assert result["scenario"]["id"] == "lumbar.suspected_infection"
    assert result["urgency"] == "urgent"
    assert result["also_matched"] == ["lumbar.suspected_malignancy"]
    # only the governing scenario contributes: its plan, not the cancer's whole spine
    assert steps_of(result) == plan_of("lumbar", "MRI w/wo / MRI w/o")


def test_would_change_if_lists_ces_for_uncomplicated(decide):
    """§3.10: over the 2026.2.0 vocabulary, a CES finding would change an uncomplicated answer."""
    result = decide(request("lumbar", 45, 2, ()))
    changes = {entry["finding"]: entry for entry in result["would_change_if"]}
    assert changes["bilateral_radiculopathy"]["urgency"] == "emergent"
    assert changes["bilateral_radiculopathy"]["scenario"] == "lumbar.cauda_equina"
    assert changes["altered_bladder_or_bowel_sensation"]["urgency"] == "emergent"
    assert "new_sexual_dysfunction" not in changes, "alone it is not suspected CES"


def test_also_matched_reason_for_urgent_cancer_after_fall(decide):
    """§11: 'Also matched: {title} ({urgency}): {its first step}.' — a known cancer after a
    fall: CT now for the injury, MRI within a week for the cancer."""
    result = decide(request("lumbar", 60, 0, ("history_of_cancer", "significant_trauma"),
                            days=1))
    assert result["scenario"]["id"] == "lumbar.trauma_high_risk"
    assert steps_of(result) == plan_of("lumbar", "CT w/o")
    assert "lumbar.suspected_malignancy" in result["also_matched"]
    assert "Also matched: " in text_of(result)
    assert "(urgent)" in text_of(result)


# ------------------------------------------------------------------------------------------
# §9 safety modifiers
# ------------------------------------------------------------------------------------------

MSG_MR_UNSAFE = ("An implant labelled MR Unsafe: MRI is contraindicated; the non-MRI studies "
                 "come first.")
MSG_PREGNANT = ("Pregnant: MRI without contrast can be done at any stage of pregnancy when "
                "indicated. Give gadolinium only if essential (benefit clearly outweighs the "
                "unknown fetal risk; discuss and document).")
MSG_PREGNANT_IONISING = "A planned study uses ionising radiation"
MSG_RENAL_GAD = ("Reduced kidney function and a gadolinium study: use a group II agent at the "
                 "standard dose; do not withhold or delay an indicated contrast MRI "
                 "(ACR–NKF 2020).")
MSG_RENAL_GAD_DIALYSIS = ("On haemodialysis: where practical, schedule the scan so that a regular "
                          "dialysis session follows soon after; do not start or change dialysis "
                          "because of the contrast.")
MSG_IOD_DIALYSIS = ("On maintenance dialysis: no prophylactic IV fluid is indicated and the "
                    "dialysis schedule need not change for IV iodinated contrast (ACR–NKF 2020); "
                    "use the lowest diagnostic dose to protect any residual kidney function.")
MSG_IOD_SALINE = ("AKI or eGFR below 30: IV isotonic saline prophylaxis is indicated unless "
                  "contraindicated (for example heart failure); withhold nephrotoxic drugs where "
                  "feasible; do not withhold a necessary contrast CT (ACR–NKF 2020).")
MSG_IOD_30_44 = ("eGFR 30–44: prophylaxis may be considered in individual high-risk "
                 "circumstances, at the ordering clinician's discretion (ACR–NKF 2020).")
MSG_METFORMIN_STOP = ("Stop metformin at the time of the contrast, withhold it for 48 hours, and "
                      "restart only after kidney function is re-checked and stable.")
MSG_METFORMIN_OK = "No need to stop metformin for IV iodinated contrast."
MSG_METFORMIN_CHECK = ("Check eGFR: if below 30 (or AKI), stop metformin as above; "
                       "otherwise continue.")
MSG_BREASTFEEDING = ("Breastfeeding need not be interrupted after gadolinium or iodinated "
                     "contrast; a mother who prefers may express and discard milk for 12–24 hours.")
MSG_GAD_SEVERE_LEGACY = "Severity not recorded: treated as moderate or severe; record the grade."
MSG_SI_ALTERNATIVE = "CT of the sacroiliac joints is the usual alternative"


def test_T03_dialysis_gadolinium_only(decide):
    """T03 / S1: dialysis → renal_gadolinium with the dialysis sentence, no renal_iodinated."""
    result = decide(request("lumbar", 68, 1.5, ("fever",), contra=("dialysis",),
                            requested="MRI w/wo"))
    assert result["scenario"]["id"] == "lumbar.febrile_infection"
    assert "lumbar.suspected_infection" in result["also_matched"]
    assert result["urgency"] == "emergent"
    assert result["appropriateness"] == UA
    assert steps_of(result) == plan_of("lumbar", "MRI w/wo / MRI w/o")
    assert result["safety"]["status"] == "caution"
    assert alerts(result) == ["renal_gadolinium"]
    gad = alert(result, "renal_gadolinium")
    assert gad["level"] == "caution"
    assert MSG_RENAL_GAD in gad["message"] and MSG_RENAL_GAD_DIALYSIS in gad["message"]
    assert "hydrat" not in gad["message"].lower()


def test_T07_pregnancy_ces(decide):
    """T07 / S4: pregnancy message without the ionising sentence."""
    result = decide(request("lumbar", 31, 0.5, ("saddle_anesthesia",), contra=("pregnancy",)))
    assert result["scenario"]["id"] == "lumbar.cauda_equina"
    assert result["urgency"] == "emergent"
    assert result["appropriateness"] == UA
    assert steps_of(result) == plan_of("lumbar", "MRI w/o / MRI w/wo")
    assert result["safety"]["status"] == "caution"
    preg = alert(result, "pregnancy")
    assert preg["level"] == "caution"
    assert preg["message"].startswith(MSG_PREGNANT)
    assert MSG_PREGNANT_IONISING not in preg["message"]


def test_pregnancy_after_substitution_adds_ionising_sentence(decide):
    """§9 order of application: rows 3-18 see the plan after MRI substitution (CTM is ionising)."""
    result = decide(request("lumbar", 31, 0.5, ("saddle_anesthesia",),
                            contra=("mr_unsafe_implant", "pregnancy")))
    assert steps_of(result) == plan_of("lumbar", "CTM / CT w/o / MRI w/o / MRI w/wo")
    assert alerts(result) == ["mr_unsafe_implant", "pregnancy"]
    assert MSG_PREGNANT_IONISING in alert(result, "pregnancy")["message"]
    assert result["safety"]["status"] == "contraindicated"


def test_pregnancy_with_trauma_ct(decide):
    """§9 row 12: a CT in play (injury) adds the ionising sentence: justify, do not withhold."""
    result = decide(request("lumbar", 30, 0, ("significant_trauma",), days=0,
                            contra=("pregnancy",), requested="CT w/o"))
    message = alert(result, "pregnancy")["message"]
    assert MSG_PREGNANT_IONISING in message
    assert "do not withhold it" in message


def test_pregnancy_prefers_mri_without(decide):
    """§9 row 12 Prefer MRI w/o: febrile infection plan reorders to MRI w/o first."""
    result = decide(request("lumbar", 30, 1, ("fever", "diabetes"), contra=("pregnancy",)))
    assert steps_of(result) == plan_of("lumbar", "MRI w/o / MRI w/wo")
    assert result["appropriateness"] == UA, "§3.9: safety never changes a rating"
    assert result["urgency"] == "emergent"


def test_T14_mr_unsafe_ces_substitution(decide):
    """T14: step of MRIs only gets the region's CT/CTM from CES's MBA list first."""
    result = decide(request("lumbar", 50, 0.5, ("urinary_retention",),
                            contra=("mr_unsafe_implant",)))
    assert result["scenario"]["id"] == "lumbar.cauda_equina"
    assert result["appropriateness"] == UA
    assert steps_of(result) == plan_of("lumbar", "L-CTM / L-CT w/o / L-MRI w/o / L-MRI w/wo")
    assert result["safety"]["status"] == "contraindicated"
    unsafe = alert(result, "mr_unsafe_implant")
    assert unsafe["level"] == "contraindicated"
    assert unsafe["message"] == MSG_MR_UNSAFE or MSG_MR_UNSAFE in unsafe["message"]


def test_T34_every_contrast_row(decide):
    """T34: substitution from febrile MBA, renal by route, metformin; table order of alerts."""
    result = decide(request("lumbar", 60, 1, ("fever", "iv_drug_use"),
                            contra=("mr_unsafe_implant", "metformin"), egfr=25))
    assert result["scenario"]["id"] == "lumbar.febrile_infection"
    assert result["urgency"] == "emergent"
    assert result["appropriateness"] == UA
    assert steps_of(result) == plan_of(
        "lumbar", "L-CT w/ / L-CT w/o / L-CTM / L-MRI w/wo / L-MRI w/o")
    assert result["safety"]["status"] == "contraindicated"
    assert alerts(result) == ["mr_unsafe_implant", "renal_gadolinium", "renal_iodinated",
                              "metformin"]
    assert alert(result, "renal_gadolinium")["level"] == "caution"
    assert MSG_RENAL_GAD_DIALYSIS not in alert(result, "renal_gadolinium")["message"]
    iodinated = alert(result, "renal_iodinated")
    assert iodinated["level"] == "caution"
    assert MSG_IOD_SALINE in iodinated["message"]
    assert MSG_IOD_30_44 not in iodinated["message"]
    assert MSG_IOD_DIALYSIS not in iodinated["message"]
    metformin = alert(result, "metformin")
    assert metformin["level"] == "caution"
    assert MSG_METFORMIN_STOP in metformin["message"]


def test_T15_prior_surgery_dialysis(decide):
    """T15: renal_gadolinium with the dialysis sentence; no hydration text; no iodinated row."""
    result = decide(request("lumbar", 60, 4, ("prior_spine_surgery", "radiculopathy"),
                            contra=("dialysis",)))
    assert result["scenario"]["id"] == "lumbar.prior_surgery"
    assert result["urgency"] == "routine"
    assert result["appropriateness"] == UA
    assert steps_of(result) == plan_of("lumbar", "MRI w/wo / MRI w/o / XR")
    assert alerts(result) == ["renal_gadolinium"]
    message = alert(result, "renal_gadolinium")["message"]
    assert MSG_RENAL_GAD_DIALYSIS in message
    assert "hydrat" not in " ".join(a["message"] for a in result["safety"]["alerts"]).lower()


def test_T33_egfr_sentence_only(decide):
    """T33: eGFR 25, MRI w/wo requested → renal_gadolinium without the dialysis sentence."""
    result = decide(request("lumbar", 60, 1, ("urinary_retention",), egfr=25,
                            requested="MRI w/wo"))
    assert result["scenario"]["id"] == "lumbar.cauda_equina"
    assert result["appropriateness"] == UA
    assert steps_of(result) == plan_of("lumbar", "MRI w/o / MRI w/wo")
    assert alerts(result) == ["renal_gadolinium"]
    message = alert(result, "renal_gadolinium")["message"]
    assert MSG_RENAL_GAD in message and MSG_RENAL_GAD_DIALYSIS not in message


def test_T35_claustrophobia_requested_mri_in_play(decide):
    """T35 / S7: requested MRI is in play even with an empty plan."""
    result = decide(request("lumbar", 45, 2, ("radiculopathy",), contra=("severe_claustrophobia",)))
    assert result["scenario"]["id"] == "lumbar.radiculopathy_conservative"
    assert result["urgency"] == "none"
    assert result["appropriateness"] == UNA
    assert steps_of(result) == []
    assert result["safety"]["status"] == "caution"
    assert alerts(result) == ["severe_claustrophobia"]
    assert alert(result, "severe_claustrophobia")["level"] == "caution"


def test_claustrophobia_no_mri_in_play(decide):
    """S7: requested XR and no plan → no MRI in play → no alert, status clear."""
    result = decide(request("lumbar", 45, 2, ("radiculopathy",), contra=("severe_claustrophobia",),
                            requested="XR"))
    assert alerts(result) == []
    assert result["safety"]["status"] == "clear"


def test_mr_unsafe_without_mri_in_play(decide):
    """§9 row 1: MRI not requested and not planned (trauma CT) → no alert."""
    result = decide(request("lumbar", 40, 0, ("significant_trauma",), days=0,
                            contra=("mr_unsafe_implant",), requested="CT w/o"))
    assert steps_of(result) == plan_of("lumbar", "CT w/o")
    assert alerts(result) == []
    assert result["safety"]["status"] == "clear"


def test_T37_breastfeeding_info(decide):
    """T37 / S4 / S7: breastfeeding with gadolinium in play → one info alert, status clear."""
    result = decide(request("lumbar", 50, 2, (), contra=("breastfeeding",), requested="MRI w/wo"))
    assert result["scenario"]["id"] == "lumbar.uncomplicated"
    assert result["appropriateness"] == UNA
    assert result["urgency"] == "none"
    assert result["safety"]["status"] == "clear"
    assert [(a["code"], a["level"]) for a in result["safety"]["alerts"]] == [
        ("breastfeeding", "info")]
    assert MSG_BREASTFEEDING in result["safety"]["alerts"][0]["message"]


def test_breastfeeding_without_contrast_no_alert(decide):
    """§9 row 13: only when gadolinium or IV iodinated contrast is in play."""
    result = decide(request("lumbar", 50, 2, (), contra=("breastfeeding",)))
    assert alerts(result) == []


def test_substitution_trauma_with_deficit(decide):
    """§9 substitution: step 2 (MRI only) gets CTM from TWD's MBA list."""
    result = decide(request("lumbar", 30, 0, ("minor_trauma", "neurologic_deficit"), days=2,
                            contra=("orbital_metal_foreign_body",)))
    assert steps_of(result) == plan_of("lumbar", "CT w/o; CTM / MRI w/o")
    assert alerts(result) == ["orbital_metal_foreign_body"]
    assert alert(result, "orbital_metal_foreign_body")["level"] == "contraindicated"
    assert result["safety"]["status"] == "contraindicated"


def test_substitution_ankylosed_no_mba_uses_ctm(decide):
    """§9 substitution: no CT/CTM in MBA ('—') → CTM of the region."""
    result = decide(request("lumbar", 60, 0.5, ("ankylosed_spine", "minor_trauma"), days=3,
                            contra=("mr_unsafe_implant",)))
    assert steps_of(result) == plan_of("lumbar", "CT w/o / XR; CTM / MRI w/o")


def test_substitution_mixed_step_moves_non_mri_first(decide):
    """§9 substitution: a step's non-MRI alternatives move before its MRIs."""
    result = decide(request("lumbar", 72, 2, ("neurologic_deficit",),
                            contra=("mr_unsafe_implant",)))
    assert result["scenario"]["id"] == "lumbar.fracture_with_deficit"
    assert steps_of(result) == plan_of("lumbar", "CT w/o / XR / MRI w/o")


def test_substitution_mscc_per_region(decide):
    """§9 substitution: each region's MRI step gets that region's CT/CTM (MBA lists name the
    request's region only, so other regions get their CTM)."""
    result = decide(request("lumbar", 60, 3, ("history_of_cancer", "radiculopathy"),
                            contra=("mr_unsafe_implant",)))
    assert steps_of(result) == plan_of(
        "lumbar", "L-CTM / L-CT w/o / L-CT w/ / L-MRI w/wo / L-MRI w/o; "
                  "T-CTM / T-MRI w/wo / T-MRI w/o; C-CTM / C-MRI w/wo / C-MRI w/o")


def test_substitution_cord_compression_other_regions_from_mba(decide):
    """§9 substitution: lumbar cord compression's MBA names C-CTM and T-CTM."""
    result = decide(request("lumbar", 55, 8, ("myelopathy_signs",), contra=("mr_unsafe_implant",)))
    assert steps_of(result) == plan_of(
        "lumbar", "C-CTM / C-MRI w/o / C-MRI w/wo; T-CTM / T-MRI w/o / T-MRI w/wo")


def test_substitution_si_mri_has_no_substitute(decide):
    """§9 substitution: an SI MRI step gets no substitute; the alert names SI CT."""
    result = decide(request("lumbar", 28, 26, ("inflammatory_back_pain",
                                                "sacroiliac_radiographs_nondiagnostic"),
                            contra=("mr_unsafe_implant",)))
    assert steps_of(result) == plan_of("lumbar", "SI MRI w/o")
    assert MSG_SI_ALTERNATIVE in alert(result, "mr_unsafe_implant")["message"]


def test_cardiac_device_names_alternative_plan_unchanged(decide, labels):
    """§9 row 3: caution; plan unchanged; {alternative} = first CT/CTM of the region in MBA."""
    result = decide(request("lumbar", 40, 1, ("saddle_anesthesia",),
                            contra=("non_conditional_cardiac_device",)))
    assert steps_of(result) == plan_of("lumbar", "MRI w/o / MRI w/wo")
    assert result["safety"]["status"] == "caution"
    device = alert(result, "non_conditional_cardiac_device")
    assert device["level"] == "caution"
    assert "CMS NCD 220.2" in device["message"]
    assert labels("ct_myelography_lumbar") in device["message"]


def test_cardiac_device_alternative_fallback_ctm(decide, labels):
    """§9 row 3: no CT/CTM of the region in the MBA lists → CT myelography of the region."""
    result = decide(request("lumbar", 28, 26, ("inflammatory_back_pain",
                                                "sacroiliac_radiographs_nondiagnostic"),
                            contra=("non_conditional_cardiac_device",)))
    assert labels("ct_myelography_lumbar") in alert(result, "non_conditional_cardiac_device")[
        "message"]


@pytest.mark.parametrize(("findings", "emergent"), [(("saddle_anesthesia",), True),
                                                     (("prior_spine_surgery",), False)])
def test_implant_unknown_status_emergency_sentence_leads(decide, findings, emergent):
    """§9 row 4: when emergent, 'In an emergency do not wait' leads."""
    result = decide(request("lumbar", 40, 1, findings, contra=("implant_unknown_mr_status",)))
    message = alert(result, "implant_unknown_mr_status")["message"]
    assert alert(result, "implant_unknown_mr_status")["level"] == "caution"
    assert message.startswith("In an emergency do not wait") is emergent
    if not emergent:
        assert message.startswith("An implant, device or metal of unknown MR status")


@pytest.mark.parametrize("code", ["neurostimulator", "intrathecal_pump", "cochlear_implant",
                                  "programmable_shunt", "retained_metal_fragments",
                                  "mr_conditional_implant"])
def test_mri_device_rows_caution_when_mri_in_play(decide, code):
    """§9 rows 5-10: caution when an MRI is in play; nothing when none is."""
    result = decide(request("lumbar", 45, 3, ("prior_spine_surgery",), contra=(code,)))
    assert alerts(result) == [code]
    assert alert(result, code)["level"] == "caution"
    assert result["safety"]["status"] == "caution"
    assert steps_of(result) == plan_of("lumbar", "MRI w/wo / MRI w/o / XR"), "no substitution"
    none_in_play = decide(request("lumbar", 45, 2, (), contra=(code,), requested="XR"))
    assert alerts(none_in_play) == []


def test_alert_order_follows_table(decide):
    """§9: rows evaluated once in table order."""
    result = decide(request("lumbar", 30, 1, ("fever", "diabetes"),
                            contra=("pregnancy", "severe_claustrophobia", "mr_conditional_implant",
                                    "breastfeeding")))
    assert alerts(result) == ["mr_conditional_implant", "severe_claustrophobia", "pregnancy",
                              "breastfeeding"]
    assert result["safety"]["status"] == "caution"


def test_gadolinium_reaction_severe_prefers_mri_without(decide):
    """§9 row 14: Prefer MRI w/o within the step."""
    result = decide(request("lumbar", 50, 1, ("fever", "diabetes"),
                            contra=("prior_gadolinium_reaction_severe",)))
    assert steps_of(result) == plan_of("lumbar", "MRI w/o / MRI w/wo")
    assert alerts(result) == ["prior_gadolinium_reaction_severe"]
    assert MSG_GAD_SEVERE_LEGACY not in alert(result, "prior_gadolinium_reaction_severe")["message"]


def test_gadolinium_reaction_legacy_treated_as_severe(decide):
    """§9 row 14 / S5: the legacy code adds 'Severity not recorded …'."""
    result = decide(request("lumbar", 50, 1, ("fever", "diabetes"),
                            contra=("prior_gadolinium_reaction",)))
    assert steps_of(result) == plan_of("lumbar", "MRI w/o / MRI w/wo")
    assert alerts(result) == ["prior_gadolinium_reaction"]
    assert MSG_GAD_SEVERE_LEGACY in alert(result, "prior_gadolinium_reaction")["message"]


def test_gadolinium_reaction_mild_no_reorder(decide):
    """§9 row 15: mild reaction → caution, no Prefer-MRI-w/o reorder."""
    result = decide(request("lumbar", 50, 1, ("fever", "diabetes"),
                            contra=("prior_gadolinium_reaction_mild",)))
    assert steps_of(result) == plan_of("lumbar", "MRI w/wo / MRI w/o")
    assert alerts(result) == ["prior_gadolinium_reaction_mild"]
    assert alert(result, "prior_gadolinium_reaction_mild")["level"] == "caution"


def test_gadolinium_reaction_graded_wins_over_legacy(decide):
    """§9 order of application: graded and legacy both given → only the graded row."""
    result = decide(request("lumbar", 50, 1, ("fever", "diabetes"),
                            contra=("prior_gadolinium_reaction_mild", "prior_gadolinium_reaction")))
    assert alerts(result) == ["prior_gadolinium_reaction_mild"]
    assert steps_of(result) == plan_of("lumbar", "MRI w/wo / MRI w/o")


def test_gadolinium_reaction_no_gadolinium_in_play(decide):
    """§9 row 14: gadolinium not in play → no alert."""
    result = decide(request("lumbar", 40, 1, ("saddle_anesthesia",),
                            contra=("prior_gadolinium_reaction_severe",)))
    # MRI w/wo is in the CES plan: gadolinium is in play
    assert alerts(result) == ["prior_gadolinium_reaction_severe"]
    none = decide(request("lumbar", 45, 2, (), contra=("prior_gadolinium_reaction_severe",)))
    assert alerts(none) == []


@pytest.mark.parametrize(("egfr", "contra", "message"), [
    (40, (), MSG_IOD_30_44),
    (30, (), MSG_IOD_30_44),
    (29, (), MSG_IOD_SALINE),
    (None, ("acute_kidney_injury",), MSG_IOD_SALINE),
    (None, ("dialysis",), MSG_IOD_DIALYSIS),
    (20, ("dialysis",), MSG_IOD_DIALYSIS),
])
def test_renal_iodinated_bands(decide, egfr, contra, message):
    """§9 row 17: exactly one message by band; requested CT w/ puts IV iodinated in play."""
    result = decide(request("lumbar", 50, 2, (), contra=contra, egfr=egfr, requested="CT w/"))
    assert "renal_iodinated" in alerts(result)
    text = alert(result, "renal_iodinated")["message"]
    assert message in text
    for other in {MSG_IOD_30_44, MSG_IOD_SALINE, MSG_IOD_DIALYSIS} - {message}:
        assert other not in text
    assert "renal_gadolinium" not in alerts(result), "no gadolinium in play"


def test_renal_iodinated_not_at_45(decide):
    """§9 row 17: eGFR 45 → no renal_iodinated alert."""
    result = decide(request("lumbar", 50, 2, (), egfr=45, requested="CT w/"))
    assert alerts(result) == []
    assert result["safety"]["status"] == "clear"


def test_renal_gadolinium_threshold_30(decide):
    """§9 row 16: eGFR < 30 only."""
    assert alerts(decide(request("lumbar", 50, 2, (), egfr=30, requested="MRI w/wo"))) == []
    assert alerts(decide(request("lumbar", 50, 2, (), egfr=29.9, requested="MRI w/wo"))) == [
        "renal_gadolinium"]


def test_ct_myelography_no_renal_or_metformin(decide):
    """S1/§9: CT myelography is intrathecal: no renal, metformin or IV-contrast row."""
    result = decide(request("lumbar", 50, 2, (), contra=("metformin", "acute_kidney_injury"),
                            egfr=20, requested="CTM"))
    assert alerts(result) == []
    assert result["safety"]["status"] == "clear"


@pytest.mark.parametrize(("egfr", "contra", "level", "message"), [
    (60, (), "info", MSG_METFORMIN_OK),
    (30, (), "info", MSG_METFORMIN_OK),
    (25, (), "caution", MSG_METFORMIN_STOP),
    (None, (), "caution", MSG_METFORMIN_CHECK),
    (60, ("acute_kidney_injury",), "caution", MSG_METFORMIN_STOP),
])
def test_metformin_levels(decide, egfr, contra, level, message):
    """§9 row 18: level and message by kidney function; IV iodinated in play."""
    result = decide(request("lumbar", 50, 2, (), contra=("metformin", *contra), egfr=egfr,
                            requested="CT w/"))
    met = alert(result, "metformin")
    assert met["level"] == level
    assert message in met["message"]


def test_metformin_info_alone_keeps_status_clear(decide):
    """S7: an info alert does not change safety.status."""
    result = decide(request("lumbar", 50, 2, (), contra=("metformin",), egfr=60,
                            requested="CT w/"))
    assert alerts(result) == ["metformin"]
    assert result["safety"]["status"] == "clear"


def test_metformin_not_for_gadolinium(decide):
    """S2: no metformin alert for gadolinium."""
    result = decide(request("lumbar", 50, 1, ("fever", "diabetes"), contra=("metformin",)))
    assert "metformin" not in alerts(result)


def test_renal_alert_code_replaced(decide):
    """S1: `renal_impairment` is not used in 2026.2.0 decisions."""
    result = decide(request("lumbar", 50, 1, ("fever", "diabetes"), egfr=20))
    assert "renal_impairment" not in alerts(result)
    assert alerts(result) == ["renal_gadolinium"]


# ------------------------------------------------------------------------------------------
# §11 reason templates
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "code", "sentence"), [
    (request("lumbar", 40, 1, ("saddle_anesthesia",)), "mri_lumbar_without_contrast",
     "{study} is usually appropriate."),
    (request("lumbar", 55, 2, ("unexplained_weight_loss",)), "mri_lumbar_without_contrast",
     "{study} may be appropriate."),
    (request("lumbar", 45, 2, ()), "mri_lumbar_without_contrast",
     "{study} is usually not appropriate."),
])
def test_rating_sentence(decide, labels, body, code, sentence):
    """§11 / H3: grammatical rating sentence; never 'is may be appropriate'."""
    result = decide(body)
    text = text_of(result)
    assert sentence.format(study=labels(code)) in text
    assert "is may be appropriate" not in text


def test_reason_R_C1(decide):
    """§11 R-C1 exact, T17."""
    result = decide(request("cervical", 30, 0, ("minor_trauma",), days=1))
    assert R_C1 in text_of(result)


def r_c2(feature: str, text: str) -> bool:
    """R-C2 with {feature} = the label, its first letter in either case (mid-sentence)."""
    return any(
        f"A low-risk rule result was recorded, but {name} is a high-risk feature: the "
        "high-risk feature prevails." in text
        for name in (feature, feature[0].lower() + feature[1:]))


def test_reason_R_C2_midline_spinal(decide):
    """§11 R-C2 with the delta label of midline_spinal_tenderness."""
    result = decide(request("cervical", 30, 0, ("minor_trauma", "cspine_rule_low_risk",
                                                 "midline_spinal_tenderness"), days=1))
    assert result["scenario"]["id"] == "cervical.trauma_imaging_indicated"
    assert r_c2("Midline spinal tenderness after injury", text_of(result))


def test_reason_R_C2_T19(decide, labels):
    """T19: R-C2 naming midline cervical tenderness by its label."""
    result = decide(request("cervical", 30, 0, ("minor_trauma", "cspine_rule_low_risk",
                                                 "midline_cervical_tenderness"), days=1))
    assert r_c2(labels("midline_cervical_tenderness"), text_of(result))


def test_reason_R_CES_with_bilateral_weakness(decide):
    """§11 R-CES and its bilateral-weakness addition (T01)."""
    text = text_of(decide(request("lumbar", 38, 1, ("bilateral_radiculopathy",
                                                     "bilateral_leg_weakness"))))
    assert R_CES in text and R_CES_BILATERAL in text


def test_reason_R_CES_without_bilateral_weakness(decide):
    """§11 R-CES: the thoracic-cord sentence only with bilateral_leg_weakness."""
    text = text_of(decide(request("lumbar", 38, 1, ("urinary_retention",))))
    assert R_CES in text and R_CES_BILATERAL not in text


def test_reason_R_MSCC(decide):
    assert R_MSCC in text_of(decide(request("lumbar", 60, 3, ("history_of_cancer",
                                                               "radiculopathy"))))


def test_reason_R_weak_cancer_factor(decide, labels):
    """§11 R-weak cancer factor, with both labels."""
    text = text_of(decide(request("lumbar", 55, 2, ("unexplained_weight_loss",))))
    assert r_weak(labels("elevated_inflammatory_markers")) in text


def test_reason_R_SpA(decide):
    assert R_SPA in text_of(decide(request("lumbar", 28, 26, ("inflammatory_back_pain",))))
    assert R_SPA in text_of(decide(request("thoracic", 28, 26, (
        "inflammatory_back_pain", "sacroiliac_radiographs_nondiagnostic"))))


def test_reason_names_findings_by_label_not_code(decide, labels):
    """§11: reason texts name findings by their vocabulary labels, never by their codes."""
    result = decide(request("lumbar", 38, 1, ("bilateral_radiculopathy", "bilateral_leg_weakness",
                                               "new_sexual_dysfunction")))
    text = text_of(result)
    for code in ("bilateral_radiculopathy", "bilateral_leg_weakness", "new_sexual_dysfunction"):
        assert code not in text


def test_union_reason_lists_steps(decide):
    """§11 union sentence: 'Several emergencies apply (…): the plan combines their studies: …'."""
    text = text_of(decide(request("lumbar", 55, 2, ("myelopathy_signs", "urinary_retention"))))
    assert "Several emergencies apply (" in text
    assert "): the plan combines their studies: " in text
    assert "; then " in text


# ------------------------------------------------------------------------------------------
# §13 acceptance examples that go through the API (T38-T40 are CDS Hooks: not here)
# ------------------------------------------------------------------------------------------

def example(name: str, region: str, age: float, weeks: float, findings: tuple[str, ...] = (), *,
            scenario: str, urgency: str, rating: str, plan: str = "",
            contributing: tuple[str, ...] = (), assumed: bool = False,
            marks: Any = (), **fields: Any) -> Any:
    return pytest.param(request(region, age, weeks, findings, **fields),
                        {"scenario": f"{region}.{scenario}", "urgency": urgency, "rating": rating,
                         "plan": plan, "contributing": [f"{region}.{s}" for s in contributing],
                         "assumed": assumed}, id=name, marks=marks)


EXAMPLES = [
    example("T01", "lumbar", 38, 1, ("bilateral_radiculopathy", "bilateral_leg_weakness"),
            scenario="cauda_equina", urgency="emergent", rating=UA,
            plan="L-MRI w/o / L-MRI w/wo"),
    example("T02", "lumbar", 45, 8, ("radiculopathy", "neurologic_deficit"),
            scenario="radiculopathy_conservative", urgency="none", rating=UNA),
    example("T02-care6-candidate", "lumbar", 45, 8, ("radiculopathy", "neurologic_deficit"),
            care=6, candidate=True, scenario="surgical_candidate", urgency="routine", rating=UA,
            plan="MRI w/o"),
    example("T02b", "lumbar", 45, 8, ("radiculopathy", "neurologic_deficit", "minor_trauma"),
            days=56, scenario="radiculopathy_conservative", urgency="none", rating=UNA),
    example("T03", "lumbar", 68, 1.5, ("fever",), contra=("dialysis",), requested="MRI w/wo",
            scenario="febrile_infection", urgency="emergent", rating=UA,
            plan="L-MRI w/wo / L-MRI w/o"),
    example("T04", "thoracic", 66, 1, ("history_of_cancer", "minor_trauma",
                                       "progressive_neurologic_deficit"),
            scenario="trauma_with_deficit", urgency="emergent", rating=UA,
            plan="T-CT w/o; T-MRI w/o / T-MRI w/wo; C-MRI w/wo / C-MRI w/o; L-MRI w/wo / L-MRI w/o",
            contributing=("trauma_with_deficit", "suspected_mscc", "cord_compression",
                          "severe_or_progressive_deficit"), assumed=True),
    example("T05", "lumbar", 55, 2, ("myelopathy_signs", "urinary_retention"),
            scenario="cauda_equina", urgency="emergent", rating=UA,
            plan="L-MRI w/o / L-MRI w/wo; C-MRI w/o / C-MRI w/wo; T-MRI w/o / T-MRI w/wo",
            contributing=("cauda_equina", "cord_compression")),
    example("T05-duration20", "lumbar", 55, 20, ("myelopathy_signs", "urinary_retention"),
            scenario="cauda_equina", urgency="emergent", rating=UA,
            plan="L-MRI w/o / L-MRI w/wo; C-MRI w/o / C-MRI w/wo; T-MRI w/o / T-MRI w/wo",
            contributing=("cauda_equina", "cord_compression")),
    example("T06", "thoracic", 35, 3, ("radiculopathy",),
            scenario="radiculopathy", urgency="routine", rating=UA, plan="T-MRI w/o"),
    example("T07", "lumbar", 31, 0.5, ("saddle_anesthesia",), contra=("pregnancy",),
            scenario="cauda_equina", urgency="emergent", rating=UA,
            plan="L-MRI w/o / L-MRI w/wo"),
    example("T08", "lumbar", 15, 8, ("night_pain",),
            scenario="child_red_flag", urgency="routine", rating=MBA, plan="L-XR"),
    example("T09", "cervical", 17, 0, ("significant_trauma", "midline_cervical_tenderness"),
            days=0, scenario="trauma_imaging_indicated", urgency="emergent", rating=UNA,
            plan="C-CT w/o"),
    example("T10", "cervical", 72, 0, ("minor_trauma",), requested="CT w/o",
            scenario="trauma_imaging_indicated", urgency="emergent", rating=UA, plan="C-CT w/o",
            assumed=True),
    example("T11", "cervical", 40, 1, scenario="neck_pain", urgency="none", rating=UNA),
    example("T11-XR", "cervical", 40, 1, requested="XR",
            scenario="neck_pain", urgency="none", rating=MBA),
    example("T12", "cervical", 45, 2, ("radiculopathy",),
            scenario="radiculopathy_early", urgency="none", rating=MBA),
    example("T12-duration13", "cervical", 45, 13, ("radiculopathy",),
            scenario="radiculopathy_persistent", urgency="routine", rating=UA, plan="C-MRI w/o"),
    example("T13", "lumbar", 55, 2, ("unexplained_weight_loss",),
            scenario="weak_malignancy_risk", urgency="routine", rating=MBA, plan="L-XR"),
    example("T13b", "lumbar", 55, 2, ("unexplained_weight_loss", "elevated_inflammatory_markers"),
            scenario="suspected_infection", urgency="urgent", rating=UA,
            plan="L-MRI w/wo / L-MRI w/o"),
    example("T14", "lumbar", 50, 0.5, ("urinary_retention",), contra=("mr_unsafe_implant",),
            scenario="cauda_equina", urgency="emergent", rating=UA,
            plan="L-CTM / L-CT w/o / L-MRI w/o / L-MRI w/wo"),
    example("T15", "lumbar", 60, 4, ("prior_spine_surgery", "radiculopathy"),
            contra=("dialysis",), scenario="prior_surgery", urgency="routine", rating=UA,
            plan="L-MRI w/wo / L-MRI w/o / L-XR"),
    example("T16", "lumbar", 40, 0, ("minor_trauma", "intoxication", "distracting_injury"),
            days=0, requested="CT w/o", scenario="trauma_high_risk", urgency="emergent",
            rating=UA, plan="L-CT w/o"),
    example("T17", "cervical", 30, 0, ("minor_trauma",), days=1, requested="CT w/o",
            scenario="trauma_rule_not_documented", urgency="emergent", rating=UA, plan="C-CT w/o"),
    example("T18", "cervical", 30, 0, ("minor_trauma", "cspine_rule_low_risk"), days=1,
            requested="CT w/o", scenario="trauma_low_risk", urgency="none", rating=UNA),
    example("T19", "cervical", 30, 0, ("minor_trauma", "cspine_rule_low_risk",
                                       "midline_cervical_tenderness"), days=1,
            requested="CT w/o", scenario="trauma_imaging_indicated", urgency="emergent",
            rating=UA, plan="C-CT w/o"),
    example("T20", "cervical", 30, 2, ("minor_trauma",), days=14,
            scenario="trauma_subacute", urgency="none", rating=MBA),
    example("T21", "lumbar", 45, 1, ("minor_trauma",), days=2,
            scenario="low_velocity_trauma", urgency="routine", rating=UA,
            plan="L-XR / L-MRI w/o / L-CT w/o"),
    example("T22", "lumbar", 55, 1, ("fever", "diabetes"),
            scenario="febrile_infection", urgency="emergent", rating=UA,
            plan="L-MRI w/wo / L-MRI w/o"),
    example("T23", "lumbar", 55, 1, ("diabetes",),
            scenario="uncomplicated", urgency="none", rating=UNA),
    example("T24", "lumbar", 60, 3, ("history_of_cancer",),
            scenario="suspected_malignancy", urgency="urgent", rating=UA,
            plan="L-MRI w/wo / L-MRI w/o; T-MRI w/wo / T-MRI w/o; C-MRI w/wo / C-MRI w/o"),
    example("T25", "lumbar", 60, 3, ("history_of_cancer", "radiculopathy"),
            scenario="suspected_mscc", urgency="emergent", rating=UA,
            plan="L-MRI w/wo / L-MRI w/o; T-MRI w/wo / T-MRI w/o; C-MRI w/wo / C-MRI w/o"),
    example("T26", "thoracic", 50, 8, care=6,
            scenario="failed_conservative_care", urgency="routine", rating=UNA, plan="T-XR"),
    example("T27", "lumbar", 28, 26, ("inflammatory_back_pain",),
            scenario="axial_spa_suspected", urgency="routine", rating=UNA, plan="SI XR"),
    example("T28", "lumbar", 28, 26, ("inflammatory_back_pain",
                                      "sacroiliac_radiographs_nondiagnostic"),
            scenario="axial_spa_mri", urgency="routine", rating=MBA, plan="SI MRI w/o"),
    example("T29", "lumbar", 10, 0, ("minor_trauma",), days=1,
            scenario="child_trauma_under_16", urgency="routine", rating=NC),
    example("T30", "lumbar", 12, 1, ("fever",),
            scenario="child_serious_pathology", urgency="urgent", rating=UA,
            plan="L-MRI w/wo / L-MRI w/o; T-MRI w/wo / T-MRI w/o; C-MRI w/wo / C-MRI w/o"),
    example("T31", "lumbar", 17, 1, ("saddle_anesthesia",),
            scenario="child_serious_pathology", urgency="emergent", rating=UA,
            plan="L-MRI w/wo / L-MRI w/o; T-MRI w/wo / T-MRI w/o; C-MRI w/wo / C-MRI w/o"),
    example("T32", "cervical", 50, 2, ("myelopathy_signs", "urinary_retention"),
            scenario="cauda_equina", urgency="emergent", rating=UA,
            plan="C-MRI w/o / C-MRI w/wo; T-MRI w/o / T-MRI w/wo; L-MRI w/o / L-MRI w/wo",
            contributing=("cauda_equina", "cord_compression")),
    example("T33", "lumbar", 60, 1, ("urinary_retention",), egfr=25, requested="MRI w/wo",
            scenario="cauda_equina", urgency="emergent", rating=UA,
            plan="L-MRI w/o / L-MRI w/wo"),
    example("T34", "lumbar", 60, 1, ("fever", "iv_drug_use"),
            contra=("mr_unsafe_implant", "metformin"), egfr=25,
            scenario="febrile_infection", urgency="emergent", rating=UA,
            plan="L-CT w/ / L-CT w/o / L-CTM / L-MRI w/wo / L-MRI w/o"),
    example("T35", "lumbar", 45, 2, ("radiculopathy",), contra=("severe_claustrophobia",),
            scenario="radiculopathy_conservative", urgency="none", rating=UNA),
    example("T36", "lumbar", 70, 0, ("minor_trauma",),
            scenario="low_velocity_trauma", urgency="urgent", rating=UA,
            plan="L-XR / L-MRI w/o / L-CT w/o", assumed=True),
    example("T37", "lumbar", 50, 2, contra=("breastfeeding",), requested="MRI w/wo",
            scenario="uncomplicated", urgency="none", rating=UNA),
]


@pytest.mark.parametrize(("body", "expected"), EXAMPLES)
def test_acceptance_examples(decide, body, expected):
    """§13 T01-T37 through POST /v1/decisions."""
    result = decide(body)
    assert result["scenario"]["id"] == expected["scenario"]
    assert result["urgency"] == expected["urgency"]
    assert result["appropriateness"] == expected["rating"]
    assert steps_of(result) == plan_of(body["region"], expected["plan"])
    assert result["contributing_scenarios"] == expected["contributing"]
    assert result["assumptions"] == ([ASSUMED_INJURY] if expected["assumed"] else [])


def test_T36_also_fracture_risk(decide):
    """T36: 'also fracture_risk'."""
    result = decide(request("lumbar", 70, 0, ("minor_trauma",)))
    assert result["also_matched"] == ["lumbar.fracture_risk"]


def test_T03_also_suspected_infection(decide):
    result = decide(request("lumbar", 68, 1.5, ("fever",), contra=("dialysis",),
                            requested="MRI w/wo"))
    assert result["also_matched"] == ["lumbar.suspected_infection"]


def test_T13b_also_suspected_malignancy(decide):
    result = decide(request("lumbar", 55, 2, ("unexplained_weight_loss",
                                               "elevated_inflammatory_markers")))
    assert result["also_matched"] == ["lumbar.suspected_malignancy"]


def test_T08_and_T29_child_reasons(decide):
    """T08 R-child; T29 R-child trauma."""
    assert R_CHILD in text_of(decide(request("lumbar", 15, 8, ("night_pain",))))
    assert R_CHILD_TRAUMA in text_of(decide(request("lumbar", 10, 0, ("minor_trauma",), days=1)))


def test_T26_and_T06_thoracic_reason(decide):
    assert R_T in text_of(decide(request("thoracic", 50, 8, (), care=6)))
    assert R_T in text_of(decide(request("thoracic", 35, 3, ("radiculopathy",))))


# ------------------------------------------------------------------------------------------
# delta §6: request validation of the new field (API contract)
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [-1, 3651, 2.5, "3", True])
def test_days_since_injury_invalid_is_422(client, evaluator_headers, value):
    """delta §6: non-integer or out of range → 422 naming days_since_injury."""
    body = request("lumbar", 45, 1, ("minor_trauma",))
    body["days_since_injury"] = value
    response = client.post("/v1/decisions", json=body, headers=evaluator_headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "days_since_injury" in response.get_data(as_text=True)


@pytest.mark.parametrize("value", [0, 3650])
def test_days_since_injury_bounds_accepted(decide, value):
    decide(request("lumbar", 45, 1, ("minor_trauma",), days=value))


def test_care_longer_than_symptoms_is_422(client, evaluator_headers):
    """delta §6: conservative_care_weeks > symptom_duration_weeks → 422 naming the field."""
    body = request("lumbar", 45, 4, (), care=6)
    response = client.post("/v1/decisions", json=body, headers=evaluator_headers)
    assert response.status_code == 422
    assert "conservative_care_weeks" in response.get_data(as_text=True)


# ------------------------------------------------------------------------------------------
# Further probes: ties between child and trauma rows, removed rows, safety on a union plan
# ------------------------------------------------------------------------------------------

def test_age17_child_red_flag_before_low_velocity_trauma(decide):
    """§5/§8: child rows sit after lumbar row 3; equal (routine) urgency → c3 before row 14."""
    result = decide(request("lumbar", 17, 6, ("minor_trauma",), days=2))
    assert result["scenario"]["id"] == "lumbar.child_red_flag"
    assert result["urgency"] == "routine"
    assert result["also_matched"] == ["lumbar.low_velocity_trauma"]
    assert steps_of(result) == plan_of("lumbar", "XR")


def test_age17_cervical_low_risk_rule_governs_over_default(decide):
    """§8: 16-17 eligible for cervical rows 1-6; the child default only when nothing matches."""
    result = decide(request("cervical", 17, 0, ("minor_trauma", "cspine_rule_low_risk"), days=1))
    assert result["scenario"]["id"] == "cervical.trauma_low_risk"
    assert result["urgency"] == "none"
    assert result["also_matched"] == []


def test_under16_cervical_low_risk_with_midline_tenderness_emergent(decide):
    """§8 c2: injury_high_risk → emergent even with a documented low-risk rule."""
    result = decide(request("cervical", 12, 0, ("minor_trauma", "cspine_rule_low_risk",
                                                 "midline_cervical_tenderness"), days=1))
    assert result["scenario"]["id"] == "cervical.child_trauma_under_16"
    assert result["urgency"] == "emergent"
    assert result["appropriateness"] == NC


def test_thoracic_fracture_with_deficit_removed(decide):
    """R1: no thoracic fracture_with_deficit; a deficit at 72 is cord compression."""
    result = decide(request("thoracic", 72, 6, ("neurologic_deficit",)))
    assert result["scenario"]["id"] == "thoracic.cord_compression"
    assert result["urgency"] == "urgent"
    assert result["also_matched"] == ["thoracic.fracture_risk"]


def test_thoracic_surgical_candidate_removed(decide):
    """R1: no thoracic surgical_candidate row."""
    result = decide(request("thoracic", 45, 8, ("radiculopathy",), care=6, candidate=True))
    assert result["scenario"]["id"] == "thoracic.radiculopathy"
    # row 20 (duration >= 4, care >= 6) also matches; row 16 comes first at equal urgency
    assert result["also_matched"] == ["thoracic.failed_conservative_care"]
    assert steps_of(result) == plan_of("thoracic", "MRI w/o")


def test_substitution_on_union_plan_removes_earlier_steps_procedures(decide):
    """§9 substitution on T04's union: MBA lists in contributing order, no repeats, and a
    procedure already in an earlier step (T-CT w/o) is removed from the later step."""
    result = decide(request("thoracic", 66, 1, ("history_of_cancer", "minor_trauma",
                                                  "progressive_neurologic_deficit"),
                            contra=("mr_unsafe_implant",)))
    assert steps_of(result) == plan_of(
        "thoracic", "T-CT w/o; T-CTM / T-CT w/ / T-MRI w/o / T-MRI w/wo; "
                    "C-CTM / C-MRI w/wo / C-MRI w/o; L-CTM / L-MRI w/wo / L-MRI w/o")
    assert result["safety"]["status"] == "contraindicated"


def test_prefer_mri_without_on_union_plan(decide):
    """§9 Prefer MRI w/o: in every step holding both of the same region."""
    result = decide(request("thoracic", 66, 1, ("history_of_cancer", "minor_trauma",
                                                  "progressive_neurologic_deficit"),
                            contra=("pregnancy",)))
    assert steps_of(result) == plan_of(
        "thoracic", "T-CT w/o; T-MRI w/o / T-MRI w/wo; C-MRI w/o / C-MRI w/wo; "
                    "L-MRI w/o / L-MRI w/wo")
    assert MSG_PREGNANT_IONISING in alert(result, "pregnancy")["message"]


def test_cardiac_device_alternative_on_union(decide, labels):
    """§9 row 3 on a union: first CT/CTM of the region in the contributing MBA lists (TWD: CTM)."""
    result = decide(request("thoracic", 66, 1, ("history_of_cancer", "minor_trauma",
                                                  "progressive_neurologic_deficit"),
                            contra=("non_conditional_cardiac_device",)))
    assert labels("ct_myelography_thoracic") in alert(result, "non_conditional_cardiac_device")[
        "message"]
    assert steps_of(result)[1] == plan_of("thoracic", "T-MRI w/o / T-MRI w/wo")[0]


def test_renal_gadolinium_with_aki(decide):
    """§9 row 16: acute kidney injury without eGFR still alerts when gadolinium is in play."""
    result = decide(request("lumbar", 50, 1, ("fever", "diabetes"),
                            contra=("acute_kidney_injury",)))
    assert alerts(result) == ["renal_gadolinium"]


def test_metformin_with_dialysis_stops(decide):
    """§9 row 18: dialysis → caution, stop metformin; row 17 dialysis message."""
    result = decide(request("lumbar", 50, 2, (), contra=("metformin", "dialysis"),
                            requested="CT w/"))
    assert alerts(result) == ["renal_iodinated", "metformin"]
    assert MSG_METFORMIN_STOP in alert(result, "metformin")["message"]
    assert MSG_IOD_DIALYSIS in alert(result, "renal_iodinated")["message"]


def test_breastfeeding_info_with_caution_row(decide):
    """S7: an info alert next to a caution alert: status caution from the caution row."""
    result = decide(request("lumbar", 50, 1, ("fever", "diabetes"),
                            contra=("breastfeeding", "severe_claustrophobia")))
    assert [(a["code"], a["level"]) for a in result["safety"]["alerts"]] == [
        ("severe_claustrophobia", "caution"), ("breastfeeding", "info")]
    assert result["safety"]["status"] == "caution"


# ------------------------------------------------------------------------------------------
# §12 patient information: the fixed texts' headlines, levels and placeholders
# ------------------------------------------------------------------------------------------

HEADLINES = [
    (request("lumbar", 45, 2, ()), "Your back pain is very likely to get better without a scan."),
    (request("lumbar", 45, 2, ("radiculopathy",)),
     "Leg pain from a pinched nerve often gets better on its own."),
    (request("lumbar", 45, 8, ("radiculopathy",), care=6, candidate=True),
     "An MRI now can help plan a shot in the back or surgery."),
    (request("lumbar", 45, 1, ("saddle_anesthesia",)), "You need an emergency MRI scan today."),
    (request("lumbar", 45, 3, ("recent_spinal_procedure",)),
     "You need an MRI soon to check for an infection in your spine."),
    (request("lumbar", 60, 3, ("history_of_cancer",)),
     "An MRI within a week can check whether your back pain is linked to cancer."),
    (request("cervical", 40, 1, ()),
     "Your neck pain is very likely to get better without an X-ray or scan."),
    (request("cervical", 45, 2, ("radiculopathy",)),
     "Arm pain from a pinched nerve in the neck often gets better on its own."),
]

_LEVEL_PHRASE = {"emergency": "Emergency:", "today": "Get seen today",
                 "week": "See your doctor within a week"}


@pytest.mark.parametrize(("body", "headline"), HEADLINES)
def test_patient_information_levels_and_placeholders(decide, body, headline):
    """§12.1: levels and their fixed phrases; placeholders substituted. (The §12.3 wording,
    headline included, is checked in test_patient_information_texts.py.)"""
    info = decide(body)["patient_information"]
    assert info["headline"]
    for item in info["come_back_if"]:
        assert item["level"] in _LEVEL_PHRASE
        assert item["action"].startswith(_LEVEL_PHRASE[item["level"]])
    flat = repr(info)
    assert "{emergency_number}" not in flat and "{fever_threshold}" not in flat


def test_patient_information_union_emergency_first(decide):
    """§12.1: for a union, come_back_if merges the contributors' lists, emergency items first."""
    info = decide(request("lumbar", 55, 2, ("myelopathy_signs", "urinary_retention")))[
        "patient_information"]
    levels = [item["level"] for item in info["come_back_if"]]
    assert levels == sorted(levels, key=["emergency", "today", "week"].index)
    assert levels and levels[0] == "emergency"


# ------------------------------------------------------------------------------------------
# §9 message texts ("content the text must carry"), §11 union sentence, request checks
# ------------------------------------------------------------------------------------------

ROW_MESSAGES = {
    "orbital_metal_foreign_body": (
        "Metal in the orbit not shown to be removed: no MRI until excluded by orbital "
        "radiographs or review of a prior CT."),
    "non_conditional_cardiac_device": (
        "Pacemaker or ICD system not labelled MR Conditional: MRI only under a dedicated "
        "protocol (1.5 T or less, device interrogated and programmed before and after, "
        "monitoring, staff able to resuscitate; CMS NCD 220.2); otherwise "),
    "neurostimulator": (
        "Spinal cord, dorsal-root-ganglion, sacral, vagus or deep-brain stimulator: many systems "
        "are MR Conditional only under exact conditions (scanner type and field, body region, RF "
        "limits, stimulator in MRI mode, complete system without abandoned leads); some allow "
        "only head or limb scans. Check the specific system's labelling; otherwise CT "
        "myelography."),
    "intrathecal_pump": (
        "Implanted drug pump: check the model's MR labelling. The pump motor can stop in the "
        "magnet; interrogate the pump after the scan. For baclofen pumps plan with the managing "
        "team: interruption can cause withdrawal."),
    "cochlear_implant": (
        "Cochlear implant: check the model; many are MR Conditional (often 1.5 T, some 3 T), "
        "some need magnet removal or a head bandage; magnet movement and pain can occur."),
    "programmable_shunt": (
        "CSF shunt with a programmable (or unknown) valve: the magnet can change the setting; "
        "arrange a valve check and resetting after the MRI; check the valve's labelling."),
    "retained_metal_fragments": (
        "Bullets, shrapnel or other metal fragments: the radiologist decides after localising "
        "them (radiographs or CT); fragments in or near the eye, spinal canal, major vessels or "
        "nerves, or of unknown or ferromagnetic material may make MRI unsafe; CT or CT "
        "myelography is the alternative."),
    "mr_conditional_implant": (
        "An implant labelled MR Conditional: scan within its labelled conditions."),
    "severe_claustrophobia": (
        "Severe claustrophobia: offer a wide-bore or open scanner, explanation, feet-first "
        "positioning where the region allows, a companion in the room; oral anxiolysis needs an "
        "escort home and no driving that day; for an emergency (suspected cauda equina or cord "
        "compression) sedation or general anaesthesia with an anaesthetist, or CT myelography if "
        "MRI cannot be done in time."),
    "prior_gadolinium_reaction_severe": (
        "Prior moderate or severe allergic-like reaction to gadolinium: MRI without contrast "
        "first where it answers the question. If contrast is essential: a different gadolinium "
        "agent, premedication per local policy (an accelerated IV regimen exists for "
        "emergencies), and a setting able to treat a reaction; consider whether another study "
        "answers the question."),
    "prior_gadolinium_reaction_mild": (
        "Prior mild allergic-like reaction to gadolinium: contrast may be given when indicated; "
        "use a different agent; premedication is optional (local policy)."),
}


@pytest.mark.parametrize("code", sorted(ROW_MESSAGES))
def test_row_message_text(decide, code):
    """§9: each row's message carries the quoted text (febrile infection: MRI w/wo in play)."""
    result = decide(request("lumbar", 50, 1, ("fever", "diabetes"), contra=(code,)))
    assert ROW_MESSAGES[code] in alert(result, code)["message"]


def test_union_sentence_names_every_step(decide, labels):
    """§11 union: '… the plan combines their studies: {step 1}; then {step 2}; …'."""
    result = decide(request("lumbar", 55, 2, ("myelopathy_signs", "urinary_retention")))
    sentence = next(r for r in result["reasons"] if r.startswith("Several emergencies apply ("))
    _, _, plan_text = sentence.partition("the plan combines their studies: ")
    parts = plan_text.split("; then ")
    steps = steps_of(result)
    assert len(parts) == len(steps) == 3
    for part, step in zip(parts, steps, strict=True):
        for code in step:
            assert labels(code) in part


def test_also_matched_sentence_names_first_step(decide, labels):
    """§11: 'Also matched: {title} ({urgency}): {its first step}.' for the urgent cancer row."""
    result = decide(request("lumbar", 60, 0, ("history_of_cancer", "significant_trauma"),
                            days=1))
    sentence = next(r for r in result["reasons"] if r.startswith("Also matched: "))
    assert "(urgent): " in sentence
    for code in plan_of("lumbar", "MRI w/wo / MRI w/o")[0]:
        assert labels(code) in sentence


def test_child_infection_with_neurology_emergent(decide):
    """§8 c1: infection_with_neurology → emergent."""
    result = decide(request("lumbar", 12, 1, ("fever", "neurologic_deficit")))
    assert result["scenario"]["id"] == "lumbar.child_serious_pathology"
    assert result["urgency"] == "emergent"


def test_child_ankylosed_injury_under16_emergent(decide):
    """§8 c2: ankylosed_spine with a recent injury → emergent (not_covered)."""
    result = decide(request("thoracic", 14, 0, ("ankylosed_spine", "minor_trauma"), days=1))
    assert result["scenario"]["id"] == "thoracic.child_trauma_under_16"
    assert result["urgency"] == "emergent"
    assert result["appropriateness"] == NC


def test_si_procedure_only_for_lumbar(client, evaluator_headers):
    """delta §6: an SI procedure may be requested when region is lumbar; elsewhere 422."""
    body = request("thoracic", 28, 26, ("inflammatory_back_pain",))
    body["requested_procedure"] = "xray_sacroiliac_joints"
    response = client.post("/v1/decisions", json=body, headers=evaluator_headers)
    assert response.status_code == 422
    assert "requested_procedure" in response.get_data(as_text=True)


def test_si_procedure_rating_lumbar_uncomplicated(decide):
    """§1: a procedure the scenario does not list is UNA."""
    result = decide(request("lumbar", 45, 2, (), requested="SI XR"))
    assert result["appropriateness"] == UNA


def test_union_mscc_and_ces(decide):
    """§3.5: known cancer + retention → MSCC and CES both emergent; both reasons."""
    result = decide(request("lumbar", 60, 1, ("history_of_cancer", "urinary_retention")))
    assert result["scenario"]["id"] == "lumbar.suspected_mscc"
    assert result["contributing_scenarios"] == ["lumbar.suspected_mscc", "lumbar.cauda_equina"]
    assert steps_of(result) == plan_of(
        "lumbar", "MRI w/wo / MRI w/o; T-MRI w/wo / T-MRI w/o; C-MRI w/wo / C-MRI w/o")
    text = text_of(result)
    assert R_MSCC in text and R_CES in text


def test_thoracic_bilateral_weakness_ces_and_cord(decide):
    """§6: weakness of both legs in a thoracic request is CES and a deficit (cord)."""
    result = decide(request("thoracic", 50, 1, ("bilateral_leg_weakness",)))
    assert result["scenario"]["id"] == "thoracic.cauda_equina"
    assert result["contributing_scenarios"] == ["thoracic.cauda_equina",
                                                "thoracic.cord_compression"]
    assert steps_of(result) == plan_of("thoracic", "MRI w/o / MRI w/wo; L-MRI w/o / L-MRI w/wo")
    assert R_CES_BILATERAL in text_of(result)


def test_cervical_trauma_with_myelopathy_14d_emergent(decide):
    """§7 row 2 'as lumbar 2': myelopathy signs keep it emergent after 7 days."""
    result = decide(request("cervical", 50, 2, ("minor_trauma", "myelopathy_signs"), days=14))
    assert result["scenario"]["id"] == "cervical.trauma_with_deficit"
    assert result["urgency"] == "emergent"
    assert steps_of(result)[0] == plan_of("cervical", "CT w/o")[0]


def test_pregnancy_always_applies(decide):
    """§9 row 12: 'always' — even with nothing planned; no ionising sentence for an MRI."""
    result = decide(request("lumbar", 30, 2, (), contra=("pregnancy",)))
    assert alerts(result) == ["pregnancy"]
    assert result["safety"]["status"] == "caution"
    assert MSG_PREGNANT_IONISING not in alert(result, "pregnancy")["message"]


def test_prefer_mri_without_moves_directly_before_gadolinium(decide):
    """§9 Prefer MRI w/o after substitution (T34 + pregnancy): directly before MRI w/wo."""
    result = decide(request("lumbar", 30, 1, ("fever", "iv_drug_use"),
                            contra=("mr_unsafe_implant", "pregnancy")))
    assert steps_of(result) == plan_of(
        "lumbar", "L-CT w/ / L-CT w/o / L-CTM / L-MRI w/o / L-MRI w/wo")
    assert alerts(result) == ["mr_unsafe_implant", "pregnancy"]


def test_prefer_mri_without_keeps_other_items_in_place(decide):
    """§9 Prefer MRI w/o: prior surgery 'MRI w/wo / MRI w/o / XR' → 'MRI w/o / MRI w/wo / XR'."""
    result = decide(request("lumbar", 45, 3, ("prior_spine_surgery",),
                            contra=("prior_gadolinium_reaction_severe",)))
    assert steps_of(result) == plan_of("lumbar", "MRI w/o / MRI w/wo / XR")


def test_breastfeeding_after_substitution_iodinated_in_play(decide):
    """§9 rows 13, 17 judged after substitution: CT w/ from febrile MBA puts IV iodine in play."""
    result = decide(request("lumbar", 30, 1, ("fever", "iv_drug_use"), egfr=40,
                            contra=("mr_unsafe_implant", "breastfeeding"),
                            requested="MRI w/o"))
    assert "breastfeeding" in alerts(result)
    assert MSG_IOD_30_44 in alert(result, "renal_iodinated")["message"]


@pytest.mark.parametrize(("region", "findings", "alternative"), [
    ("lumbar", ("fever", "diabetes"), "ct_lumbar_with_contrast"),
    ("cervical", ("fever", "diabetes"), "ct_cervical_with_contrast"),
    ("lumbar", ("severe_motor_deficit",), "ct_lumbar_without_contrast"),
    ("cervical", ("progressive_neurologic_deficit",), "ct_myelography_cervical"),
    ("lumbar", ("myelopathy_signs",), "ct_myelography_lumbar"),
])
def test_cardiac_device_alternative_is_first_ct_or_ctm_of_region(decide, labels, region,
                                                                  findings, alternative):
    """§9 row 3: {alternative} = first CT or CTM of the request's region in the MBA list,
    else CTM of the region (lumbar cord compression: MBA names only C-CTM, T-CTM)."""
    result = decide(request(region, 50, 8 if "myelopathy_signs" in findings else 1, findings,
                            contra=("non_conditional_cardiac_device",)))
    message = alert(result, "non_conditional_cardiac_device")["message"]
    assert f"otherwise {labels(alternative)}" in message or labels(alternative) in message


def _changes(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["finding"]: entry for entry in result["would_change_if"]}


def test_would_change_if_uncomplicated_new_codes(decide):
    """§3.10 over the v2 vocabulary: which single added findings change the answer."""
    changes = _changes(decide(request("lumbar", 45, 2, ())))
    assert changes["midline_spinal_tenderness"]["scenario"] == "lumbar.trauma_high_risk"
    assert changes["midline_spinal_tenderness"]["urgency"] == "emergent"
    assert changes["fever"]["urgency"] == "urgent"
    assert changes["wound_over_spine"]["scenario"] == "lumbar.suspected_infection"
    assert changes["abnormal_spine_imaging"]["scenario"] == "lumbar.abnormal_imaging"
    # alone these change nothing (risk factors without a sign; TR5: not an injury)
    for code in ("diabetes", "indwelling_vascular_device", "intoxication",
                 "altered_mental_status", "cspine_rule_low_risk", "midline_cervical_tenderness",
                 "sacroiliac_radiographs_nondiagnostic"):
        assert code not in changes, code


def test_would_change_if_sexual_dysfunction_with_sciatica(decide):
    """§2 GIRFT nuance through §3.10: with lumbar sciatica, new sexual dysfunction → CES."""
    changes = _changes(decide(request("lumbar", 45, 2, ("radiculopathy",))))
    assert changes["new_sexual_dysfunction"]["scenario"] == "lumbar.cauda_equina"
    assert changes["new_sexual_dysfunction"]["urgency"] == "emergent"
    arm = _changes(decide(request("cervical", 45, 2, ("radiculopathy",))))
    assert "new_sexual_dysfunction" not in arm


def test_would_change_if_documented_low_risk_rule(decide):
    """§3.10 for T17: recording the low-risk rule result changes the answer to no imaging."""
    changes = _changes(decide(request("cervical", 30, 0, ("minor_trauma",), days=1)))
    assert changes["cspine_rule_low_risk"]["scenario"] == "cervical.trauma_low_risk"
    assert changes["cspine_rule_low_risk"]["urgency"] == "none"


def test_union_ankylosed_trauma_and_mscc(decide):
    """§3.6 merge with three contributors: the MSCC lumbar step joins the existing MRI step."""
    result = decide(request("lumbar", 66, 1, ("ankylosed_spine", "minor_trauma",
                                                "history_of_cancer", "neurologic_deficit"),
                            days=2))
    assert result["scenario"]["id"] == "lumbar.ankylosed_spine_trauma"
    assert result["contributing_scenarios"] == ["lumbar.ankylosed_spine_trauma",
                                                "lumbar.trauma_with_deficit",
                                                "lumbar.suspected_mscc"]
    assert steps_of(result) == plan_of(
        "lumbar", "CT w/o / XR; MRI w/o / MRI w/wo; T-MRI w/wo / T-MRI w/o; "
                  "C-MRI w/wo / C-MRI w/o")
    assert result["appropriateness"] == UA
    # CTM: MBA for trauma_with_deficit and MSCC
    again = decide(request("lumbar", 66, 1, ("ankylosed_spine", "minor_trauma",
                                               "history_of_cancer", "neurologic_deficit"),
                           days=2, requested="CTM"))
    assert again["appropriateness"] == MBA


@pytest.mark.parametrize(("region", "findings"), [
    ("lumbar", ("midline_cervical_tenderness",)),
    ("lumbar", ("intoxication",)),
    ("cervical", ("altered_mental_status",)),
])
def test_no_injury_no_assumption(decide, region, findings):
    """§2 injury / §3.11: findings that are not an injury in the region assume no injury date."""
    result = decide(request(region, 40, 0, findings))
    assert result["assumptions"] == []
    assert R_INJURY_UNKNOWN not in text_of(result)
