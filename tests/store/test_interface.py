"""The storage interface is true: each backend has every method of the protocols it claims,
with the same parameters, and the type checker refuses a backend that misses one."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

from referral_api.config import PROJECT_ROOT
from referral_api.store import interface, open_store
from referral_api.store.sqlite import SQLiteStore
from referral_api.store.sqlite.keys import SQLiteKeyStore
from referral_api.store.sqlite.log import SQLiteDecisionLog
from referral_api.store.sqlite.writer import GroupCommitWriter

#: (protocol, implementation) pairs; a new backend adds its classes here.
IMPLEMENTATIONS = [
    (interface.Store, SQLiteStore),
    (interface.DecisionLog, SQLiteDecisionLog),
    (interface.KeyStore, SQLiteKeyStore),
    (interface.DecisionWriter, GroupCommitWriter),
    (interface.DecisionWriter, SQLiteDecisionLog),
]


def _members(protocol: type) -> dict[str, object]:
    """The protocol's methods and properties, its bases' included."""
    found: dict[str, object] = {}
    for klass in reversed(protocol.__mro__):
        if klass is object or not getattr(klass, "_is_protocol", False):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and (callable(value) or isinstance(value, property)):
                found[name] = value
    return found


def _parameters(function: object) -> list[tuple[str, object]]:
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [(p.name, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(("protocol", "implementation"), IMPLEMENTATIONS,
                         ids=lambda x: x.__name__)
def test_implementation_has_every_method_with_the_same_parameters(protocol, implementation):
    members = _members(protocol)
    assert members, f"{protocol.__name__} declares nothing"
    for name, declared in members.items():
        assert hasattr(implementation, name), f"{implementation.__name__} lacks {name}"
        actual = getattr(implementation, name)
        if isinstance(declared, property):
            assert isinstance(actual, property), f"{implementation.__name__}.{name}"
            continue
        assert _parameters(actual) == _parameters(declared), (
            f"{implementation.__name__}.{name} differs from {protocol.__name__}.{name}")


def test_open_store_builds_the_sqlite_store_lazily(tmp_path: Path) -> None:
    from referral_api.config import load_settings

    settings = load_settings({"DATABASE": str(tmp_path / "sub" / "log.sqlite"),
                              "AUDIT_QUERY_TIMEOUT_MS": 1234})
    store = open_store(settings)
    assert isinstance(store, SQLiteStore)
    assert not store.exists()  # nothing was created by opening
    assert store.log.query_timeout_ms == 1234
    assert store.migrate()  # creates the folder and the file
    assert store.exists() and store.migrate() == []
    assert store.log.health().ready
    store.close()


@pytest.mark.slow  # a whole mypy run (~5 s alone)
def test_the_type_checker_refuses_a_backend_missing_a_method(tmp_path: Path) -> None:
    """What ``make test`` relies on: a missing method is a type error, not a runtime one."""
    module = tmp_path / "incomplete_backend.py"
    module.write_text(textwrap.dedent('''
        from referral_api.store.interface import DecisionLog
        from referral_api.store.sqlite.log import SQLiteDecisionLog


        class WithoutHealth(SQLiteDecisionLog):
            health = None  # type: ignore[assignment]


        log: DecisionLog = SQLiteDecisionLog("x.sqlite")
        broken: DecisionLog = WithoutHealth("x.sqlite")
        '''), encoding="utf-8")
    out, _err, status = mypy_api.run([
        "--config-file", str(PROJECT_ROOT / "pyproject.toml"), "--no-incremental",
        "--follow-imports=silent", str(module)])
    assert status == 1, out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1 and ":11:" in errors[0], out
