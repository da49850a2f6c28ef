"""The result page of issue 11 on the real engine: one headline first, the plan as steps with
badges that agree with safety, words instead of codes, the patient reference on the sheet.

The 2026.1.0 cases pin the evaluation time before 2026.2.0 took effect (the issue's examples
were found on 2026.1.0); the 2026.2.0 cases use the version in force now.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.pages import SUBMISSION_RE, csrf_from, sign_in

BEFORE_2026_2 = "2026-06-01T12:00:00Z"


@pytest.fixture
def v1_app(make_app):
    """The app evaluating under 2026.1.0 (time pinned before 2026-12-01)."""
    return make_app(EVALUATION_TIME=BEFORE_2026_2)


def clinician_client(app: Any) -> Any:
    client = app.test_client()
    store = app.extensions["referral_api"].keys
    key = store.create(["clinician"], "result-clinician")[1]
    assert sign_in(client, key).status_code == 303
    return client


def submit(client: Any, **form: Any) -> tuple[int, str]:
    html = client.get("/").get_data(as_text=True)
    data = {"conservative_care_weeks": "0", **form, "csrf_token": csrf_from(html),
            "submission_id": SUBMISSION_RE.search(html).group(1)}
    response = client.post("/", data=data)
    return response.status_code, response.get_data(as_text=True)


def headline_of(html: str) -> tuple[str, str]:
    tone = re.search(r'data-tone="([a-z]+)"', html)
    text = re.search(r'<h1 id="result-title" data-testid="headline">([^<]+)</h1>', html)
    assert tone and text, html[:2000]
    return text.group(1).replace("&amp;", "&"), tone.group(1)


def test_mr_unsafe_implant_is_red_and_never_green(v1_app) -> None:
    client = clinician_client(v1_app)
    status, html = submit(client, age="70", region="lumbar", symptom_duration_weeks="3",
                          findings=["history_of_cancer"],
                          contraindications=["mr_unsafe_implant"])
    assert status == 200, html
    text, tone = headline_of(html)
    assert "MRI contraindicated (MR Unsafe implant)" in text
    assert tone in ("danger", "emergency")
    plan = html.split('data-testid="plan"', 1)[1].split("</ol>", 1)[0]
    # every MRI in the plan carries "Contraindicated", none a green rating
    for item in re.findall(r"<li class=\"status-[a-z]+\">(.*?)</li>", plan, re.S):
        if "MRI" in item:
            assert "Contraindicated" in item and "verdict-usually-appropriate" not in item
    assert "Mr unsafe implant" not in html


def test_pacemaker_caution_lists_its_alternative(v1_app) -> None:
    client = clinician_client(v1_app)
    status, html = submit(client, age="60", region="lumbar", symptom_duration_weeks="10",
                          conservative_care_weeks="8", intervention_candidate="true",
                          findings=["radiculopathy"], egfr="20",
                          contraindications=["non_conditional_cardiac_device"])
    assert status == 200, html
    assert "If MRI cannot be done:" in html
    fallback = html.split("If MRI cannot be done:", 1)[1].split("</li>", 1)[0]
    assert "CT myelography, lumbar spine" in fallback
    _text, tone = headline_of(html)
    assert tone == "caution"
    assert "Egfr" not in html and "eGFR" in html


def test_child_with_cauda_equina_signs_is_never_conservative_care(v1_app) -> None:
    client = clinician_client(v1_app)
    status, html = submit(client, age="10", region="lumbar", symptom_duration_weeks="1",
                          findings=["saddle_anesthesia", "urinary_retention"])
    assert status == 200, html
    text, tone = headline_of(html)
    assert tone == "emergency"
    assert "same-day" in text
    assert "conservative care" not in html.lower()


def test_uncomplicated_says_no_imaging_and_when_to_reassess(v1_app) -> None:
    client = clinician_client(v1_app)
    status, html = submit(client, age="40", region="lumbar", symptom_duration_weeks="1")
    assert status == 200
    text, tone = headline_of(html)
    assert text == "No imaging now: conservative care, reassess at 6 weeks"
    assert tone == "neutral"
    assert "is may be appropriate" not in html


def test_changes_of_urgency_first_the_rest_behind_show_all(v1_app) -> None:
    client = clinician_client(v1_app)
    _status, html = submit(client, age="40", region="lumbar", symptom_duration_weeks="1")
    changes = html.split('id="change-title"', 1)[1].split("</section>", 1)[0]
    short = changes.split("<details", 1)[0]
    # the short list: emergent first, then urgent, then routine, by label
    levels = re.findall(r'badge urgency-([a-z]+)', short)
    assert levels == ["emergent", "urgent", "routine"]
    assert "Saddle anaesthesia" in short and "saddle_anesthesia" not in short
    assert "<table" not in short
    # the full table only behind "Show all", in its own scroll box
    assert "Show all changes (18)" in changes
    assert 'class="table-scroll" tabindex="0" role="region"' in changes
    # scenario ids only inside the details element; the table shows titles
    visible = changes.split("<details", 1)[0]
    assert not re.search(r"\blumbar\.[a-z_]+\b", visible)


def test_patient_reference_is_printed_and_stored_only_as_keyed_hash(v1_app) -> None:
    client = clinician_client(v1_app)
    status, html = submit(client, age="40", region="lumbar", symptom_duration_weeks="1",
                          patient_reference="MRN-123456")
    assert status == 200
    assert 'data-testid="patient-reference">MRN-123456<' in html
    records, _ = v1_app.extensions["referral_api"].log.query({}, limit=1, cursor=None)
    record = v1_app.extensions["referral_api"].log.get(records[0]["decision_id"])
    stored = record["input"]["patient"]["reference"]
    assert stored.startswith("hmac-sha256:") and "MRN-123456" not in str(record)


def test_times_are_marked_for_local_display_with_utc_kept(v1_app) -> None:
    client = clinician_client(v1_app)
    _status, html = submit(client, age="40", region="lumbar", symptom_duration_weeks="1")
    match = re.search(r'<time datetime="([^"]+)" title="([^"]+ UTC)" data-local-time>', html)
    assert match and match.group(1).endswith("Z")


def test_error_summary_uses_words_not_field_names(v1_app) -> None:
    client = clinician_client(v1_app)
    status, html = submit(client, age="40", region="lumbar", symptom_duration_weeks="x",
                          egfr="900")
    assert status == 422
    summary = html.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
    assert ">eGFR</a>" in summary and ">Symptom duration</a>" in summary
    assert "Egfr" not in summary and "Symptom duration weeks" not in summary


def test_handout_of_a_2026_1_decision_says_there_is_none(v1_app) -> None:
    client = clinician_client(v1_app)
    _status, html = submit(client, age="40", region="lumbar", symptom_duration_weeks="1")
    decision_id = re.search(r'data-testid="decision-id">([0-9a-f-]{36})<', html).group(1)
    assert "Patient handout" not in html
    response = client.get(f"/decisions/{decision_id}/patient")
    assert response.status_code == 404
    assert "has no patient information" in response.get_data(as_text=True)


def test_handout_needs_a_clinician_session(v1_app) -> None:
    anonymous = v1_app.test_client()
    response = anonymous.get("/decisions/00000000-0000-4000-8000-000000000000/patient")
    assert response.status_code == 303 and "/sign-in" in response.headers["Location"]
    auditor = v1_app.test_client()
    key = v1_app.extensions["referral_api"].keys.create(["auditor"], "a")[1]
    sign_in(auditor, key)
    assert auditor.get("/decisions/00000000-0000-4000-8000-000000000000/patient"
                       ).status_code == 403
