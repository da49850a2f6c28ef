"""Issue 11 in a real browser: the headline and plan for the cases that hurt when wrong (MR
Unsafe implant, pacemaker, child with cauda equina signs), the patient handout, phones and
paper, no lost work on an expired session, local times, keyboard-only use, and axe-core on
every page. Screenshots go to tests/artifacts/ (git-ignored) for review."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.browser.accessibility import assert_accessible
from tests.browser.live import LiveServer, sign_in

pytestmark = pytest.mark.browser

MR_UNSAFE = {"age": "70", "region": "lumbar", "weeks": "3", "findings": ["history_of_cancer"],
             "contraindications": ["mr_unsafe_implant"]}
PACEMAKER = {"age": "60", "region": "lumbar", "weeks": "10", "care": "8", "candidate": True,
             "findings": ["radiculopathy"], "egfr": "20",
             "contraindications": ["non_conditional_cardiac_device"]}
CHILD_CES = {"age": "10", "region": "lumbar", "weeks": "1",
             "findings": ["saddle_anesthesia", "urinary_retention"]}
UNCOMPLICATED = {"age": "40", "region": "lumbar", "weeks": "1", "findings": []}


def fill(page: Any, case: dict[str, Any], reference: str | None = None) -> None:
    """Fill the form like a clinician does (labels, not ids, for the main fields)."""
    page.get_by_label("Age (years)").fill(case["age"])
    page.get_by_label("Region").select_option(case["region"])
    page.get_by_label("Symptom duration (weeks)").fill(case["weeks"])
    if case.get("care"):
        page.get_by_label("Conservative care completed (weeks)").fill(case["care"])
    if case.get("candidate"):
        page.get_by_label("Candidate for surgery or an intervention").check()
    for code in case.get("findings", []):
        page.locator(f"#finding-{code}").check()
    for code in case.get("contraindications", []):
        page.locator(f"#contraindication-{code}").check()
    if case.get("egfr"):
        page.get_by_label("eGFR (mL/min/1.73 m², optional)").fill(case["egfr"])
    if reference:
        page.get_by_label("Patient reference (optional)").fill(reference)


def evaluate(page: Any, server: LiveServer, case: dict[str, Any],
             reference: str | None = None) -> str:
    """Fill and submit the form; returns the decision id shown."""
    page.goto(server.url("/"))
    fill(page, case, reference)
    page.get_by_role("button", name="Evaluate referral").click()
    page.wait_for_load_state()
    return page.locator("[data-testid=decision-id]").inner_text().strip()


def pdf_pages(page: Any) -> int:
    """Pages of the PDF Chromium prints for the current page (A4)."""
    pdf = page.pdf(format="A4", print_background=True)
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf))


def no_sideways_scroll(page: Any) -> int:
    return page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_mr_unsafe_case_red_headline_contraindicated_badges(page: Any, live_server: LiveServer,
                                                            artifacts: Path) -> None:
    sign_in(page, live_server, "clinician")
    evaluate(page, live_server, MR_UNSAFE, reference="MRN-0070")
    headline = page.locator("[data-testid=headline]")
    assert "MRI contraindicated (MR Unsafe implant)" in headline.inner_text()
    tone = page.locator(".headline-box").get_attribute("data-tone")
    assert tone in ("danger", "emergency")
    # the box is red, not green
    colour = page.locator(".headline-box").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(255, 228, 225)"
    plan = page.locator("[data-testid=plan]")
    for item in plan.locator("li").all():
        text = item.inner_text()
        if text.startswith(("MRI", "or MRI")):
            assert "Contraindicated" in text, text
    assert page.locator("[data-testid=requested-badge]").inner_text().strip() == \
        "Contraindicated"
    assert "Mr unsafe implant" not in page.content()  # a label, never a code in sentence case
    page.screenshot(path=str(artifacts / "issue11-mr-unsafe.png"), full_page=True)
    assert_accessible(page, "result (MR Unsafe implant)")
    # print: one A4 page, the patient reference on it, no navigation
    page.emulate_media(media="print")
    assert page.locator("[data-testid=patient-reference]").inner_text() == "MRN-0070"
    assert not page.locator(".site-header").is_visible()
    page.screenshot(path=str(artifacts / "issue11-mr-unsafe-print.png"), full_page=True)
    assert pdf_pages(page) == 1


def test_pacemaker_case_caution_shows_the_alternative(page: Any, live_server: LiveServer,
                                                      artifacts: Path) -> None:
    sign_in(page, live_server, "clinician")
    evaluate(page, live_server, PACEMAKER)
    plan = page.locator("[data-testid=plan]").inner_text()
    assert "If MRI cannot be done:" in plan
    fallback = plan.split("If MRI cannot be done:", 1)[1]
    # the study the caution names (2026.2.0: the first CT of the MBA list; else CT myelography)
    assert re.match(r"\s*CT (lumbar spine|myelography, lumbar spine)", fallback), fallback
    assert "Non-MR-conditional cardiac device" in page.locator(
        "[data-testid=headline]").inner_text()
    assert page.locator(".headline-box").get_attribute("data-tone") == "caution"
    assert "Caution: see safety" in plan
    page.screenshot(path=str(artifacts / "issue11-pacemaker.png"), full_page=True)
    assert_accessible(page, "result (pacemaker)")


def test_child_with_cauda_equina_signs_no_conservative_care(page: Any, live_server: LiveServer,
                                                            artifacts: Path) -> None:
    sign_in(page, live_server, "clinician")
    evaluate(page, live_server, CHILD_CES)
    headline = page.locator("[data-testid=headline]").inner_text()
    assert headline.startswith(("Emergency:", "Not covered")), headline
    assert page.locator(".headline-box").get_attribute("data-tone") == "emergency"
    assert "conservative care" not in page.locator("main").inner_text().lower()
    page.screenshot(path=str(artifacts / "issue11-child-cauda-equina.png"), full_page=True)
    page.emulate_media(media="print")
    assert pdf_pages(page) == 1


def test_result_and_form_at_390_px(chromium: Any, live_server: LiveServer,
                                   artifacts: Path) -> None:
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, live_server, "clinician")
        assert no_sideways_scroll(page) <= 0
        evaluate(page, live_server, MR_UNSAFE)
        page.locator("details.changes-all summary, .changes details summary").first.click()
        overflow = no_sideways_scroll(page)
        page.screenshot(path=str(artifacts / "issue11-result-390px.png"), full_page=True)
        assert overflow <= 0, f"result page is {overflow} px wider than 390 px"
        # the full table scrolls inside its own box
        box = page.locator(".table-scroll").first
        assert box.evaluate("e => getComputedStyle(e).overflowX") == "auto"
    finally:
        context.close()


def test_expired_session_keeps_what_was_entered(chromium: Any, live_server: LiveServer,
                                                artifacts: Path) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, live_server, "clinician")
        before = live_server.decision_count()
        fill(page, PACEMAKER, reference="MRN-LOST-1")
        context.clear_cookies()  # the session ends while the clinician is typing
        page.get_by_role("button", name="Evaluate referral").click()
        page.wait_for_load_state()
        notice = page.locator("[data-testid=kept-notice]")
        assert "entered is kept" in notice.inner_text()
        assert live_server.decision_count() == before
        page.screenshot(path=str(artifacts / "issue11-expired-session.png"), full_page=True)
        assert_accessible(page, "sign-in after an expired session")
        page.get_by_label("Access key").fill(live_server.keys["clinician"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        assert page.get_by_label("Age (years)").input_value() == "60"
        assert page.get_by_label("eGFR (mL/min/1.73 m², optional)").input_value() == "20"
        assert page.get_by_label("Patient reference (optional)").input_value() == "MRN-LOST-1"
        assert page.locator("#finding-radiculopathy").is_checked()
        assert page.locator("#contraindication-non_conditional_cardiac_device").is_checked()
        assert page.get_by_label("Candidate for surgery or an intervention").is_checked()
        page.screenshot(path=str(artifacts / "issue11-expired-session-restored.png"),
                        full_page=True)
        page.get_by_role("button", name="Evaluate referral").click()
        page.wait_for_load_state()
        assert page.locator("[data-testid=decision-id]").is_visible()
        assert live_server.decision_count() == before + 1
    finally:
        context.close()


def test_times_in_local_time_with_utc_on_hover(chromium: Any, live_server: LiveServer) -> None:
    context = chromium.new_context(timezone_id="America/New_York")
    page = context.new_page()
    try:
        sign_in(page, live_server, "clinician")
        evaluate(page, live_server, UNCOMPLICATED)
        when = page.locator("time[data-local-time]").first
        assert when.inner_text().endswith("(UTC-05:00)")
        assert when.get_attribute("title").endswith(" UTC")
        assert page.get_by_role("button", name="Print").is_visible()
    finally:
        context.close()


def test_injury_details_appear_when_an_injury_is_ticked(page: Any,
                                                        live_server: LiveServer) -> None:
    sign_in(page, live_server, "clinician")
    vocabulary = live_server.app.extensions["referral_api"].request_schema.vocabulary()
    if vocabulary.format < 2:
        pytest.skip("days since the injury come with vocabulary v2 (rule set 2026.2.0)")
    days = page.locator("#days_since_injury")
    low_risk = page.locator("#finding-cspine_rule_low_risk")
    assert not days.is_visible() and not low_risk.is_visible()
    page.get_by_label("Region").select_option("lumbar")
    page.locator("#finding-minor_trauma").check()
    assert days.is_visible() and not low_risk.is_visible()  # lumbar: no C-spine rule
    page.get_by_label("Region").select_option("cervical")
    assert low_risk.is_visible()
    page.get_by_label("Age (years)").fill("30")
    page.get_by_label("Symptom duration (weeks)").fill("0")
    page.get_by_role("button", name="Evaluate referral").click()
    page.wait_for_load_state()
    # required once an injury is ticked: the error sits with the field, which stays shown
    assert page.locator("#days_since_injury-error").is_visible()
    page.locator("#days_since_injury").fill("1")
    page.get_by_role("button", name="Evaluate referral").click()
    page.wait_for_load_state()
    assert page.locator("[data-testid=headline]").inner_text().startswith("Emergency: CT cervical")


def test_keyboard_only_form_completion_with_visible_focus(page: Any,
                                                          live_server: LiveServer) -> None:
    sign_in(page, live_server, "clinician")
    page.goto(live_server.url("/"))

    def tab_to(selector: str) -> None:
        for _ in range(300):
            page.keyboard.press("Tab")
            if page.evaluate(f"() => document.activeElement.matches({selector!r})"):
                style = page.evaluate(
                    "() => { const s = getComputedStyle(document.activeElement);"
                    " return [s.outlineStyle, s.outlineWidth, s.boxShadow]; }")
                assert style[0] != "none" and style[1] != "0px", (selector, style)
                return
        raise AssertionError(f"{selector} not reachable with Tab")

    tab_to("a.skip-link")
    assert page.locator("a.skip-link").is_visible()
    tab_to("#age")
    page.keyboard.type("52")
    tab_to("#region")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.locator("#region").input_value() == "lumbar"
    tab_to("#symptom_duration_weeks")
    page.keyboard.type("1")
    tab_to("#finding-urinary_retention")
    page.keyboard.press("Space")
    assert page.locator("#finding-urinary_retention").is_checked()
    tab_to("button.button-primary")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert page.locator("[data-testid=headline]").inner_text().startswith("Emergency:")


def test_axe_sign_in_form_audit_list_detail_and_charts(chromium: Any, live_server: LiveServer,
                                                       artifacts: Path) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(live_server.url("/sign-in"))
        assert_accessible(page, "sign-in")
        sign_in(page, live_server, "admin")
        page.goto(live_server.url("/"))
        assert_accessible(page, "form")
        decision_id = evaluate(page, live_server, CHILD_CES)
        assert_accessible(page, "result (child)")
        page.goto(live_server.url("/audit"))
        assert page.locator("svg.chart").count() == 2
        assert_accessible(page, "audit list with charts")
        page.goto(live_server.url(f"/audit/decisions/{decision_id}"))
        assert_accessible(page, "audit detail")
        # an error summary is accessible too
        page.goto(live_server.url("/"))
        page.get_by_role("button", name="Evaluate referral").click()
        page.wait_for_load_state()
        assert_accessible(page, "form with errors")
    finally:
        context.close()


def handout_or_skip(page: Any, server: LiveServer, decision_id: str) -> None:
    record = server.app.extensions["referral_api"].log.get(decision_id)
    if not record.get("patient_information"):
        pytest.skip(f"rule set {record['ruleset']['version']} in force has no patient "
                    "information")
    page.get_by_role("link", name="Patient handout").click()
    page.wait_for_load_state()


def test_uncomplicated_handout_reads_prints_and_passes_axe(page: Any, live_server: LiveServer,
                                                          artifacts: Path) -> None:
    sign_in(page, live_server, "clinician")
    decision_id = evaluate(page, live_server, UNCOMPLICATED)
    handout_or_skip(page, live_server, decision_id)
    assert page.url.endswith(f"/decisions/{decision_id}/patient")
    record = live_server.app.extensions["referral_api"].log.get(decision_id)
    info = record["patient_information"]
    assert page.locator("[data-testid=handout-headline]").inner_text() == info["headline"]
    for heading in ("What is happening", "Why this decision", "About the scan",
                    "What to do now", "When to get help", "Questions you can ask"):
        assert page.get_by_role("heading", name=heading).is_visible(), heading
    assert "{" not in page.locator("main").inner_text()  # every placeholder filled
    font = page.locator(".handout p").first.evaluate("e => parseFloat(getComputedStyle(e)"
                                                     ".fontSize)")
    assert font >= 18  # large type
    page.screenshot(path=str(artifacts / "issue11-handout-uncomplicated.png"), full_page=True)
    assert_accessible(page, "patient handout")
    page.emulate_media(media="print")
    assert pdf_pages(page) == 1
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 390, "height": 844})
    assert no_sideways_scroll(page) <= 0
    page.screenshot(path=str(artifacts / "issue11-handout-390px.png"), full_page=True)


def test_emergency_handout_at_most_two_pages(page: Any, live_server: LiveServer,
                                             artifacts: Path) -> None:
    sign_in(page, live_server, "clinician")
    decision_id = evaluate(page, live_server, MR_UNSAFE | {"findings": [
        "history_of_cancer", "urinary_retention"]})
    handout_or_skip(page, live_server, decision_id)
    # MRI is contraindicated: the handout never tells the patient they need an MRI
    assert "MRI" not in page.locator("[data-testid=handout-headline]").inner_text()
    assert page.locator("[data-testid=handout-safety]").is_visible()
    # the emergency signs come before the explanations
    text = page.locator("main").inner_text()
    assert text.index("When to get help") < text.index("What is happening")
    page.screenshot(path=str(artifacts / "issue11-handout-emergency.png"), full_page=True)
    assert_accessible(page, "patient handout (emergency)")
    page.emulate_media(media="print")
    assert pdf_pages(page) <= 2


def test_confirm_mode_from_a_cds_card_link(page: Any, live_server: LiveServer,
                                           artifacts: Path) -> None:
    svc = live_server.app.extensions["referral_api"]
    if svc.request_schema.vocabulary().format < 2:
        pytest.skip("confirm mode comes with rule set 2026.2.0")
    request = svc.request_schema.load({"patient": {"age": 40}, "region": "lumbar",
                                       "symptom_duration_weeks": 1.5})
    cds, _ = svc.decisions.decide(request, channel="cds-hooks", client="ehr",
                                  hook_instance="hook-confirm", order_ref="ServiceRequest/9")
    sign_in(page, live_server, "clinician")
    page.goto(live_server.url(
        "/?age=40&region=lumbar&symptom_duration_weeks=1.5"
        "&confirm=bilateral_radiculopathy,saddle_anesthesia,urinary_retention"
        f"&cds_decision={cds['decision_id']}"))
    confirm = page.locator("#confirm-group")
    box = confirm.bounding_box()
    age_box = page.get_by_label("Age (years)").bounding_box()
    assert box and age_box and box["y"] < age_box["y"]  # listed items first
    assert confirm.locator("input:checked").count() == 0  # unanswered
    page.screenshot(path=str(artifacts / "issue11-confirm-mode.png"), full_page=True)
    assert_accessible(page, "form in confirm mode")
    before = live_server.decision_count()
    page.get_by_role("button", name="Evaluate referral").click()
    page.wait_for_load_state()
    assert "Answer yes or no" in page.locator(".error-summary").inner_text()
    assert live_server.decision_count() == before
    for code, answer in (("bilateral_radiculopathy", "no"), ("saddle_anesthesia", "yes"),
                         ("urinary_retention", "no")):
        page.locator(f"input[name=confirm_{code}][value={answer}]").check()
    page.get_by_role("button", name="Evaluate referral").click()
    page.wait_for_load_state()
    assert page.locator("[data-testid=headline]").inner_text().startswith("Emergency:")
    assert cds["decision_id"] in page.locator(".entered").inner_text()
    assert live_server.decision_count() == before + 1


@pytest.mark.parametrize("name,case", [
    ("t04-union", {"age": "66", "region": "thoracic", "weeks": "1", "days": "2",
                   "findings": ["history_of_cancer", "minor_trauma",
                                "progressive_neurologic_deficit"]}),
    ("t34-many-alerts", {"age": "60", "region": "lumbar", "weeks": "1", "egfr": "25",
                         "findings": ["fever", "iv_drug_use"],
                         "contraindications": ["mr_unsafe_implant", "metformin"]}),
])
def test_long_summaries_still_print_on_one_page(page: Any, live_server: LiveServer,
                                                artifacts: Path, name: str,
                                                case: dict[str, Any]) -> None:
    """The worst cases of criteria §13: a four-step union plan (T04) and a contraindication
    with three contrast alerts (T34) still give a one-page A4 summary."""
    sign_in(page, live_server, "clinician")
    page.goto(live_server.url("/"))
    fill(page, case)
    if case.get("days") and page.locator("#days_since_injury").count():
        page.locator("#days_since_injury").fill(case["days"])
    page.get_by_role("button", name="Evaluate referral").click()
    page.wait_for_load_state()
    assert page.locator("[data-testid=decision-id]").is_visible()
    page.emulate_media(media="print")
    page.screenshot(path=str(artifacts / f"issue11-print-{name}.png"), full_page=True)
    assert pdf_pages(page) == 1


@pytest.mark.slow  # every 2026.2.0 scenario through Chromium's PDF: ~20-30 s
def test_every_2026_2_scenario_handout_prints_within_its_page_limit(
        page: Any, live_server: LiveServer, artifacts: Path) -> None:
    """One decision per scenario of 2026.2.0 (from the rule files' own test requests): its
    handout exists, fills every placeholder, and prints on one A4 page (two for emergent)."""
    svc = live_server.app.extensions["referral_api"]
    try:
        ruleset = svc.registry.get("2026.2.0")
    except KeyError:
        pytest.skip("rule set 2026.2.0 is not loaded")
    sign_in(page, live_server, "clinician")
    page.emulate_media(media="print")
    done: dict[str, int] = {}
    too_long = []
    for case in ruleset.tests:
        request = svc.request_schema.load(dict(case.request))
        record, _ = svc.decisions.decide(request, channel="form", client="browser-clinician")
        scenario = record["scenario"]["id"]
        if scenario in done:
            continue
        page.goto(live_server.url(f"/decisions/{record['decision_id']}/patient"))
        assert page.locator("[data-testid=handout-headline]").count() == 1, scenario
        assert "{" not in page.locator("main").inner_text(), scenario
        pages = pdf_pages(page)
        done[scenario] = pages
        if pages > (2 if record["urgency"] == "emergent" else 1):
            too_long.append((scenario, record["urgency"], pages))
    scenarios = {s.id for rules in ruleset.regions.values() for s in rules.scenarios}
    assert set(done) == scenarios
    assert not too_long, too_long
    (artifacts / "issue11-handout-pages.txt").write_text(
        "".join(f"{s}\t{n}\n" for s, n in sorted(done.items())), encoding="utf-8")


def form_fields(request: dict[str, Any]) -> dict[str, Any]:
    """A validated API request as the clinician form's fields (multi-valued lists)."""
    fields: dict[str, Any] = {"age": str(request["patient"]["age"]),
                              "region": request["region"],
                              "symptom_duration_weeks": str(request["symptom_duration_weeks"]),
                              "conservative_care_weeks": str(request["conservative_care_weeks"])}
    if request.get("requested_procedure"):
        fields["requested_procedure"] = request["requested_procedure"]
    if request.get("intervention_candidate"):
        fields["intervention_candidate"] = "true"
    for name in ("egfr", "days_since_injury"):
        if request.get(name) is not None:
            fields[name] = str(request[name])
    return fields


@pytest.mark.slow  # every 2026.2.0 scenario through Chromium's PDF: ~20-30 s
def test_every_2026_2_scenario_summary_prints_on_one_page(page: Any,
                                                          live_server: LiveServer) -> None:
    """The result page of one form decision per 2026.2.0 scenario prints on one A4 page and
    fits a 390 px phone screen."""
    svc = live_server.app.extensions["referral_api"]
    try:
        ruleset = svc.registry.get("2026.2.0")
    except KeyError:
        pytest.skip("rule set 2026.2.0 is not loaded")
    sign_in(page, live_server, "clinician")
    seen: dict[str, int] = {}
    for case in ruleset.tests:
        request = svc.request_schema.load(dict(case.request))
        scenario = svc.decisions.evaluate(request)["scenario"]["id"]
        if scenario in seen:
            continue
        if any(f in request["findings"] for f in ("minor_trauma", "significant_trauma",
                                                   "midline_spinal_tenderness",
                                                   "midline_cervical_tenderness",
                                                   "distracting_injury")) \
                and request.get("days_since_injury") is None:
            request = {**request, "days_since_injury": 0}  # the form requires it
        page.goto(live_server.url("/"))
        token = page.locator("input[name=csrf_token]").first.get_attribute("value")
        data = [(k, v) for k, v in form_fields(request).items()]
        data += [("findings", c) for c in request["findings"]]
        data += [("contraindications", c) for c in request["contraindications"]]
        data += [("csrf_token", token)]
        body = "&".join(f"{k}={quote(str(v))}" for k, v in data)
        response = page.request.post(live_server.url("/"), data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        assert response.status == 200, (scenario, response.text()[:500])
        page.set_viewport_size({"width": 390, "height": 844})
        page.set_content(response.text())  # same origin: the stylesheet applies
        assert no_sideways_scroll(page) <= 0, scenario
        page.set_viewport_size({"width": 1280, "height": 900})
        page.emulate_media(media="print")
        seen[scenario] = pdf_pages(page)
        page.emulate_media(media="screen")
    scenarios = {s.id for rules in ruleset.regions.values() for s in rules.scenarios}
    assert set(seen) == scenarios, sorted(scenarios - set(seen))
    assert all(n == 1 for n in seen.values()), {s: n for s, n in seen.items() if n != 1}
