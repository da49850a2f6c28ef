"""The one way a CLI command opens the store: the configured backend, which must exist."""

from __future__ import annotations

import click

from referral_api.config import load_settings
from referral_api.store import open_store
from referral_api.store.interface import Store


def open_existing_store() -> Store:
    """The configured store; a click error naming ``init-db`` when it was never created."""
    store = open_store(load_settings())
    if not store.exists():
        raise click.ClickException(
            f"no database at {store.describe()}: run `referral-api init-db` first")
    return store
