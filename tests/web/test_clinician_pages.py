"""The clinician form through Flask's test client: sign-in, roles, CSRF, prefill, evaluate."""

from __future__ import annotations

from html.parser import HTMLParser

from tests.web.pages import (
    SUBMISSION_RE,
    cauda_equina_form,
    csrf_from,
    decision_count,
    sign_in,
)


class Controls(HTMLParser):
    """Collects form controls, labels and checked/selected state from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.selected: dict[str, str] = {}
        self._select: str | None = None
        self.html_lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append({"tag": tag, **a})
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"] or "")
        if tag == "select":
            self._select = a.get("name")
        if tag == "option" and "selected" in a and self._select:
            self.selected[self._select] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def parse(html: str) -> Controls:
    parser = Controls()
    parser.feed(html)
    return parser


def checked(controls: Controls, name: str) -> set[str]:
    return {c["value"] or "" for c in controls.controls
            if c.get("name") == name and "checked" in c}


def value_of(controls: Controls, name: str) -> str | None:
    for c in controls.controls:
        if c.get("name") == name:
            return c.get("value")
    raise AssertionError(f"no control named {name}")


def test_sign_in_page_is_public_and_labelled(browser) -> None:
    response = browser.get("/")
    assert response.status_code == 200
    page = parse(response.get_data(as_text=True))
    assert page.html_lang == "en"
    key_inputs = [c for c in page.controls if c.get("name") == "key"]
    assert len(key_inputs) == 1 and key_inputs[0]["id"] in page.label_for
    assert ">Access key</label>" in response.get_data(as_text=True)
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_evaluator_key_is_refused_with_a_clear_message(browser, keys) -> None:
    response = sign_in(browser, keys["evaluator"])
    assert response.status_code == 403
    assert "does not have the clinician or auditor role" in response.get_data(as_text=True)
    assert 'name="key"' in browser.get("/").get_data(as_text=True)  # still signed out


def test_unknown_key_is_refused(browser) -> None:
    response = sign_in(browser, "rk_000000000000_" + "A" * 43)
    assert response.status_code == 401
    assert "not valid" in response.get_data(as_text=True)


def test_clinician_form_every_control_labelled(browser, keys, web_app) -> None:
    assert sign_in(browser, keys["clinician"]).status_code == 303
    response = browser.get("/")
    html = response.get_data(as_text=True)
    page = parse(html)
    assert page.html_lang == "en"
    unlabelled = [c for c in page.controls if c.get("id") not in page.label_for]
    assert not unlabelled
    names = {c.get("name") for c in page.controls}
    assert {"age", "sex", "region", "symptom_duration_weeks", "conservative_care_weeks",
            "intervention_candidate", "requested_procedure", "egfr", "findings",
            "contraindications"} <= names
    vocabulary = web_app.extensions["referral_api"].vocabulary
    finding_values = {c["value"] for c in page.controls if c.get("name") == "findings"}
    assert finding_values == set(vocabulary.findings)
    contra_values = {c["value"] for c in page.controls if c.get("name") == "contraindications"}
    assert contra_values == set(vocabulary.contraindications)
    for finding in vocabulary.findings.values():  # definitions come from the data file
        assert finding.definition.replace("'", "&#39;").replace('"', "&#34;") in html
    for legend in ("Red flags", "Neurological", "Trauma", "History"):
        assert f"<legend>{legend}</legend>" in html
    assert '<button type="submit" class="button-primary">Evaluate referral</button>' in html


def test_form_prefilled_from_query_parameters(browser, keys) -> None:
    sign_in(browser, keys["clinician"])
    response = browser.get("/?age=70&sex=male&region=thoracic&symptom_duration_weeks=3"
                           "&findings=urinary_retention&findings=history_of_cancer"
                           "&contraindications=pregnancy&intervention_candidate=true&egfr=25"
                           "&findings=no_such_code")
    assert response.status_code == 200
    page = parse(response.get_data(as_text=True))
    assert value_of(page, "age") == "70"
    assert value_of(page, "symptom_duration_weeks") == "3"
    assert value_of(page, "egfr") == "25"
    assert page.selected["region"] == "thoracic"
    assert page.selected["sex"] == "male"
    assert checked(page, "findings") == {"urinary_retention", "history_of_cancer"}
    assert checked(page, "contraindications") == {"pregnancy"}
    assert checked(page, "intervention_candidate") == {"true"}
    assert "no_such_code" in response.get_data(as_text=True)  # named as ignored


def test_signed_out_prefill_link_survives_sign_in(browser, keys) -> None:
    link = "/?age=61&region=lumbar&findings=saddle_anesthesia"
    page = browser.get(link).get_data(as_text=True)
    assert 'name="next" value="/?age=61&amp;region=lumbar&amp;findings=saddle_anesthesia"' in page
    response = browser.post("/sign-in", data={"key": keys["clinician"], "next": link,
                                               "csrf_token": csrf_from(page)})
    assert response.status_code == 303 and response.headers["Location"] == link
    form = parse(browser.get(link).get_data(as_text=True))
    assert checked(form, "findings") == {"saddle_anesthesia"}


def test_sign_in_refuses_foreign_redirects(browser, keys) -> None:
    response = sign_in(browser, keys["clinician"], next_url="https://evil.example/")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    browser.post("/sign-out", data={"csrf_token": csrf_from(browser.get("/").get_data(
        as_text=True))})
    response = sign_in(browser, keys["clinician"], next_url="//evil.example/x")
    assert response.headers["Location"] == "/"


def test_cauda_equina_is_evaluated_and_logged_as_form(browser, keys, web_app) -> None:
    sign_in(browser, keys["clinician"])
    html = browser.get("/").get_data(as_text=True)
    response = browser.post("/", data={**cauda_equina_form(), "csrf_token": csrf_from(html),
                                       "submission_id": SUBMISSION_RE.search(html).group(1)})
    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert "Usually appropriate" in text and "Emergent" in text
    svc = web_app.extensions["referral_api"]
    assert decision_count(web_app) == 1
    records, _ = svc.log.query({}, limit=5, cursor=None)
    record = records[0]
    assert record["decision_id"] in text
    assert record["channel"] == "form" and record["client"] == "test-clinician"
    assert record["scenario"]["id"] == "lumbar.cauda_equina"
    assert record["ruleset"]["version"] in text
    assert "Rule set" in text and "Sources" in text and "What would change this" in text


def test_resubmitting_the_same_page_logs_one_decision(browser, keys, web_app) -> None:
    sign_in(browser, keys["clinician"])
    html = browser.get("/").get_data(as_text=True)
    data = {**cauda_equina_form(), "csrf_token": csrf_from(html),
            "submission_id": SUBMISSION_RE.search(html).group(1)}
    first = browser.post("/", data=data).get_data(as_text=True)
    second = browser.post("/", data=data).get_data(as_text=True)
    assert decision_count(web_app) == 1
    records, _ = web_app.extensions["referral_api"].log.query({}, limit=5, cursor=None)
    assert records[0]["decision_id"] in first and records[0]["decision_id"] in second


def test_validation_error_next_to_field_with_values_kept(browser, keys, web_app) -> None:
    sign_in(browser, keys["clinician"])
    token = csrf_from(browser.get("/").get_data(as_text=True))
    form = cauda_equina_form(age="130", findings=["urinary_retention", "fever"])
    response = browser.post("/", data={**form, "csrf_token": token})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    page = parse(html)
    age = next(c for c in page.controls if c.get("name") == "age")
    assert age["value"] == "130" and age.get("aria-invalid") == "true"
    assert "age-error" in (age.get("aria-describedby") or "")
    assert 'id="age-error"' in html
    assert page.selected["region"] == "lumbar"
    assert checked(page, "findings") == {"urinary_retention", "fever"}
    assert decision_count(web_app) == 0


def test_missing_region_and_bad_number_are_reported(browser, keys) -> None:
    sign_in(browser, keys["clinician"])
    token = csrf_from(browser.get("/").get_data(as_text=True))
    response = browser.post("/", data={**cauda_equina_form(region="", symptom_duration_weeks="x"),
                                       "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="region-error"' in html and 'id="symptom_duration_weeks-error"' in html
    assert 'value="x"' in html


def test_post_without_csrf_token_is_refused_and_not_logged(browser, keys, web_app) -> None:
    sign_in(browser, keys["clinician"])
    browser.get("/")
    assert browser.post("/", data=cauda_equina_form()).status_code == 400
    bad = browser.post("/", data={**cauda_equina_form(), "csrf_token": "forged"})
    assert bad.status_code == 400
    assert decision_count(web_app) == 0


def test_post_without_session_is_refused(web_app) -> None:
    client = web_app.test_client()
    assert client.post("/", data={**cauda_equina_form(), "csrf_token": "x"}).status_code == 400
    # a token from an anonymous (signed-out) session is valid CSRF but carries no role
    token = csrf_from(client.get("/").get_data(as_text=True))
    assert client.post("/", data={**cauda_equina_form(), "csrf_token": token}).status_code == 403
    assert decision_count(web_app) == 0


def test_token_from_before_sign_in_is_not_valid_after(browser, keys, web_app) -> None:
    old_token = csrf_from(browser.get("/sign-in").get_data(as_text=True))
    browser.post("/sign-in", data={"key": keys["clinician"], "csrf_token": old_token})
    response = browser.post("/", data={**cauda_equina_form(), "csrf_token": old_token})
    assert response.status_code == 400
    assert decision_count(web_app) == 0


def test_sign_out_ends_the_session(browser, keys) -> None:
    sign_in(browser, keys["clinician"])
    token = csrf_from(browser.get("/").get_data(as_text=True))
    assert browser.post("/sign-out", data={"csrf_token": token}).status_code == 303
    assert 'name="key"' in browser.get("/").get_data(as_text=True)


def test_clinician_cannot_open_audit(browser, keys) -> None:
    sign_in(browser, keys["clinician"])
    response = browser.get("/audit")
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "auditor role" in html and "<html lang=\"en\">" in html


def test_auditor_cannot_use_the_form(browser, keys) -> None:
    response = sign_in(browser, keys["auditor"])
    assert response.headers["Location"] == "/audit"
    assert browser.get("/").status_code == 403
    token = csrf_from(browser.get("/audit").get_data(as_text=True))
    assert browser.post("/", data={**cauda_equina_form(), "csrf_token": token}).status_code == 403


def test_admin_may_use_both(browser, keys) -> None:
    sign_in(browser, keys["admin"])
    assert browser.get("/").status_code == 200
    assert browser.get("/audit").status_code == 200


def test_pages_run_no_script_and_are_not_cached(browser) -> None:
    response = browser.get("/")
    assert "<script" not in response.get_data(as_text=True)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    css = browser.get("/assets/web.css")
    assert css.status_code == 200 and "@media print" in css.get_data(as_text=True)


def test_revoking_the_key_ends_the_session(browser, keys, web_app) -> None:
    assert sign_in(browser, keys["clinician"]).status_code == 303
    assert 'name="findings"' in browser.get("/").get_data(as_text=True)
    store = web_app.extensions["referral_api"].keys
    key_id = next(k.key_id for k in store.list_keys() if k.label == "test-clinician")
    assert store.revoke(key_id)
    html = browser.get("/").get_data(as_text=True)
    assert 'name="key"' in html
    assert 'name="findings"' not in html
