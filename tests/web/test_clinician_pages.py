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
    # Every finding of the vocabulary in force is an explicit checkbox (delta §8.7); retired
    # codes (deprecated, replaced) are not offered to a new request.
    vocabulary = web_app.extensions["referral_api"].request_schema.vocabulary()
    current = {c for c, f in vocabulary.findings.items() if not f.deprecated}
    finding_values = {c["value"] for c in page.controls if c.get("name") == "findings"}
    assert finding_values == current
    contra_values = {c["value"] for c in page.controls if c.get("name") == "contraindications"}
    assert contra_values == {c for c, item in vocabulary.contraindications.items()
                             if not item.deprecated}
    for finding in vocabulary.findings.values():  # definitions come from the data file
        if not finding.deprecated:
            assert finding.definition.replace("'", "&#39;").replace('"', "&#34;") in html
    legends = (("Cauda equina", "Neurology", "Injury", "Infection", "Cancer", "History",
                "Imaging already done") if vocabulary.format >= 2
               else ("Red flags", "Neurological", "Trauma", "History"))
    for legend in legends:
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
    # Refused, but not lost: the form comes back filled with a fresh token and says why.
    page = parse(bad.get_data(as_text=True))
    assert value_of(page, "age") == "52"
    assert checked(page, "findings") == {"urinary_retention"}
    assert "security token had expired" in bad.get_data(as_text=True)
    assert csrf_from(bad.get_data(as_text=True)) != "forged"


def test_post_without_session_keeps_what_was_entered(web_app, keys) -> None:
    """A lost session (expired, cookie gone) leads to sign-in and back to the filled form."""
    client = web_app.test_client()
    form = cauda_equina_form(findings=["urinary_retention", "fever"], egfr="25",
                             patient_reference="MRN-0042", submission_id="s" * 32)
    refused = client.post("/", data={**form, "csrf_token": "x"})
    assert refused.status_code == 401
    html = refused.get_data(as_text=True)
    assert 'name="key"' in html and "what you" in html and "entered is kept" in html
    assert decision_count(web_app) == 0
    # the values ride along as hidden fields of the sign-in form, never in the URL
    assert '<input type="hidden" name="egfr" value="25">' in html
    assert '<input type="hidden" name="findings" value="fever">' in html
    resumed = client.post("/sign-in", data={
        **form, "resume": "1", "key": keys["clinician"], "csrf_token": csrf_from(html)})
    assert resumed.status_code == 200
    page = parse(resumed.get_data(as_text=True))
    assert value_of(page, "age") == "52" and value_of(page, "egfr") == "25"
    assert value_of(page, "patient_reference") == "MRN-0042"
    assert checked(page, "findings") == {"urinary_retention", "fever"}
    assert page.selected["region"] == "lumbar"
    assert "signed in again" in resumed.get_data(as_text=True)
    # and submitting it now evaluates once
    done = client.post("/", data={**form, "csrf_token": csrf_from(resumed.get_data(
        as_text=True))})
    assert done.status_code == 200 and decision_count(web_app) == 1


def test_wrong_key_on_resume_keeps_the_values(web_app, keys) -> None:
    client = web_app.test_client()
    html = client.post("/", data={**cauda_equina_form(), "csrf_token": "x"}).get_data(
        as_text=True)
    again = client.post("/sign-in", data={**cauda_equina_form(), "resume": "1",
                                          "key": "wrong", "csrf_token": csrf_from(html)})
    assert again.status_code == 401
    text = again.get_data(as_text=True)
    assert "not valid" in text and '<input type="hidden" name="age" value="52">' in text


def test_expired_sign_in_page_keeps_the_values(web_app, keys) -> None:
    client = web_app.test_client()
    stale = client.post("/sign-in", data={**cauda_equina_form(), "resume": "1",
                                          "key": keys["clinician"], "csrf_token": "old"})
    assert stale.status_code == 400
    text = stale.get_data(as_text=True)
    assert "sign-in page had expired" in text
    assert '<input type="hidden" name="age" value="52">' in text


def test_anonymous_token_carries_no_role(web_app) -> None:
    client = web_app.test_client()
    # a token from an anonymous (signed-out) session is valid CSRF but carries no role
    token = csrf_from(client.get("/").get_data(as_text=True))
    response = client.post("/", data={**cauda_equina_form(), "csrf_token": token})
    assert response.status_code == 401 and 'name="key"' in response.get_data(as_text=True)
    assert decision_count(web_app) == 0


def test_token_from_before_sign_in_is_not_valid_after(browser, keys, web_app) -> None:
    old_token = csrf_from(browser.get("/sign-in").get_data(as_text=True))
    browser.post("/sign-in", data={"key": keys["clinician"], "csrf_token": old_token})
    response = browser.post("/", data={**cauda_equina_form(), "csrf_token": old_token})
    assert response.status_code == 400
    assert csrf_from(response.get_data(as_text=True)) != old_token
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


def test_pages_run_only_their_own_script_and_are_not_cached(browser) -> None:
    response = browser.get("/")
    html = response.get_data(as_text=True)
    assert html.count("<script") == 1 and '<script src="/assets/web.js" defer>' in html
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
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


def test_timed_out_session_mid_form_comes_back_filled(browser, keys, web_app,
                                                      monkeypatch) -> None:
    """The shift-long session ends while the form is open: same cookie, same CSRF token."""
    import time as real_time

    from referral_api.web import session_auth

    sign_in(browser, keys["clinician"])
    html = browser.get("/").get_data(as_text=True)
    later = real_time.time() + session_auth.MAX_AGE_S + 60
    monkeypatch.setattr(session_auth.time, "time", lambda: later)
    form = cauda_equina_form(egfr="41")
    refused = browser.post("/", data={**form, "csrf_token": csrf_from(html),
                                      "submission_id": SUBMISSION_RE.search(html).group(1)})
    assert refused.status_code == 401 and decision_count(web_app) == 0
    page = refused.get_data(as_text=True)
    resumed = browser.post("/sign-in", data={**form, "resume": "1", "key": keys["clinician"],
                                             "csrf_token": csrf_from(page),
                                             "submission_id": SUBMISSION_RE.search(html).group(1)})
    filled = parse(resumed.get_data(as_text=True))
    assert value_of(filled, "egfr") == "41" and checked(filled, "findings") == {
        "urinary_retention"}
    # the submission id survives too, so a double submit still logs one decision
    assert SUBMISSION_RE.search(resumed.get_data(as_text=True)).group(1) == \
        SUBMISSION_RE.search(html).group(1)
