"""The audit pages through Flask's test client: roles, filters, paging, detail, CSV, access log."""

from __future__ import annotations

import csv
import io
import re

from referral_api.audit.export import CSV_COLUMNS
from referral_api.store.interface import NewFeedback
from tests.web.pages import sign_in


def seed(app, n: int = 3, channel: str = "api") -> list[dict]:
    svc = app.extensions["referral_api"]
    records = []
    for i in range(n):
        request = svc.request_schema.load({
            "patient": {"age": 40 + i}, "region": "lumbar", "symptom_duration_weeks": 2,
            "findings": ["urinary_retention"] if i % 2 == 0 else []})
        record, _ = svc.decisions.decide(request, channel=channel, client=f"client-{channel}")
        records.append(record)
    return records


def access_actions(app) -> list[str]:
    rows = app.extensions["referral_api"].log.access_log(limit=100)
    return [row["action"] for row in rows]


def test_audit_requires_sign_in(browser) -> None:
    response = browser.get("/audit?region=lumbar")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/sign-in?next=")


def test_audit_lists_filters_and_charts(browser, keys, web_app) -> None:
    records = seed(web_app, 3) + seed(web_app, 1, channel="form")
    web_app.extensions["referral_api"].log.append_feedback(
        records[1]["decision_id"], NewFeedback("overridden"), "client-api")
    sign_in(browser, keys["auditor"])
    html = browser.get("/audit").get_data(as_text=True)
    for record in records:
        assert record["decision_id"] in html
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 2
    assert "<title id=\"chart-weekly-title\">Decisions per week by appropriateness</title>" in html
    assert "100% · 1 decision<" in html  # lumbar.uncomplicated: one of one with feedback
    filtered = browser.get("/audit?channel=form").get_data(as_text=True)
    assert records[-1]["decision_id"] in filtered
    assert records[0]["decision_id"] not in filtered
    assert "web_audit_list" in access_actions(web_app)


def test_audit_pages_with_keyset_cursor(browser, keys, web_app, monkeypatch) -> None:
    from referral_api.web import audit

    monkeypatch.setattr(audit, "PAGE_SIZE", 2)
    records = seed(web_app, 5)
    sign_in(browser, keys["auditor"])
    first = browser.get("/audit?region=lumbar").get_data(as_text=True)
    next_link = re.search(r'href="([^"]*cursor=[^"]+)" rel="next"', first).group(1)
    assert "region=lumbar" in next_link
    second = browser.get(next_link.replace("&amp;", "&")).get_data(as_text=True)
    newest_first = [r["decision_id"] for r in reversed(records)]
    assert newest_first[0] in first and newest_first[1] in first
    assert newest_first[2] in second and newest_first[0] not in second
    broken = browser.get("/audit?region=lumbar&cursor=garbage")
    assert broken.status_code == 200 and "no longer valid" in broken.get_data(as_text=True)


def test_invalid_filter_is_shown_next_to_it(browser, keys) -> None:
    sign_in(browser, keys["auditor"])
    response = browser.get("/audit?since=yesterday&urgency=soon")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="f-since-error"' in html and 'id="f-urgency-error"' in html
    assert 'value="yesterday"' in html


def test_decision_detail_shows_input_output_feedback_chain(browser, keys, web_app) -> None:
    record = seed(web_app, 1)[0]
    web_app.extensions["referral_api"].log.append_feedback(
        record["decision_id"], NewFeedback("accepted"), "client-api")
    sign_in(browser, keys["auditor"])
    response = browser.get(f"/audit/decisions/{record['decision_id']}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    stored = web_app.extensions["referral_api"].log.get(record["decision_id"])
    assert stored["chain"]["hash"] in html and stored["chain"]["prev_hash"] in html
    assert "Feedback: Accepted" in html and "urinary_retention" in html
    assert browser.get("/audit/decisions/not-a-decision").status_code == 404
    assert "web_audit_decision" in access_actions(web_app)


def test_csv_export_streams_the_filtered_decisions(browser, keys, web_app) -> None:
    seed(web_app, 2)
    form_record = seed(web_app, 1, channel="form")[0]
    sign_in(browser, keys["admin"])
    response = browser.get("/audit/export.csv?channel=form")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    # The API's export columns (referral_api/audit/export.py), not a dashboard-only set.
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row[0] for row in rows[1:]] == [form_record["decision_id"]]
    row = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert row["channel"] == "form" and row["client"] == "client-form"
    assert row["chain_hash"] == form_record["chain"]["hash"]
    assert "web_audit_export" in access_actions(web_app)


def test_csv_export_is_the_api_export_and_neutralises_formulas(browser, keys, web_app) -> None:
    svc = web_app.extensions["referral_api"]
    request = svc.request_schema.load({
        "patient": {"age": 61, "reference": "MRN-CSV-7"}, "region": "lumbar",
        "symptom_duration_weeks": 8, "findings": ["radiculopathy"],
        "ordering_clinician": "+staff-1"})
    formula = '=HYPERLINK("http://x.example")'
    svc.decisions.decide(request, channel="api", client=formula)
    sign_in(browser, keys["admin"])
    page = browser.get("/audit/export.csv").get_data(as_text=True)
    api = browser.get("/v1/decisions/export?format=csv", headers={
        "Authorization": f"Bearer {keys['auditor']}"}).get_data(as_text=True)
    assert page == api  # one CSV definition, byte for byte
    header, row = list(csv.reader(io.StringIO(page)))
    cells = dict(zip(header, row, strict=True))
    assert cells["client"] == "'" + formula
    assert cells["ordering_clinician"] == "'+staff-1"
    assert cells["patient_hash"] == svc.decisions.patient_hash("MRN-CSV-7")
    assert "MRN-CSV-7" not in page


def test_csv_export_when_the_log_cannot_be_read_is_a_503_page(browser, keys, web_app,
                                                              monkeypatch) -> None:
    from referral_api.store.interface import LogUnavailable

    sign_in(browser, keys["admin"])

    def unreadable(_filters):
        raise LogUnavailable("disk I/O error")
        yield  # a generator, like the real one: the fault surfaces at the first record

    monkeypatch.setattr(web_app.extensions["referral_api"].log, "iter_records", unreadable)
    response = browser.get("/audit/export.csv")
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert "web_audit_export" not in access_actions(web_app)


def test_clinician_cannot_reach_audit_detail_or_export(browser, keys) -> None:
    sign_in(browser, keys["clinician"])
    assert browser.get("/audit/export.csv").status_code == 403
    assert browser.get("/audit/decisions/x").status_code == 403
