"""The service secret, derived keys and keyed patient hashes."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from referral_api.secret_key import (
    SecretKeyError,
    derive_key,
    ensure_secret,
    load_secret,
    patient_hash,
)

ENV_SECRET = "x" * 32


def test_environment_secret_wins_and_is_validated(tmp_path: Path) -> None:
    assert ensure_secret(tmp_path, ENV_SECRET) == ENV_SECRET
    assert load_secret(tmp_path, ENV_SECRET) == ENV_SECRET
    assert not (tmp_path / "secret.key").exists()
    short = "too-short-secret-value"
    for fn in (ensure_secret, load_secret):
        with pytest.raises(SecretKeyError) as info:
            fn(tmp_path, short)
        assert short not in str(info.value)
        assert "32" in str(info.value)


def test_secret_file_created_once_with_mode_0600(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    with pytest.raises(SecretKeyError, match="init-db"):
        load_secret(db_dir, None)
    assert not db_dir.exists()  # load never creates
    secret = ensure_secret(db_dir, None)
    path = db_dir / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secret) >= 32
    assert ensure_secret(db_dir, None) == secret
    assert ensure_secret(db_dir, "") == secret  # empty variable = unset
    assert load_secret(db_dir, None) == secret
    assert [p.name for p in db_dir.iterdir()] == ["secret.key"]


def test_short_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("q7-tiny-value\n")
    with pytest.raises(SecretKeyError) as info:
        load_secret(tmp_path, None)
    assert "q7-tiny-value" not in str(info.value)


def _ensure(db_dir: Path, queue) -> None:  # runs in a child process
    queue.put(ensure_secret(db_dir, None))


def test_concurrent_creation_is_not_raced(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ensure, args=(db_dir, queue)) for _ in range(8)]
    for p in procs:
        p.start()
    secrets_seen = {queue.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(timeout=60)
    assert len(secrets_seen) == 1
    assert (db_dir / "secret.key").read_text().strip() in secrets_seen
    assert [p.name for p in db_dir.iterdir()] == ["secret.key"]  # no temporary files left


def test_derived_keys_are_separate() -> None:
    purposes = ["patient-reference", "session", "cursor"]
    keys = {derive_key(ENV_SECRET, p) for p in purposes}
    assert len(keys) == 3 and all(len(k) == 32 for k in keys)
    assert derive_key(ENV_SECRET, "session") == derive_key(ENV_SECRET, "session")
    assert derive_key("y" * 32, "session") != derive_key(ENV_SECRET, "session")
    with pytest.raises(ValueError):
        derive_key(ENV_SECRET, "")


def test_patient_hash_is_keyed_and_never_clear() -> None:
    key_a = derive_key("a" * 40, "patient-reference")
    key_b = derive_key("b" * 40, "patient-reference")
    value = patient_hash(key_a, "MRN-0042")
    assert value.startswith("hmac-sha256:") and len(value) == len("hmac-sha256:") + 64
    assert "MRN-0042" not in value
    assert patient_hash(key_a, "MRN-0042") == value
    assert patient_hash(key_b, "MRN-0042") != value
    assert patient_hash(key_a, "MRN-0043") != value
    import hashlib

    assert value != "hmac-sha256:" + hashlib.sha256(b"MRN-0042").hexdigest()
