"""A pytest session's shared state: what the plugin and its reporting both read from
``config.stash``, and the store, opened once per session."""

from __future__ import annotations

import pytest

from harness import store
from harness.stage import Pipeline

STORE_KEY = pytest.StashKey[store.Store]()
PIPELINE_KEY = pytest.StashKey[Pipeline | None]()
TARGET_KEY = pytest.StashKey[str | None]()  # the last stage the selected tests need
RUN_ID_KEY = pytest.StashKey[str]()


def store_of(config: pytest.Config) -> store.Store:
    """The session's store (``--store``, else /var/lib/machines, else the image), opened once."""
    if STORE_KEY not in config.stash:
        config.stash[STORE_KEY] = store.open_store(config.option.store, size=config.option.store_size)
    return config.stash[STORE_KEY]
