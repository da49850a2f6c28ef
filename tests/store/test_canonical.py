"""Canonical JSON and chain hashing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referral_api.clinical import engine
from referral_api.clinical.versions import load_registry
from referral_api.config import PROJECT_ROOT
from referral_api.store import canonical
from referral_api.store.canonical import GENESIS_HASH, canonical_json, chain_hash


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": [1.5, None, "é"]}) == '{"a":[1.5,null,"é"],"b":1}'.encode()
    assert canonical_json({"z": {"y": 1, "x": 2}}) == b'{"z":{"x":2,"y":1}}'


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_json_rejects_non_json_numbers(bad: float) -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": bad})


def test_chain_hash_is_sha256_of_prev_plus_canonical_fields() -> None:
    fields = {"seq": 1, "prev_hash": GENESIS_HASH, "x": "é"}
    expected = hashlib.sha256(
        (GENESIS_HASH + '{"prev_hash":"' + GENESIS_HASH + '","seq":1,"x":"é"}').encode()
    ).hexdigest()
    assert chain_hash(GENESIS_HASH, fields) == expected
    assert GENESIS_HASH == "0" * 64
    assert chain_hash(GENESIS_HASH, {**fields, "x": "e"}) != expected
    assert chain_hash("1" * 64, fields) != expected


# -- the orjson fast path writes exactly the standard library's bytes -------------------------


def _stdlib(obj: object) -> bytes:
    """The definition of the canonical form (db/README.md), independent of the module."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
            | st.floats(allow_nan=False, allow_infinity=False)
            # The range where orjson's float text differs from the standard library's.
            | st.floats(min_value=1e-10, max_value=1e-3) | st.text())
_json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(_json_values)
def test_fast_path_bytes_equal_the_standard_library(value: object) -> None:
    assert canonical_json(value) == _stdlib(value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _scalars, max_size=12))
def test_flat_rows_with_null_equal_the_standard_library(row: dict) -> None:
    row["null_column"] = None
    assert canonical_json(row) == _stdlib(row)


@pytest.mark.parametrize("value", [
    1e-07, 2.5e-05, 5.077235489454861e-05, 1e-09, 1e-10, 0.0001, 1e16, 5e-324,
    1.7976931348623157e308,
])
def test_exponents_are_written_like_the_standard_library(value: float) -> None:
    assert canonical_json({"x": value}) == _stdlib({"x": value})


@pytest.mark.parametrize("bad", [
    {"nested": {"x": math.nan}}, [math.inf], {"rows": [{"a": None, "b": -math.inf}]},
])
def test_non_json_numbers_are_refused_however_deep(bad: object) -> None:
    with pytest.raises(ValueError):
        canonical_json(bad)


def test_values_the_standard_library_refuses_stay_refused() -> None:
    with pytest.raises(TypeError):
        canonical_json({"at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})
    # Non-string keys and integers beyond 64 bits are not orjson's: the standard library
    # writes them.
    assert canonical_json({1: 2**70}) == b'{"1":1180591620717411303424}'


def test_a_decision_is_written_by_orjson_not_the_standard_library(monkeypatch) -> None:
    """The fast path is really taken for what the log writes on every decision."""
    registry = load_registry(PROJECT_ROOT / "rules")
    request = {"patient": {"age": 52, "sex": "male", "reference": "a" * 64},
               "region": "lumbar", "requested_procedure": "mri_lumbar_without_contrast",
               "symptom_duration_weeks": 10.5, "conservative_care_weeks": 6.0,
               "intervention_candidate": True, "findings": ["radiculopathy"],
               "contraindications": [], "egfr": 75}
    output = engine.evaluate(request, registry.in_force(dt.datetime.now(dt.UTC)),
                             registry.vocabulary)
    expected = {"input": _stdlib(request), "output": _stdlib(output)}
    row = {"seq": 1, "prev_hash": GENESIS_HASH, "latency_ms": 0.512, "hook_instance": None,
           "input_json": expected["input"].decode(), "output_json": expected["output"].decode()}
    expected_row = _stdlib(row)

    def refuse(obj: object) -> bytes:
        raise AssertionError("fell back to the standard library")

    monkeypatch.setattr(canonical, "_stdlib_canonical", refuse)
    assert canonical_json(request) == expected["input"]
    assert canonical_json(output) == expected["output"]
    assert canonical_json(row) == expected_row
