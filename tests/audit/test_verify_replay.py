"""GET /v1/decisions/verify (tamper detection on copies), replay, the access log, the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from referral_api import create_app
from referral_api.audit.export import CSV_COLUMNS
from referral_api.cli.audit import export_command, replay_command
from referral_api.store.interface import NewFeedback
from tests.audit.fixtures.draft_ruleset import DRAFT_VERSION
from tests.factories import TEST_SECRET, auth, lumbar_request

# -- verify --------------------------------------------------------------------------------


def verify(client, headers, **params) -> dict:
    response = client.get("/v1/decisions/verify", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_verify_intact_chains(client, svc, auditor_headers, varied, access_actions) -> None:
    svc.log.append_feedback(varied[4]["decision_id"], NewFeedback("accepted"), "ehr")
    body = verify(client, auditor_headers)
    assert body["ok"] is True
    assert body["checked"] == len(varied)
    assert body["head"] == varied[-1]["chain"]["hash"]
    assert body["feedback"]["ok"] is True and body["feedback"]["checked"] == 1
    assert body["access_log"]["ok"] is True
    anchored = verify(client, auditor_headers, expect_head=body["head"],
                      expect_count=body["checked"])
    assert anchored["ok"] is True
    assert access_actions()[-2:] == ["verify", "verify"]


def _tampered_client(app, tmp_path: Path, sql: list[str]):
    """An app on a copy of ``app``'s database, altered with ``sql`` (triggers dropped)."""
    source = sqlite3.connect(app.extensions["referral_api"].settings.database)
    copy_path = tmp_path / "copy" / "decisions.sqlite"
    copy_path.parent.mkdir()
    target = sqlite3.connect(copy_path, isolation_level=None)
    source.backup(target)
    source.close()
    for table in ("decisions", "feedback", "access_log"):
        target.execute(f"DROP TRIGGER {table}_no_update")
        target.execute(f"DROP TRIGGER {table}_no_delete")
    for statement in sql:
        target.execute(statement)
    target.close()
    copy = create_app({"TESTING": True, "DATABASE": str(copy_path), "SECRET_KEY": TEST_SECRET,
                       "RULES_DIR": str(app.extensions["referral_api"].settings.rules_dir)})
    return copy


@pytest.mark.parametrize(("sql", "bad_index", "checked", "reason"), [
    (["UPDATE decisions SET urgency = 'emergent' WHERE seq = 3"], 2, 2, "altered"),
    (["UPDATE decisions SET output_json = replace(output_json, 'lumbar', 'cervical') "
      "WHERE seq = 5"], 4, 4, "altered"),
    # A record deleted in the middle: the one after the gap is the first bad record.
    (["DELETE FROM decisions WHERE seq = 4"], 4, 3, "removed"),
])
def test_verify_detects_edits_and_deletions(app, client, auditor_headers, varied, tmp_path, sql,
                                            bad_index, checked, reason) -> None:
    copy = _tampered_client(app, tmp_path, sql)
    body = verify(copy.test_client(), auditor_headers)
    assert body["ok"] is False
    assert body["first_bad"] == varied[bad_index]["decision_id"]
    assert reason in body["reason"]
    assert body["checked"] == checked
    # The original database is untouched.
    assert verify(client, auditor_headers)["ok"] is True
    copy.extensions["referral_api"].log.close()


def test_verify_detects_a_cut_tail_only_with_an_anchor(app, client, auditor_headers, varied,
                                                      tmp_path) -> None:
    anchor = verify(client, auditor_headers)
    copy = _tampered_client(app, tmp_path, ["DELETE FROM decisions WHERE seq >= 7"])
    copy_client = copy.test_client()
    assert verify(copy_client, auditor_headers)["ok"] is True  # a clean prefix, by itself
    body = verify(copy_client, auditor_headers, expect_head=anchor["head"],
                  expect_count=anchor["checked"])
    assert body["ok"] is False
    assert "removed" in body["reason"]
    assert body["checked"] == 6
    copy.extensions["referral_api"].log.close()


def test_verify_reports_feedback_and_access_log_chains(app, svc, auditor_headers, varied,
                                                       tmp_path) -> None:
    svc.log.append_feedback(varied[4]["decision_id"], NewFeedback("accepted"), "ehr")
    svc.log.record_access("someone", "get_decision", {"decision_id": "x"})
    copy = _tampered_client(app, tmp_path, [
        "UPDATE feedback SET outcome = 'overridden' WHERE seq = 1",
        "UPDATE access_log SET actor = 'nobody' WHERE seq = 1",
    ])
    body = verify(copy.test_client(), auditor_headers)
    assert body["ok"] is True  # the decisions themselves are intact
    assert body["feedback"]["ok"] is False and body["feedback"]["first_bad"] == 1
    assert body["access_log"]["ok"] is False and body["access_log"]["first_bad"] == 1
    copy.extensions["referral_api"].log.close()


@pytest.mark.parametrize("query", ["expect_head=abc", "expect_count=-1", "expect_count=x",
                                   "anchor=1"])
def test_verify_bad_anchor_is_422(client, auditor_headers, query) -> None:
    assert client.get(f"/v1/decisions/verify?{query}", headers=auditor_headers).status_code == 422


# -- replay --------------------------------------------------------------------------------


@pytest.fixture
def draft(draft_app):
    """(client, services, auditor headers) of the app with the draft version."""
    svc = draft_app.extensions["referral_api"]
    return draft_app.test_client(), svc, auth(svc.keys.create(["auditor"], "draft-auditor")[1])


def _decide(svc, **changes) -> dict:
    request = svc.request_schema.load(lumbar_request(**changes))
    return svc.decisions.decide(request, channel="api", client="t")[0]


def test_replay_under_the_draft_shows_the_changed_rating(draft, access_actions) -> None:
    client, svc, headers = draft
    record = _decide(svc)
    assert (record["appropriateness"], record["urgency"]) == ("usually_not_appropriate", "none")
    before = svc.log.head()
    response = client.post(f"/v1/decisions/{record['decision_id']}/replay",
                           json={"ruleset_version": DRAFT_VERSION}, headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["original"]["decision_id"] == record["decision_id"]
    assert body["replayed"]["appropriateness"] == "may_be_appropriate"
    assert body["replayed"]["urgency"] == "routine"
    assert body["replayed"]["ruleset"]["version"] == DRAFT_VERSION
    changed = {d["field"]: (d["original"], d["replayed"]) for d in body["differences"]}
    assert changed["appropriateness"] == ("usually_not_appropriate", "may_be_appropriate")
    assert changed["urgency"] == ("none", "routine")
    assert body["engine_version"]["recorded"] == record["engine_version"]
    assert body["engine_version"]["current"]
    assert body["ruleset_version"] == {"recorded": "2026.1.0", "replayed": DRAFT_VERSION}
    assert svc.log.head() == before  # no decision written
    assert access_actions(svc)[-1] == "replay"


def test_replay_of_an_unchanged_scenario_has_no_differences(draft) -> None:
    client, svc, headers = draft
    record = _decide(svc, findings=["urinary_retention"])
    for version in ("2026.1.0", DRAFT_VERSION):
        body = client.post(f"/v1/decisions/{record['decision_id']}/replay",
                           json={"ruleset_version": version}, headers=headers).get_json()
        assert body["differences"] == [], version


def test_replay_errors(draft) -> None:
    client, svc, headers = draft
    record = _decide(svc)
    url = f"/v1/decisions/{record['decision_id']}/replay"
    assert client.post(url, json={"ruleset_version": "9.9.9"}, headers=headers).status_code == 404
    missing = "/v1/decisions/00000000-0000-4000-8000-000000000000/replay"
    assert client.post(missing, json={"ruleset_version": DRAFT_VERSION},
                       headers=headers).status_code == 404
    assert client.post(url, json={}, headers=headers).status_code == 422
    assert client.post(url, json={"ruleset_version": DRAFT_VERSION, "x": 1},
                       headers=headers).status_code == 422
    assert client.post(url, data="v", headers=headers).status_code == 415
    evaluator = auth(svc.keys.create(["evaluator"], "ev")[1])
    assert client.post(url, json={"ruleset_version": DRAFT_VERSION},
                       headers=evaluator).status_code == 403
    assert client.get(url, headers=headers).status_code == 405


# -- access log ------------------------------------------------------------------------------


def test_every_auditor_read_is_recorded(
    client, svc, auditor_headers, varied, access_actions,
) -> None:
    one = varied[0]["decision_id"]
    client.get("/v1/decisions?region=lumbar&limit=2", headers=auditor_headers)
    client.get(f"/v1/decisions/{one}", headers=auditor_headers)
    client.get("/v1/decisions/export?format=ndjson", headers=auditor_headers).get_data()
    client.get("/v1/decisions/stats?group_by=region", headers=auditor_headers)
    client.get("/v1/decisions/verify", headers=auditor_headers)
    client.post(f"/v1/decisions/{one}/replay", json={"ruleset_version": "2026.1.0"},
                headers=auditor_headers)
    assert access_actions() == ["list_decisions", "get_decision", "export_decisions",
                            "decision_stats", "verify", "replay"]
    entries = svc.log.access_log(limit=10)
    assert {e["actor"] for e in entries} == {"test-auditor"}
    listed = entries[-1]["target"]
    assert listed["filters"] == {"region": "lumbar"} and listed["returned"] == 2
    assert listed["seq_range"] == [varied[-2]["chain"]["seq"], varied[-1]["chain"]["seq"]]


def test_refused_reads_are_not_answered_when_access_cannot_be_recorded(
        client, svc, auditor_headers, varied, monkeypatch) -> None:
    from referral_api.store.interface import LogUnavailable

    def fail(*_args, **_kwargs):
        raise LogUnavailable("disk full")

    monkeypatch.setattr(svc.log, "record_access", fail)
    for path in ("/v1/decisions", "/v1/decisions/export?format=csv", "/v1/decisions/stats"):
        response = client.get(path, headers=auditor_headers)
        assert response.status_code == 503, path
        assert varied[0]["decision_id"] not in response.get_data(as_text=True)


def test_admin_pages_the_access_log(
    client, svc, auditor_headers, admin_headers, access_actions,
) -> None:
    for i in range(7):
        svc.log.record_access("someone", "get_decision", {"decision_id": str(i)})
    seen = []
    cursor = None
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/access-log", query_string=query, headers=admin_headers)
        assert response.status_code == 200
        body = response.get_json()
        seen += [e["seq"] for e in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    # Reading the access log is recorded too, after the page is read (never on it).
    assert seen == list(range(7, 0, -1))
    assert access_actions()[-3:] == ["read_access_log"] * 3
    first = client.get("/v1/access-log?limit=1", headers=admin_headers).get_json()["items"][0]
    assert set(first) >= {"seq", "at", "actor", "action", "target", "chain"}
    assert client.get("/v1/access-log", headers=auditor_headers).status_code == 403
    assert client.get("/v1/access-log?cursor=zzz", headers=admin_headers).status_code == 422
    assert client.get("/v1/access-log?limit=501", headers=admin_headers).status_code == 422


# -- CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, app) -> dict:
    settings = app.extensions["referral_api"].settings
    monkeypatch.setenv("REFERRAL_API_DATABASE", str(settings.database))
    monkeypatch.setenv("REFERRAL_API_RULES_DIR", str(settings.rules_dir))
    monkeypatch.setenv("REFERRAL_API_SECRET_KEY", TEST_SECRET)
    return {}


def test_cli_export_csv_and_ndjson(cli_env, svc, varied, access_actions) -> None:
    runner = CliRunner()
    result = runner.invoke(export_command, ["--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS) and len(lines) == len(varied) + 1
    today = varied[0]["created_at"][:10]
    result = runner.invoke(export_command, ["--format", "ndjson", "--since", today,
                                            "--until", today])
    assert [json.loads(x)["decision_id"] for x in result.output.splitlines()] == [
        r["decision_id"] for r in varied]
    result = runner.invoke(export_command, ["--format", "ndjson", "--since", "2999-01-01"])
    assert result.exit_code == 0 and result.output == ""
    assert runner.invoke(export_command, ["--format", "ndjson", "--since", "soon"]).exit_code == 2
    assert runner.invoke(export_command, ["--format", "xml"]).exit_code == 2
    assert access_actions()[-3:] == ["export_decisions"] * 3
    assert svc.log.access_log(limit=1)[0]["actor"].startswith("cli")


def test_cli_replay_impact_report(monkeypatch, draft_app) -> None:
    svc = draft_app.extensions["referral_api"]
    for _ in range(3):
        _decide(svc)  # uncomplicated: changed by the draft
    _decide(svc, findings=["urinary_retention"])  # cauda equina: unchanged
    monkeypatch.setenv("REFERRAL_API_DATABASE", str(svc.settings.database))
    monkeypatch.setenv("REFERRAL_API_RULES_DIR", str(svc.settings.rules_dir))
    monkeypatch.setenv("REFERRAL_API_SECRET_KEY", TEST_SECRET)
    before = svc.log.head()
    runner = CliRunner()
    result = runner.invoke(replay_command, ["--ruleset-version", DRAFT_VERSION])
    assert result.exit_code == 0, result.output
    assert "4 logged decision(s)" in result.output
    assert "change appropriateness or urgency: 3 (75.0%)" in result.output
    assert "usually_not_appropriate -> may_be_appropriate" in result.output
    assert "none" in result.output and "routine" in result.output
    assert "lumbar.uncomplicated" in result.output
    as_json = json.loads(runner.invoke(replay_command, ["--ruleset-version", DRAFT_VERSION,
                                                        "--json"]).output)
    assert as_json["changed"] == 3 and as_json["changed_urgency"] == 3
    assert as_json["appropriateness_transitions"][0] == {
        "from": "usually_not_appropriate", "to": "may_be_appropriate", "count": 3}
    assert len(as_json["examples"]) == 3
    same = json.loads(runner.invoke(replay_command, ["--ruleset-version", "2026.1.0",
                                                     "--json"]).output)
    assert same["changed"] == 0 and same["total"] == 4
    none = json.loads(runner.invoke(replay_command, ["--ruleset-version", DRAFT_VERSION,
                                                     "--since", "2999-01-01", "--json"]).output)
    assert none["total"] == 0
    unknown = runner.invoke(replay_command, ["--ruleset-version", "9.9.9"])
    assert unknown.exit_code != 0 and "no rule set version 9.9.9" in unknown.output
    assert svc.log.head() == before  # replay writes no decision


def test_openapi_documents_the_audit_paths(client) -> None:
    doc = client.get("/openapi.json").get_json()
    for path in ("/v1/decisions/export", "/v1/decisions/stats", "/v1/decisions/verify",
                 "/v1/decisions/{decision_id}/replay", "/v1/access-log"):
        assert path in doc["paths"], path
    assert "post" in doc["paths"]["/v1/decisions"] and "get" in doc["paths"]["/v1/decisions"]
    names = {p["name"] for p in doc["paths"]["/v1/decisions"]["get"]["parameters"]}
    assert names >= {"since", "until", "region", "patient", "feedback", "limit", "cursor"}
    stats_params = {p["name"] for p in doc["paths"]["/v1/decisions/stats"]["get"]["parameters"]}
    assert "group_by" in stats_params
