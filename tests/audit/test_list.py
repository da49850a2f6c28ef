"""GET /v1/decisions: filters, validation, newest first, keyset pagination, time limit, roles."""

from __future__ import annotations

import threading

import pytest

from referral_api.store.interface import NewFeedback
from tests.factories import auth, lumbar_request

PROBLEM = "application/problem+json"
#: How long the concurrent writer may take to record its first decision.
WRITER_START_TIMEOUT_S = 30
#: Decisions in the log whose unfiltered scans must exceed a zero time limit.
SLOW_LOG_SIZE = 3000


def page(http, headers, **params):
    response = http.get("/v1/decisions", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(body) -> list[str]:
    return [item["decision_id"] for item in body["items"]]


def test_newest_first_with_full_records(client, auditor_headers, varied) -> None:
    body = page(client, auditor_headers)
    assert ids(body) == [r["decision_id"] for r in reversed(varied)]
    assert body["next_cursor"] is None
    first = body["items"][0]
    for name in ("input", "client", "engine_version", "feedback", "chain", "ruleset",
                 "appropriateness", "urgency", "scenario", "reasons"):
        assert name in first
    seqs = [item["chain"]["seq"] for item in body["items"]]
    assert seqs == sorted(seqs, reverse=True)


@pytest.mark.parametrize(("param", "value", "expected"), [
    ("region", "cervical", lambda r: r["region"] == "cervical"),
    ("appropriateness", "usually_appropriate",
     lambda r: r["appropriateness"] == "usually_appropriate"),
    ("urgency", "emergent", lambda r: r["urgency"] == "emergent"),
    ("scenario", "lumbar.cauda_equina", lambda r: r["scenario"]["id"] == "lumbar.cauda_equina"),
    ("ruleset_version", "2026.2.0", lambda r: True),
    ("ruleset_version", "1999.1.0", lambda r: False),
    ("channel", "cds-hooks", lambda r: r["channel"] == "cds-hooks"),
    ("channel", "form", lambda r: r["channel"] == "form"),
    ("client", "clinician-a", lambda r: r["client"] == "clinician-a"),
    ("ordering_clinician", "dr-house", lambda r: r["ordering_clinician"] == "dr-house"),
    ("feedback", "none", lambda r: True),
    ("feedback", "overridden", lambda r: False),
])
def test_each_filter(client, auditor_headers, varied, param, value, expected) -> None:
    body = page(client, auditor_headers, **{param: value})
    wanted = [r["decision_id"] for r in reversed(varied) if expected(r)]
    assert ids(body) == wanted
    if param not in ("ruleset_version", "feedback"):
        assert 0 < len(wanted) < len(varied)  # the filter really selects


def test_filters_combine(client, auditor_headers, varied) -> None:
    body = page(client, auditor_headers, channel="cds-hooks", urgency="emergent")
    assert ids(body) == [varied[4]["decision_id"]]


def test_patient_filter_takes_the_clear_id_and_never_logs_it(client, svc, auditor_headers,
                                                            varied) -> None:
    body = page(client, auditor_headers, patient="MRN-0002")
    assert ids(body) == [varied[6]["decision_id"], varied[2]["decision_id"]]
    assert all("MRN-0002" not in str(item) for item in body["items"])
    entry = svc.log.access_log(limit=1)[0]
    assert "MRN-0002" not in str(entry)
    assert entry["target"]["filters"]["patient_hash"] == svc.decisions.patient_hash("MRN-0002")
    assert page(client, auditor_headers, patient="MRN-9999")["items"] == []


def test_feedback_filter_uses_latest_outcome(client, svc, auditor_headers, varied) -> None:
    cds = varied[4]["decision_id"]
    svc.log.append_feedback(cds, NewFeedback("accepted"), "ehr")
    assert ids(page(client, auditor_headers, feedback="accepted")) == [cds]
    svc.log.append_feedback(cds, NewFeedback("overridden"), "ehr")
    assert ids(page(client, auditor_headers, feedback="accepted")) == []
    assert ids(page(client, auditor_headers, feedback="overridden")) == [cds]
    assert cds not in ids(page(client, auditor_headers, feedback="none"))


def test_since_until_inclusive_and_no_offset_means_utc(client, auditor_headers, decide,
                                                       clock) -> None:
    first = decide()
    clock.advance(milliseconds=10)
    second = decide()
    clock.advance(milliseconds=10)
    third = decide()
    since = second["created_at"]
    assert ids(page(client, auditor_headers, since=since, until=since)) == [second["decision_id"]]
    no_offset = since.removesuffix("Z")
    assert ids(page(client, auditor_headers, since=no_offset)) == [third["decision_id"],
                                                                   second["decision_id"]]
    # The same instant written with another offset.
    assert ids(page(client, auditor_headers, until=no_offset.replace("Z", "") + "+00:00")) == [
        second["decision_id"], first["decision_id"]]
    day = since[:10]
    assert len(page(client, auditor_headers, since=day, until=day)["items"]) == 3


@pytest.mark.parametrize(("query", "field"), [
    ("region=sacral", "region"),
    ("appropriateness=maybe", "appropriateness"),
    ("urgency=asap", "urgency"),
    ("channel=fax", "channel"),
    ("feedback=ignored", "feedback"),
    ("since=yesterday", "since"),
    ("until=2026-13-01", "until"),
    ("since=2026-11-24&until=2026-11-23", "until"),
    ("limit=0", "limit"),
    ("limit=501", "limit"),
    ("limit=ten", "limit"),
    ("cursor=not-a-cursor", "cursor"),
    ("regoin=lumbar", "regoin"),
    ("region=lumbar&region=cervical", "region"),
    ("client=" + "x" * 129, "client"),
])
def test_invalid_query_is_422_naming_the_parameter(client, auditor_headers, varied, query,
                                                   field) -> None:
    response = client.get(f"/v1/decisions?{query}", headers=auditor_headers)
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    problem = response.get_json()
    assert field in problem["errors"], problem
    assert problem["status"] == 422


def test_limit_caps_at_500(client, svc, auditor_headers, bulk_append) -> None:
    bulk_append(600)
    body = page(client, auditor_headers, limit=500)
    assert len(body["items"]) == 500 and body["next_cursor"]
    assert len(page(client, auditor_headers)["items"]) == 50  # the default


def test_pages_cover_everything_once(client, svc, auditor_headers, varied) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        body = page(client, auditor_headers, limit=3, **({"cursor": cursor} if cursor else {}))
        seen += ids(body)
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert cursor.replace("-", "").replace("_", "").isalnum()  # URL-safe, opaque
    assert pages == 3
    assert seen == [r["decision_id"] for r in reversed(varied)]


def test_cursor_is_bound_to_its_filters(client, auditor_headers, varied) -> None:
    cursor = page(client, auditor_headers, limit=2)["next_cursor"]
    response = client.get("/v1/decisions", query_string={"cursor": cursor, "region": "lumbar"},
                          headers=auditor_headers)
    assert response.status_code == 422
    assert "cursor" in response.get_json()["errors"]


@pytest.mark.slow
def test_pagination_under_concurrent_inserts(
    app, client, svc, auditor_headers, bulk_append,
) -> None:
    """A thread appends while we page: no duplicates and no gaps among the rows that existed
    when the first page was read; new rows never appear on later pages."""
    bulk_append(300)
    stop = threading.Event()
    started = threading.Event()
    appended = []

    def writer() -> None:
        # Its own service calls (own thread, own SQLite connection), as another worker would.
        with app.app_context():
            while not stop.is_set():
                request = svc.request_schema.load(lumbar_request())
                record, _ = svc.decisions.decide(request, channel="api", client="writer")
                appended.append(record["chain"]["seq"])
                started.set()
        svc.log.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert started.wait(timeout=WRITER_START_TIMEOUT_S)
        first = page(client, auditor_headers, limit=25)
        top = first["items"][0]["chain"]["seq"]
        seen = [item["chain"]["seq"] for item in first["items"]]
        cursor = first["next_cursor"]
        while cursor:
            body = page(client, auditor_headers, limit=25, cursor=cursor)
            seen += [item["chain"]["seq"] for item in body["items"]]
            cursor = body["next_cursor"]
    finally:
        stop.set()
        thread.join()
    assert len(appended) > 1  # inserts really ran while we paged
    assert len(seen) == len(set(seen))
    assert seen == list(range(top, 0, -1))  # every row that existed, in order, no gap


def test_slow_query_is_stopped_with_503(make_app, bulk_append) -> None:
    application = make_app(AUDIT_QUERY_TIMEOUT_MS=0)
    svc = application.extensions["referral_api"]
    client = application.test_client()
    key = svc.keys.create(["auditor"], "slow-auditor")[1]
    evaluator = svc.keys.create(["evaluator"], "writer")[1]
    bulk_append(SLOW_LOG_SIZE, into=svc)
    for path in ("/v1/decisions?ruleset_version=none-such", "/v1/decisions/stats?group_by=day"):
        response = client.get(path, headers=auth(key))
        assert response.status_code == 503, path
        assert response.mimetype == PROBLEM
        assert "Narrow it" in response.get_json()["detail"]
    # The writer is unaffected and the connection is usable again.
    created = client.post("/v1/decisions", json=lumbar_request(), headers=auth(evaluator))
    assert created.status_code == 201
    assert svc.log.head()["count"] == SLOW_LOG_SIZE + 1


AUDITOR_GETS = ["/v1/decisions", "/v1/decisions/export?format=csv", "/v1/decisions/stats",
                "/v1/decisions/verify"]


@pytest.mark.parametrize("path", [*AUDITOR_GETS, "/v1/access-log"])
def test_missing_credential_is_401(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 401 and response.mimetype == PROBLEM


@pytest.mark.parametrize("role", ["evaluator", "clinician"])
@pytest.mark.parametrize("path", AUDITOR_GETS)
def test_other_roles_are_403(client, keys, role, path) -> None:
    response = client.get(path, headers=auth(keys[role]))
    assert response.status_code == 403 and response.mimetype == PROBLEM


@pytest.mark.parametrize("path", AUDITOR_GETS)
def test_admin_may_read(client, admin_headers, path) -> None:
    assert client.get(path, headers=admin_headers).status_code == 200


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_decisions_are_append_only_405(client, admin_headers, decide, method) -> None:
    record = decide()
    call = getattr(client, method)
    for path in ("/v1/decisions", f"/v1/decisions/{record['decision_id']}"):
        response = call(path, json={}, headers=admin_headers)
        assert response.status_code == 405, path
        assert response.mimetype == PROBLEM
        assert response.get_json()["status"] == 405
