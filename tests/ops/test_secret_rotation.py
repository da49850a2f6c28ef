"""Secret rotation (issue 14 item 5): old records stay findable, retired sessions end."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from referral_api import create_app
from referral_api.config import PROJECT_ROOT
from referral_api.secret_key import load_keyring
from referral_api.store.sqlite.keys import SQLiteKeyStore as KeyStore
from tests.factories import lumbar_request

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PATIENT = "MRN-ROTATE-77"
OTHER_ENV_SECRET = "another-secret-that-is-long-enough-0123456789"


def serve(database: Path):
    """The app as a restarted server would build it (keyring read from the files)."""
    return create_app({"TESTING": True, "DATABASE": str(database),
                       "RULES_DIR": str(PROJECT_ROOT / "rules")})


def decide(app, key: str) -> dict:
    body = lumbar_request(patient={"age": 50, "sex": "male", "reference": PATIENT})
    response = app.test_client().post("/v1/decisions", json=body,
                                      headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def stored_hashes(database: Path) -> list[str]:
    with sqlite3.connect(database) as conn:
        return [row[0] for row in conn.execute("SELECT patient_hash FROM decisions ORDER BY seq")]


def test_patient_search_finds_records_made_under_every_key(env: Path, run) -> None:
    assert run("init-db", "--no-admin-key")[0] == 0
    keys = KeyStore(env)
    evaluator = keys.create(["evaluator"], "ehr")[1]
    auditor = keys.create(["auditor"], "audit")[1]
    before = decide(serve(env), evaluator)

    code, out = run("secret", "rotate")
    assert code == 0 and "k2 is now current" in out, out
    after_app = serve(env)  # the restart after a rotation
    after = decide(after_app, evaluator)
    code, out = run("secret", "rotate")
    assert code == 0 and "k3 is now current" in out
    latest_app = serve(env)
    latest = decide(latest_app, evaluator)

    first, second, third = stored_hashes(env)
    assert re.fullmatch(r"hmac-sha256:[0-9a-f]{64}", first)  # k1: the form from before
    assert re.fullmatch(r"hmac-sha256:k2:[0-9a-f]{64}", second)
    assert re.fullmatch(r"hmac-sha256:k3:[0-9a-f]{64}", third)
    assert len({h.rsplit(":", 1)[1] for h in (first, second, third)}) == 3

    client = latest_app.test_client()
    headers = {"Authorization": f"Bearer {auditor}"}
    found = client.get("/v1/decisions", query_string={"patient": PATIENT}, headers=headers)
    assert found.status_code == 200
    ids = [r["decision_id"] for r in found.get_json()["items"]]
    assert ids == [latest["decision_id"], after["decision_id"], before["decision_id"]]
    stats = client.get("/v1/decisions/stats", query_string={"patient": PATIENT},
                       headers=headers).get_json()
    assert stats["total"] == 3
    nobody = client.get("/v1/decisions", query_string={"patient": "MRN-NOBODY"},
                        headers=headers)
    assert nobody.get_json()["items"] == []
    # Paging through the three records under several keys works like any other filter.
    page = client.get("/v1/decisions", query_string={"patient": PATIENT, "limit": 2},
                      headers=headers).get_json()
    rest = client.get("/v1/decisions", query_string={"patient": PATIENT, "limit": 2,
                                                     "cursor": page["next_cursor"]},
                      headers=headers).get_json()
    assert [r["decision_id"] for r in page["items"] + rest["items"]] == ids
    export = client.get("/v1/decisions/export", query_string={"patient": PATIENT,
                                                              "format": "ndjson"},
                        headers=headers)
    assert export.status_code == 200
    exported = [json.loads(line) for line in export.get_data(as_text=True).splitlines()]
    assert sorted(r["decision_id"] for r in exported) == sorted(ids)

    code, listing = run("secret", "list")
    assert code == 0
    assert re.search(r"k1 .*retired", listing) and re.search(r"k3 .*current", listing)
    secret_text = (env.parent / "secret.key").read_text()
    for key in load_keyring(env.parent, None).keys:
        assert key.secret not in listing and key.secret in secret_text
    assert (env.parent / "secret.key").stat().st_mode & 0o777 == 0o600


def _sign_in(client, key: str):
    page = client.get("/sign-in").get_data(as_text=True)
    return client.post("/sign-in", data={"key": key, "csrf_token": CSRF_RE.search(page)[1]})


def test_sessions_signed_with_a_retired_key_end(env: Path, run) -> None:
    run("init-db", "--no-admin-key")
    clinician = KeyStore(env).create(["clinician"], "dr-a")[1]
    old_app = serve(env)
    browser = old_app.test_client()
    assert _sign_in(browser, clinician).status_code == 303
    assert 'name="findings"' in browser.get("/").get_data(as_text=True)  # the form
    cookie = browser.get_cookie("referral_session")
    assert cookie is not None

    assert run("secret", "rotate")[0] == 0
    new_app = serve(env)
    same_browser = new_app.test_client()
    same_browser.set_cookie("referral_session", cookie.value)
    page = same_browser.get("/").get_data(as_text=True)
    assert 'name="findings"' not in page and 'name="key"' in page  # signed out: sign-in page
    # Signing in again under the new key works.
    assert _sign_in(same_browser, clinician).status_code == 303
    assert 'name="findings"' in same_browser.get("/").get_data(as_text=True)


def test_rotation_with_the_secret_in_the_environment(env: Path, run, monkeypatch) -> None:
    monkeypatch.setenv("REFERRAL_API_SECRET_KEY", OTHER_ENV_SECRET)
    run("init-db", "--no-admin-key")
    assert not (env.parent / "secret.key").exists()
    assert run("secret", "rotate")[0] == 0
    ring = load_keyring(env.parent, OTHER_ENV_SECRET)
    assert [k.key_id for k in ring.keys] == ["k1", "k2"]
    assert ring.keys[0].secret == OTHER_ENV_SECRET
    assert OTHER_ENV_SECRET not in (env.parent / "secret.key").read_text()


@pytest.mark.parametrize("change", ["other secret", "key removed"])
def test_init_db_refuses_a_keyring_that_no_longer_matches(env: Path, run, monkeypatch,
                                                          change: str) -> None:
    run("init-db", "--no-admin-key")
    assert run("secret", "rotate")[0] == 0
    secret_file = env.parent / "secret.key"
    first, second = secret_file.read_text().splitlines()
    if change == "other secret":
        secret_file.write_text(OTHER_ENV_SECRET + "\n" + second + "\n")
        expected = "the secret of key k1 is not the one"
    else:
        secret_file.write_text(first + "\n")
        expected = "secret key k2 is missing from the keyring"
    code, out = run("init-db", "--no-admin-key")
    assert code == 1 and expected in out
    assert "Traceback" not in out and OTHER_ENV_SECRET not in out
    code, out = run("secret", "rotate")
    assert code == 1 and expected in out
