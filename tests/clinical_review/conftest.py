"""One app per module for the second reading.

These tests only read answers (``POST /v1/decisions`` and ``GET /v1/vocabulary``); nothing they
assert depends on what other tests logged, so one app, one database and one evaluator key serve
a whole module instead of one per case (555 cases: the per-case app was most of their time).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.factories import auth, build_app


@pytest.fixture(scope="module")
def review_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """The service with the real rules on a database of its own, for one test module."""
    application = build_app(tmp_path_factory.mktemp("clinical-review"))
    yield application
    application.extensions["referral_api"].store.close()


@pytest.fixture(scope="module")
def client(review_app: Flask) -> Any:
    """A Flask test client of the module's app."""
    return review_app.test_client()


@pytest.fixture(scope="module")
def evaluator_headers(review_app: Flask) -> dict[str, str]:
    """An evaluator key of the module's app."""
    return auth(review_app.extensions["referral_api"].keys.create(["evaluator"], "review")[1])
