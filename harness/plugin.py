"""The harness pytest plugin (entry point ``pytest11``): options, fixtures, live progress.

Options live in the ``harness`` group; shared state in ``config.stash``. Progress lines
from `harness.log` are written to the terminal as they happen (capture suspended), and
each `harness.log.step` becomes an allure step.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness import log, store
from harness.lab import Lab, MachineSetup
from harness.machine import DEFAULT_BOOT_TIMEOUT

STORE_KEY = pytest.StashKey[store.Store]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness: nspawn labs on btrfs snapshots")
    group.addoption("--store", default=os.environ.get("HARNESS_STORE"),
                    help="btrfs directory holding snapshots (env HARNESS_STORE); default: "
                         "/var/lib/machines/harness if btrfs, else the embedded image")
    group.addoption("--store-size", default=os.environ.get("HARNESS_STORE_SIZE",
                                                           store.DEFAULT_IMAGE_SIZE),
                    help="size of the embedded store image when it is first created "
                         f"(default {store.DEFAULT_IMAGE_SIZE}, sparse)")
    group.addoption("--boot-timeout", type=float, default=DEFAULT_BOOT_TIMEOUT,
                    help=f"seconds a machine may take to boot (default {DEFAULT_BOOT_TIMEOUT:g})")


class _TerminalHandler(logging.Handler):
    """Writes harness progress straight to the terminal, even while output is captured."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__(logging.INFO)
        self.config = config

    def emit(self, record: logging.LogRecord) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        line = f"[harness] {self.format(record)}"
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)
        else:
            reporter.write_line(line)


def _allure_step(title: str) -> Any:
    import allure

    return allure.step(title)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs root, real btrfs and real nspawn machines")
    if not hasattr(config, "workerinput") and config.option.verbose >= 0:
        handler = _TerminalHandler(config)
        log.logger.addHandler(handler)
        config.add_cleanup(lambda: log.logger.removeHandler(handler))
    log.logger.setLevel(logging.INFO)
    config.add_cleanup(log.add_step_listener(_allure_step))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (btrfs, namespaces, nspawn): run as root")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def harness_store(pytestconfig: pytest.Config) -> store.Store:
    """Session: the btrfs store (``--store``, else /var/lib/machines, else the embedded image).

    >>> def test_snapshots(harness_store):
    ...     assert harness_store.snapshots() is not None
    """
    if STORE_KEY not in pytestconfig.stash:
        pytestconfig.stash[STORE_KEY] = store.open_store(pytestconfig.option.store,
                                                         size=pytestconfig.option.store_size)
    return pytestconfig.stash[STORE_KEY]


@pytest.fixture(scope="session")
def bootstrap(harness_store: store.Store) -> store.Snapshot:
    """Session: the bootstrap snapshot (Debian base, member ``base``), built on first use.

    >>> def test_base(bootstrap):
    ...     assert (bootstrap.member("base") / "etc/debian_version").exists()
    """
    from stages import bootstrap as stage

    return stage.ensure(harness_store)


MakeLab = Callable[[Sequence[MachineSetup]], Lab]


@pytest.fixture
def make_lab(harness_store: store.Store, pytestconfig: pytest.Config,
             tmp_path: Path) -> Iterator[MakeLab]:
    """Function: build private labs from machine setups; each is torn down after the test.

    >>> def test_two(make_lab, bootstrap):
    ...     lab = make_lab([MachineSetup("a", bootstrap.member("base"))])
    ...     lab["a"].succeed("true")
    """
    labs: list[Lab] = []

    def make(setups: Sequence[MachineSetup]) -> Lab:
        lab = Lab(harness_store, setups, boot_timeout=pytestconfig.option.boot_timeout,
                  log_dir=tmp_path / f"lab{len(labs)}")
        lab.__enter__()
        labs.append(lab)
        return lab

    try:
        yield make
    finally:
        for lab in reversed(labs):
            lab.__exit__(None, None, None)
