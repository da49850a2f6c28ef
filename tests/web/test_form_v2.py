"""The clinician form under rule set 2026.2.0 (vocabulary-2026.2.0-delta.md §8.4, §8.7):
explicit red-flag checkboxes in clinical groups, days since the injury required once an injury
is ticked, the low-risk C-spine rule only for a cervical request after an injury, the new
contraindications, and confirm mode from a CDS Hooks card link."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.pages import SUBMISSION_RE, csrf_from, decision_count, sign_in

IN_FORCE_2026_2 = "2026-12-01T12:00:00Z"


@pytest.fixture
def v2_app(make_app):
    return make_app(EVALUATION_TIME=IN_FORCE_2026_2)


@pytest.fixture
def client(v2_app):
    c = v2_app.test_client()
    key = v2_app.extensions["referral_api"].keys.create(["clinician"], "v2-clinician")[1]
    assert sign_in(c, key).status_code == 303
    return c


def post(client: Any, path: str = "/", **form: Any) -> Any:
    html = client.get(path).get_data(as_text=True)
    data = {"conservative_care_weeks": "0", **form, "csrf_token": csrf_from(html),
            "submission_id": SUBMISSION_RE.search(html).group(1)}
    return client.post("/", data=data)


def cds_decision(app: Any) -> str:
    """A logged CDS Hooks decision for a 40-year-old with coded low back pain (T38)."""
    svc = app.extensions["referral_api"]
    request = svc.request_schema.load({"patient": {"age": 40}, "region": "lumbar",
                                       "symptom_duration_weeks": 1.5})
    record, _ = svc.decisions.decide(request, channel="cds-hooks", client="ehr",
                                     hook_instance="hook-1", order_ref="ServiceRequest/1")
    return record["decision_id"]


def test_groups_red_flags_and_new_contraindications(client) -> None:
    html = client.get("/").get_data(as_text=True)
    legends = re.findall(r"<legend>([^<]+)</legend>", html)
    for legend in ("Cauda equina", "Neurology", "Injury", "Infection", "Cancer", "History",
                   "Imaging already done"):
        assert legend in legends
    assert html.index("<legend>Cauda equina</legend>") < html.index("<legend>Neurology</legend>")
    # red flags are marked, with their definitions
    saddle = html.split('id="finding-saddle_anesthesia-hint">', 1)[1].split("</p>", 1)[0]
    assert "Red flag" in saddle
    cspine = html.split('id="finding-cspine_rule_low_risk-hint">', 1)[1].split("</p>", 1)[0]
    assert "Red flag" not in cspine and "Cervical requests after an injury only" in cspine
    for code in ("implant_unknown_mr_status", "neurostimulator", "intrathecal_pump",
                 "cochlear_implant", "programmable_shunt", "retained_metal_fragments",
                 "prior_gadolinium_reaction_mild", "prior_gadolinium_reaction_severe",
                 "breastfeeding", "metformin"):
        assert f'id="contraindication-{code}"' in html, code
    # retired codes are not offered
    assert 'id="contraindication-prior_gadolinium_reaction"' not in html
    assert 'id="finding-midline_cervical_tenderness"' not in html
    assert 'id="days_since_injury"' in html


def test_days_since_injury_required_once_an_injury_is_ticked(client, v2_app) -> None:
    response = post(client, age="45", region="lumbar", symptom_duration_weeks="1",
                    findings=["minor_trauma"])
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="days_since_injury-error"' in html and "Days since the injury</a>" in html
    assert decision_count(v2_app) == 0
    done = post(client, age="45", region="lumbar", symptom_duration_weeks="1",
                findings=["minor_trauma"], days_since_injury="2")
    assert done.status_code == 200, done.get_data(as_text=True)[:3000]
    records, _ = v2_app.extensions["referral_api"].log.query({}, limit=1, cursor=None)
    record = v2_app.extensions["referral_api"].log.get(records[0]["decision_id"])
    assert record["input"]["days_since_injury"] == 2
    assert record["scenario"]["id"] == "lumbar.low_velocity_trauma"  # criteria §13 T21


def test_cspine_low_risk_only_for_cervical_after_injury(client, v2_app) -> None:
    lumbar = post(client, age="30", region="lumbar", symptom_duration_weeks="0",
                  findings=["minor_trauma", "cspine_rule_low_risk"], days_since_injury="1")
    assert lumbar.status_code == 422
    assert "applies only to a cervical request after an injury" in lumbar.get_data(as_text=True)
    no_injury = post(client, age="30", region="cervical", symptom_duration_weeks="1",
                     findings=["cspine_rule_low_risk"])
    assert no_injury.status_code == 422
    ok = post(client, age="30", region="cervical", symptom_duration_weeks="0",
              findings=["minor_trauma", "cspine_rule_low_risk"], days_since_injury="1")
    assert ok.status_code == 200
    records, _ = v2_app.extensions["referral_api"].log.query({}, limit=1, cursor=None)
    assert records[0]["scenario"]["id"] == "cervical.trauma_low_risk"  # criteria §13 T18


def test_confirm_mode_lists_items_first_unanswered(client, v2_app) -> None:
    cds_id = cds_decision(v2_app)
    link = (f"/?age=40&region=lumbar&requested_procedure=mri_lumbar_without_contrast"
            f"&symptom_duration_weeks=1.5&confirm=saddle_anesthesia,urinary_retention"
            f"&cds_decision={cds_id}")
    html = client.get(link).get_data(as_text=True)
    confirm = html.index('id="confirm-group"')
    assert confirm < html.index('id="age"')  # the listed items come first of all
    assert 'name="confirm_saddle_anesthesia" value="yes"' in html
    block = html[confirm:html.index("</section>", confirm)]
    assert "checked" not in block  # unanswered
    # the confirmed items are not repeated as ordinary checkboxes
    assert 'id="finding-saddle_anesthesia"' not in html
    assert f'name="cds_decision" value="{cds_id}"' in html


def test_confirm_mode_requires_each_answer_then_references_the_cds_decision(client,
                                                                            v2_app) -> None:
    cds_id = cds_decision(v2_app)
    link = (f"/?age=40&region=lumbar&symptom_duration_weeks=1.5"
            f"&confirm=saddle_anesthesia,urinary_retention&cds_decision={cds_id}")
    base = {"age": "40", "region": "lumbar", "symptom_duration_weeks": "1.5",
            "confirm": "saddle_anesthesia,urinary_retention", "cds_decision": cds_id}
    partial = post(client, link, **base, confirm_saddle_anesthesia="no")
    assert partial.status_code == 422
    text = partial.get_data(as_text=True)
    assert "Answer yes or no for each red flag to confirm: Urinary retention." in text
    assert 'name="confirm_saddle_anesthesia" value="no" required\n               checked' in text
    assert decision_count(v2_app) == 1  # only the CDS decision
    done = post(client, link, **base, confirm_saddle_anesthesia="no",
                confirm_urinary_retention="yes")
    assert done.status_code == 200
    html = done.get_data(as_text=True)
    assert "Confirms CDS decision" in html and cds_id in html
    assert decision_count(v2_app) == 2
    records, _ = v2_app.extensions["referral_api"].log.query({"channel": "form"}, limit=1,
                                                             cursor=None)
    record = v2_app.extensions["referral_api"].log.get(records[0]["decision_id"])
    assert record["input"]["findings"] == ["urinary_retention"]
    assert record["urgency"] == "emergent"
    row = v2_app.extensions["referral_api"].log.db().conn.execute(
        "SELECT order_ref FROM decisions WHERE decision_id = ?",
        [record["decision_id"]]).fetchone()
    assert row[0] == f"confirms:{cds_id}"


def test_confirm_reference_to_an_unknown_decision_is_not_recorded(client, v2_app) -> None:
    base = {"age": "40", "region": "lumbar", "symptom_duration_weeks": "1.5",
            "cds_decision": "00000000-0000-4000-8000-000000000000"}
    assert post(client, **base).status_code == 200
    html = post(client, **base).get_data(as_text=True)
    assert "Confirms CDS decision" not in html
