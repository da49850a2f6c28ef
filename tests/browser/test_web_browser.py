"""The HTML pages in headless Chromium: sign-in, a cauda equina referral, validation, CSRF,
labels, the audit table and charts, and the printed one-page summary."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from referral_api.store.interface import NewFeedback
from tests.browser.live import LiveServer, sign_in

pytestmark = pytest.mark.browser

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def fill_cauda_equina(page: Any, *, age: str = "52") -> None:
    page.get_by_label("Age (years)").fill(age)
    page.get_by_label("Sex", exact=True).select_option("female")
    page.get_by_label("Region").select_option("lumbar")
    page.get_by_label("Symptom duration (weeks)").fill("1")
    page.get_by_label("Urinary retention", exact=True).check()


def test_cauda_equina_referral_end_to_end(page: Any, live_server: LiveServer,
                                          artifacts: Path) -> None:
    sign_in(page, live_server, "clinician")
    assert page.get_by_role("heading", name="Spine MRI referral check").is_visible()
    before = live_server.decision_count()
    fill_cauda_equina(page)
    page.get_by_role("button", name="Evaluate referral").click()
    page.wait_for_load_state()

    assert page.locator("[data-testid=appropriateness]").inner_text() == "Usually appropriate"
    assert page.locator("[data-testid=headline]").inner_text().startswith("Emergency: MRI lumbar")
    urgency = page.locator(".urgency-line .badge")
    assert urgency.inner_text().strip() == "Emergent"
    # colour AND text: the badge is coloured, not only worded
    assert urgency.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    decision_id = page.locator("[data-testid=decision-id]").inner_text().strip()
    assert UUID_RE.match(decision_id)
    assert live_server.decision_count() == before + 1
    record = live_server.app.extensions["referral_api"].log.get(decision_id)
    assert record["channel"] == "form" and record["client"] == "browser-clinician"
    assert record["scenario"]["id"] == "lumbar.cauda_equina"
    for heading in ("Plan", "Reasons", "What would change this"):
        assert page.get_by_role("heading", name=heading).is_visible()
    # scenario ids and sources sit behind a details element, out of the clinician's way
    assert not page.get_by_role("heading", name="Sources").is_visible()
    page.get_by_text("Scenario and sources").click()
    assert page.get_by_role("heading", name="Sources").is_visible()
    assert page.get_by_text(record["ruleset"]["version"]).first.is_visible()
    page.screenshot(path=str(artifacts / "form-result.png"), full_page=True)

    # The print stylesheet gives a one-page summary without the navigation.
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    page.screenshot(path=str(artifacts / "form-result-print.png"), full_page=True)
    pdf = page.pdf(format="A4", print_background=True)
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages == 1, f"printed summary takes {pages} pages"


def test_form_screenshot_and_every_control_labelled(page: Any, live_server: LiveServer,
                                                    artifacts: Path) -> None:
    sign_in(page, live_server, "clinician")
    assert page.locator("html").get_attribute("lang") == "en"
    controls = page.locator("main input:not([type=hidden]), main select")
    count = controls.count()
    assert count > 30
    conditional = []
    for index in range(count):
        control = controls.nth(index)
        if not control.is_visible():  # shown only when it applies (after an injury)
            conditional.append(control.get_attribute("id"))
            continue
        name, control_id, labels = control.evaluate(
            "e => [e.name, e.id, Array.from(e.labels || []).map(l => l.innerText.trim())]")
        assert labels and labels[0], f"control {name!r} (#{control_id}) has no visible label"
        label = page.locator(f"label[for='{control_id}']")
        assert label.count() == 1 and label.is_visible(), control_id
    assert set(conditional) <= {"days_since_injury", "finding-cspine_rule_low_risk"}
    # Findings are grouped in fieldsets built from the vocabulary in force, with definitions.
    vocabulary = live_server.app.extensions["referral_api"].request_schema.vocabulary()
    legends = (("Cauda equina", "Neurology", "Injury", "Infection", "Cancer", "History",
                "Imaging already done") if vocabulary.format >= 2
               else ("Red flags", "Neurological", "Trauma", "History"))
    for legend in legends:
        exact = re.compile(f"^{re.escape(legend)}$")
        assert page.locator("fieldset > legend", has_text=exact).count() == 1, legend
    finding = vocabulary.findings["saddle_anesthesia"]
    assert page.get_by_label(finding.label, exact=True).get_attribute("value") == finding.code
    assert page.get_by_text(finding.definition).is_visible()
    page.screenshot(path=str(artifacts / "form.png"), full_page=True)


def test_validation_error_shown_next_to_field_values_kept(page: Any, live_server: LiveServer,
                                                          artifacts: Path) -> None:
    sign_in(page, live_server, "clinician")
    before = live_server.decision_count()
    fill_cauda_equina(page, age="130")
    page.get_by_label("Fever", exact=True).check()
    page.get_by_role("button", name="Evaluate referral").click()
    page.wait_for_load_state()
    error = page.locator("#age-error")
    assert error.is_visible() and "120" in error.inner_text()
    age = page.get_by_label("Age (years)")
    assert age.input_value() == "130"
    assert age.get_attribute("aria-invalid") == "true"
    # the error sits with its field, right after the input
    assert page.locator(".field:has(#age) #age-error").count() == 1
    assert page.get_by_label("Region").input_value() == "lumbar"
    assert page.get_by_label("Urinary retention", exact=True).is_checked()
    assert page.get_by_label("Fever", exact=True).is_checked()
    assert page.get_by_role("alert").first.is_visible()  # the error summary
    assert live_server.decision_count() == before
    page.screenshot(path=str(artifacts / "form-validation-error.png"), full_page=True)


def test_post_without_csrf_token_is_refused(page: Any, live_server: LiveServer) -> None:
    sign_in(page, live_server, "clinician")  # a valid session cookie in this context
    before = live_server.decision_count()
    response = page.request.post(live_server.url("/"), form={
        "age": "52", "region": "lumbar", "symptom_duration_weeks": "1",
        "findings": "urinary_retention"})
    assert response.status in (400, 403)
    forged = page.request.post(live_server.url("/"), form={
        "age": "52", "region": "lumbar", "symptom_duration_weeks": "1", "csrf_token": "forged"})
    assert forged.status in (400, 403)
    assert live_server.decision_count() == before


def test_evaluator_key_cannot_sign_in(page: Any, live_server: LiveServer) -> None:
    sign_in(page, live_server, "evaluator")
    assert "does not have the clinician or auditor role" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Access key").is_visible()


def test_audit_table_chart_and_detail(page: Any, live_server: LiveServer,
                                      artifacts: Path) -> None:
    svc = live_server.app.extensions["referral_api"]
    seeded = []
    for findings in (["urinary_retention"], [], ["fever", "iv_drug_use"], []):
        request = svc.request_schema.load({"patient": {"age": 60}, "region": "lumbar",
                                           "symptom_duration_weeks": 2, "findings": findings})
        record, _ = svc.decisions.decide(request, channel="api", client="seed-client")
        seeded.append(record)
    svc.log.append_feedback(seeded[1]["decision_id"], NewFeedback("overridden"), "seed-client")

    sign_in(page, live_server, "auditor")
    assert page.url.endswith("/audit")
    table = page.locator("#decisions-table")
    assert table.is_visible()
    assert table.locator("tbody tr").count() >= len(seeded)
    charts = page.locator("svg.chart")
    assert charts.count() == 2
    weekly = page.locator("#weekly-chart svg")
    assert weekly.locator("title").first.text_content() == \
        "Decisions per week by appropriateness"
    assert weekly.locator("rect title").count() >= 1
    box = weekly.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 150
    override = page.locator("#override-chart svg")
    assert "lumbar.uncomplicated" in override.text_content()
    page.screenshot(path=str(artifacts / "audit.png"), full_page=True)

    page.get_by_label("Channel").select_option("form")
    page.get_by_role("button", name="Apply filters").click()
    assert "channel=form" in page.url
    for row in page.locator("#decisions-table tbody tr").all():
        assert "Web form" in row.inner_text()

    page.goto(live_server.url(f"/audit/decisions/{seeded[1]['decision_id']}"))
    assert page.get_by_role("heading", name="Hash chain").is_visible()
    assert page.get_by_role("heading", name="Feedback: Overridden").is_visible()
    page.screenshot(path=str(artifacts / "audit-decision.png"), full_page=True)


@pytest.mark.parametrize("path,role,name", [("/audit", "auditor", "audit"),
                                            ("/", "clinician", "form")])
def test_pages_fit_a_phone_screen(chromium: Any, live_server: LiveServer, artifacts: Path,
                                  path: str, role: str, name: str) -> None:
    """At 390 px nothing overflows the page sideways: wide tables scroll inside their box."""
    if path == "/audit":
        svc = live_server.app.extensions["referral_api"]
        request = svc.request_schema.load({"patient": {"age": 60}, "region": "lumbar",
                                           "symptom_duration_weeks": 2, "findings": ["fever"]})
        svc.decisions.decide(request, channel="api", client="seed-client-with-a-long-label")
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, live_server, role)
        page.goto(live_server.url(path))
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        page.screenshot(path=str(artifacts / f"{name}-phone.png"), full_page=True)
        assert overflow <= 0, f"{path} is {overflow} px wider than a 390 px screen"
        if path == "/audit":
            scroller = page.locator(".table-scroll").first
            widths = scroller.evaluate("e => [e.scrollWidth, e.clientWidth]")
            # The table is wider than the phone and scrolls inside its own box.
            assert widths[0] > widths[1]
            # Charts keep a legible size (labels at 3/4 scale at least) and scroll likewise.
            for chart in page.locator(".chart-block svg").all():
                box = chart.bounding_box()
                assert box is not None and box["width"] >= 540
    finally:
        context.close()
