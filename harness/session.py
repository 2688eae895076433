"""A pytest session's shared state: what the plugin and its reporting both read from
``config.stash``, and the store, opened once per session."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from harness import store
from harness.stage import Pipeline

STORE_KEY = pytest.StashKey[store.Store]()
PIPELINE_KEY = pytest.StashKey[Pipeline | None]()
TARGET_KEY = pytest.StashKey[str | None]()  # the last stage the selected tests need
RUN_ID_KEY = pytest.StashKey[str]()
PRIVATE_KEY = pytest.StashKey[int]()  # how many selected tests take a private lab (fresh_lab)
MACHINE_FIXTURES_KEY = pytest.StashKey[dict[str, str]]()  # the per-machine fixtures: name -> machine
DEFAULT_SPARE_LABS = 1


def store_of(config: pytest.Config) -> store.Store:
    """The session's store (``--store``, else /var/lib/machines, else the image), opened once."""
    if STORE_KEY not in config.stash:
        config.stash[STORE_KEY] = store.open_store(config.option.store, size=config.option.store_size)
    return config.stash[STORE_KEY]


def needs(item: pytest.Item, pipeline: Pipeline) -> list[str]:
    """What ``item`` needs from the pipeline: its fixture names, plus the stage that adds each
    machine it names (a ``machine`` argument, a ``room``, the ``rooms`` fixture, a ``machines``
    mark), so a per-machine test gets a lab holding its machine without asking for the last
    stage."""
    named: list[object] = []
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "machine" in callspec.params:
        named.append(callspec.params["machine"])
    for mark in item.iter_markers("machines"):
        named += mark.args
    fixtures = getattr(item, "fixturenames", ())
    if callspec is not None and "room" in callspec.params:
        named += pipeline.rooms.get(str(callspec.params["room"]), ())
    if "rooms" in fixtures:
        named += [m for machines in pipeline.rooms.values() for m in machines]
    by_fixture = item.config.stash.get(MACHINE_FIXTURES_KEY, {})
    named += [by_fixture[f] for f in fixtures if f in by_fixture]
    stages = [pipeline.owner[n] for n in named if isinstance(n, str) and n in pipeline.owner]
    return [*fixtures, *stages]


def machine_fixtures(pipeline: Pipeline, taken: Collection[str]) -> dict[str, str]:
    """Fixture name -> machine, for every machine of the pipeline whose name is not ``taken``
    (a stage's fixture, the harness's); ``pas-r11p1``'s is ``pas_r11p1``, an identifier."""
    return {machine.replace("-", "_"): machine for machine in pipeline.owner
            if not pipeline.is_tree(machine) and machine.replace("-", "_") not in taken}


def spare_labs(config: pytest.Config) -> int:
    """How many private labs each process keeps booted ahead (``--spare-labs``, else ini
    ``harness_spare_labs``, else `DEFAULT_SPARE_LABS`); 0 boots each in its test."""
    value = config.option.spare_labs
    if value is None:
        value = config.getini("harness_spare_labs") or DEFAULT_SPARE_LABS
    text = str(value)
    if not text.isdigit():
        raise pytest.UsageError(f"spare labs {text!r}: give a whole number, 0 to boot each "
                                "private lab in its test (--spare-labs / ini harness_spare_labs)")
    return int(text)
