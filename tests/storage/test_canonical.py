"""Canonical JSON and chain hashing."""

from __future__ import annotations

import hashlib
import math

import pytest

from referral_api.canonical import GENESIS_HASH, canonical_json, chain_hash


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
