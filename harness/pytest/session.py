"""A pytest session's shared state: what the plugin and its reporting both read from
``config.stash``, and the store, opened once per session."""

from __future__ import annotations

import argparse
from collections.abc import Collection

import pytest

from harness.core import settings
from harness.core.errors import UsageError
from harness.machines import store
from harness.model.pipeline import Pipeline

SETTINGS_KEY = pytest.StashKey[settings.RunSettings]()
STORE_KEY = pytest.StashKey[store.Store]()
PIPELINE_KEY = pytest.StashKey[Pipeline | None]()
TARGET_KEY = pytest.StashKey[str | None]()  # the last stage the selected tests need
RUN_ID_KEY = pytest.StashKey[str]()
PRIVATE_KEY = pytest.StashKey[int]()  # how many selected tests take a private lab (fresh_lab)
INTERRUPTED_KEY = pytest.StashKey[bool]()  # Ctrl-C or SIGTERM: the run leaves no lab warm
MACHINE_FIXTURES_KEY = pytest.StashKey[dict[str, str]]()  # the per-machine fixtures: name -> machine


def settings_of(config: pytest.Config, options: argparse.Namespace | None = None) -> settings.RunSettings:
    """The run's settings (`harness.core.settings`), resolved once, from ``options`` (default:
    ``config.option``): each option, else the environment, else the ini, else the default.
    A bad one is a `pytest.UsageError` naming where it came from."""
    if SETTINGS_KEY not in config.stash:
        try:
            run = settings.resolve(vars(options or config.option), config.getini, settings.Front.PYTEST)
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None
        config.stash[SETTINGS_KEY] = run
    return config.stash[SETTINGS_KEY]


def store_of(config: pytest.Config) -> store.Store:
    """The session's store (``--store``, else /var/lib/machines, else the image), opened once."""
    if STORE_KEY not in config.stash:
        run = settings_of(config)
        config.stash[STORE_KEY] = store.open_store(run.store, size=run.store_size)
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
    """How many private labs each process keeps booted ahead (``--spare-labs``, else env
    ``HARNESS_SPARE_LABS``, else ini ``harness_spare_labs``, else 1); 0 boots each in its test."""
    return settings_of(config).spare_labs
