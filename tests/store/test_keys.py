"""API keys: creation, hash-only storage, verification, revocation."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from referral_api.enums import ROLES
from referral_api.store.interface import LogUnavailable
from referral_api.store.sqlite import keys as keys_module
from referral_api.store.sqlite.keys import SQLiteKeyStore as KeyStore
from referral_api.store.sqlite.log import SQLiteDecisionLog


@pytest.fixture
def store(log: SQLiteDecisionLog) -> KeyStore:
    return KeyStore(log)


def test_create_returns_token_once_and_stores_only_a_hash(
    store: KeyStore, db_path: Path, raw,
) -> None:
    key, token = store.create(["auditor", "admin"], "Audit team")
    match = re.fullmatch(r"rk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})", token)
    assert match and match.group(1) == key.key_id
    assert key.roles == ("auditor", "admin")
    assert key.label == "Audit team" and key.revoked_at is None
    secret = match.group(2)
    conn = raw(db_path)
    dump = "\n".join(conn.iterdump())
    assert secret not in dump and token not in dump
    stored = conn.execute("SELECT secret_sha256 FROM api_keys").fetchone()[0]
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    conn.close()


def test_verify(store: KeyStore) -> None:
    key, token = store.create(["evaluator"], "EHR")
    assert store.verify(token) == key
    other_key, other_token = store.create(["clinician"], "Ward 3")
    assert store.verify(other_token) == other_key
    wrong_secret = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in [
        wrong_secret,
        token[:16] + other_token[16:],  # another key's secret
        "rk_000000000000_" + token[16:],  # unknown id
        token + "x",
        token.replace("rk_", "xk_"),
        "",
        "Bearer " + token,
    ]:
        assert store.verify(bad) is None, bad
    assert store.verify(None) is None  # type: ignore[arg-type]


def test_roles_validated(store: KeyStore) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        store.create(["root"], "x")
    with pytest.raises(ValueError):
        store.create([], "x")
    with pytest.raises(ValueError):
        store.create(["admin"], "  ")
    assert ROLES == ("evaluator", "clinician", "auditor", "admin")


def test_revoke_list_count(store: KeyStore) -> None:
    a, token_a = store.create(["evaluator"], "A")
    b, _ = store.create(["auditor", "evaluator"], "B")
    assert store.verify(token_a) == a  # now cached
    assert store.revoke(a.key_id) is True
    assert store.revoke(a.key_id) is False
    assert store.revoke("ffffffffffff") is False
    assert store.verify(token_a) is None
    listed = {k.key_id: k for k in store.list_keys()}
    assert set(listed) == {a.key_id, b.key_id}
    assert listed[a.key_id].revoked_at is not None
    assert store.count() == 1
    assert store.count(include_revoked=True) == 2
    assert store.count("evaluator") == 1
    assert store.count("evaluator", include_revoked=True) == 2
    assert store.count("admin") == 0


def test_revocation_reaches_other_processes_within_the_ttl(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli, worker = KeyStore(db_path), KeyStore(SQLiteDecisionLog(db_path))
    key, token = cli.create(["evaluator"], "EHR")
    clock = [1000.0]
    monkeypatch.setattr(keys_module.time, "monotonic", lambda: clock[0])
    assert worker.verify(token) == key
    cli.revoke(key.key_id)
    clock[0] += 1.0
    assert worker.verify(token) == key  # still cached in that process
    clock[0] += keys_module.CACHE_TTL_SECONDS
    assert worker.verify(token) is None


def test_unreadable_store_is_unavailable_not_unauthorized(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "missing-dir" / "d.sqlite")
    with pytest.raises(LogUnavailable):
        store.verify("rk_0123456789ab_" + "A" * 43)
    assert store.verify("malformed") is None  # no database access needed
