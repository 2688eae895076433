"""The harness pytest plugin (entry point ``pytest11``): options, collection, live progress;
its fixtures are in `harness.pytest.fixtures`.

One fixture per stage of the pipeline (``bootstrap``, ``gw``, ...) returns that stage's
machine from a lab that has reached at least that stage. Which stage the session lab is
built to comes from the fixtures of the tests actually selected: ``pytest -k dns`` where
only ``gw`` is used never builds a later stage. Tests marked ``fresh_lab`` get a private
lab booted from the same snapshot and destroyed after them.

Options live in the ``harness`` group; shared state in ``config.stash``. Progress lines
from `harness.core.log` are written to the terminal as they happen (capture suspended), and
each `harness.core.log.step` becomes an allure step.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.core import log, proc, settings
from harness.core.errors import HarnessError, UsageError
from harness.machines import lab as lab_module
from harness.machines import volumes
from harness.model.pipeline import Pipeline, load_pipeline, needed_stage
from harness.pytest import debugger, fixtures, flaky, reporting, timings
from harness.pytest.reporting import (  # noqa: F401 (hooks)
    pytest_runtest_call,
    pytest_runtest_makereport,
    pytest_sessionfinish,
)
from harness.pytest.session import (
    INTERRUPTED_KEY,
    MACHINE_FIXTURES_KEY,
    PIPELINE_KEY,
    PRIVATE_KEY,
    TARGET_KEY,
    machine_fixtures,
    needs,
    settings_of,
    store_of,
)

MARKERS = {
    "integration": "needs root, real btrfs and real nspawn machines",
    "fresh_lab": "give this test a private lab, booted from the stage snapshot for it alone and "
                 "destroyed after it",
    "machines(*names)": "the test needs a lab holding these machines (as a parametrized `machine` does)",
}
HOST_TOOLS = ("systemd-nspawn", "nsenter", "nft", "tcpdump", "debootstrap")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness: nspawn labs on btrfs snapshots")
    settings.add_options(group, parser.addini)  # the run's settings: harness.core.settings.SETTINGS
    group.addoption("--from-snapshot", metavar="STAGE", default=None,
                    help="restore the lab as it stood after STAGE, then rebuild every later "
                         "stage the selected tests need, even when cached")
    group.addoption("--rebuild", action="store_true",
                    help="ignore cached snapshots: rebuild every stage the selected tests need")
    group.addoption("--keep-lab", action="store_true",
                    help="leave the session's lab running at the end and print how to enter "
                         "each machine (remove it with `harness destroy`)")
    group.addoption("--keep-failed", action="store_true",
                    help="snapshot the lab of each failing test, with its evidence, as "
                         "failed/<test-id> (resume it with `harness up --from-snapshot failed/<test-id>`)")
    group.addoption("--shard", metavar="I/N", default=None, type=_shard,
                    help="run only the I-th of N shares of the selected tests (I from 1): one "
                         "runner of N in a fanned-out CI job; it builds only what its share needs")
    group.addoption("--mutant-log", metavar="FILE", default=None,
                    help="append one JSON line per test outcome to FILE (for `harness mutate`)")
    group.addoption("--flake-check", metavar="N", type=int, default=0,
                    help="rerun a failing test up to N times, each in a fresh lab from the same "
                         "snapshot, and say whether it 'fails N/N' or is 'flaky k/N'")
    group.addoption("--first", metavar="NODEID", action="append", default=[],
                    help="run this selected test before the others (repeatable; `harness mutate` "
                         "runs the test that killed a mutant last time first)")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    """Resolve the run's settings (`harness.core.settings`) before any conftest imports the
    inventory (they load before `pytest_configure`), and hand the room size and the families
    to harness.model.inventory_file.load, here and in every process this run starts (xdist workers,
    `harness mutate`'s runs). Then import the pipeline, so that a wrong stage or inventory (a
    room that overflows at this size) is one line naming the fault, not a conftest's import
    traceback."""
    settings.export(settings_of(early_config, early_config.known_args_namespace))
    early_config.stash[PIPELINE_KEY] = _load_pipeline(early_config)


def _load_pipeline(config: pytest.Config) -> Pipeline | None:
    """The pipeline the run's settings name (``--pipeline``, HARNESS_PIPELINE, ini ``harness_pipeline``)."""
    run = settings_of(config)
    name = run.pipeline
    if not name:
        return None  # fine until a selected test needs a lab (pytest_collection_finish)
    if str(config.rootpath) not in sys.path:  # the project's own package, as the CLI imports it
        sys.path.insert(0, str(config.rootpath))
    try:
        pipeline = load_pipeline(name)
    except HarnessError as exc:  # a stage, the pipeline or the inventory is wrong: say where
        raise pytest.UsageError(str(exc)) from None
    if pipeline is None:
        where = run.where["pipeline"]
        given = f"--pipeline={name}" if where == "--pipeline" else \
            f"harness_pipeline = {name!r} ({config.inipath or 'the ini'})" if where.startswith("ini") else \
            f"{where}={name}"
        raise pytest.UsageError(f"{given}: no such module; give a module importable from the "
                                "rootdir that defines PIPELINE")
    size = run.room_size
    rooms = pipeline.rooms
    wrong = [name for name, seats in rooms.items() if size and len(seats) != size]
    if wrong:  # its inventory was loaded before the size was set (imported by a plugin?)
        raise pytest.UsageError(f"{run.given('room_size')}: the pipeline's rooms were loaded before the "
                                f"size was set ({wrong[0]} has {len(rooms[wrong[0]])} seats); load "
                                "the inventory in the pipeline module, not at import of a plugin")
    return pipeline


@pytest.hookimpl(tryfirst=True)  # before allure and junitxml read their options
def pytest_configure(config: pytest.Config) -> None:
    # The fixtures (harness/pytest/fixtures.py), registered as the module this one already imported:
    # named in `pytest_plugins`, pytest would warn on every run that it came too late to rewrite.
    if not config.pluginmanager.is_registered(fixtures):  # `-p harness.pytest.fixtures` did it already
        config.pluginmanager.register(fixtures, "harness.pytest.fixtures")
    if not config.pluginmanager.is_registered(debugger):  # --pdb, breakpoint(): how to enter the lab
        config.pluginmanager.register(debugger, "harness.pytest.debugger")
    config.pluginmanager.register(_Interrupts(config), "harness-interrupts")
    if not config.option.help:  # nothing runs, nothing is reported: anyone may ask, anywhere
        _refuse_a_user_who_cannot_write(config)
        reporting.point_reports(config)
    for marker, meaning in MARKERS.items():
        config.addinivalue_line("markers", f"{marker}: {meaning}")
    if not hasattr(config, "workerinput") and config.option.verbose >= 0:
        handler = reporting.terminal_progress(config)
        log.logger.addHandler(handler)
        config.add_cleanup(lambda: log.logger.removeHandler(handler))
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(timings.Timings(config, reporting.reports_dir(config)),
                                      "harness-timings")
    log.logger.setLevel(logging.INFO)
    config.add_cleanup(log.add_step_listener(reporting.allure_step))
    if config.option.flake_check < 0:
        raise pytest.UsageError(f"--flake-check={config.option.flake_check}: give a number of "
                                "reruns, 1 or more")
    if config.option.flake_check:
        config.pluginmanager.register(flaky.FlakeCheck(config.option.flake_check), "harness-flake-check")
    if PIPELINE_KEY not in config.stash:
        config.stash[PIPELINE_KEY] = _load_pipeline(config)
    pipeline = config.stash[PIPELINE_KEY]
    run = settings_of(config)
    if run.mutant is not None:
        if pipeline is None:
            raise pytest.UsageError(f"{run.given('mutant')} needs a pipeline: give --pipeline MODULE")
        try:
            pipeline.mutant(run.mutant)
        except HarnessError as exc:
            raise pytest.UsageError(f"{run.where['mutant']}={run.mutant}: {exc}") from None
    if pipeline is not None:
        per_stage = types.ModuleType("harness_stage_fixtures", "One fixture per stage.")
        for stage in pipeline.stages:
            setattr(per_stage, f"stage_{stage.name}", fixtures.stage_fixture(stage))
        taken = {*dir(fixtures), *pipeline.names}  # a stage's or the harness's fixture wins
        per_machine = config.stash[MACHINE_FIXTURES_KEY] = machine_fixtures(pipeline, taken)
        for name, machine in per_machine.items():
            setattr(per_stage, f"machine_{name}", fixtures.machine_fixture(name, machine))
        config.pluginmanager.register(per_stage, "harness-stages")


def _refuse_a_user_who_cannot_write(config: pytest.Config) -> None:
    """Not root, in a project of labs, where the run cannot write its reports (a checkout of
    root's, run by a user): the one line `_preflight` says, now, before allure, junitxml and
    the reports directory are set up. Later, allure's mkdir or junitxml's file at the session's
    end failed with a traceback after it (117 lines, exit 1). Which tests need a lab is known
    only once they are collected; a run that cannot write its reports fails anyway."""
    if os.geteuid() == 0 or hasattr(config, "workerinput") or not settings_of(config).pipeline:
        return
    reports = reporting.reports_dir(config)
    blocked = next((p for p in ([reports / "allure-results", reports / "junit.xml"] if reports else [])
                    if not _can_write(p)), None)
    if blocked is None:
        return  # collected first: tests that use no lab run as any user (see `_preflight`)
    try:
        volumes.require_root()
    except HarnessError as exc:
        raise pytest.UsageError(f"{exc} (uid {os.geteuid()} cannot even write {blocked}; tests that "
                                "use no lab run as any user given --reports=DIR)") from None


def _can_write(path: Path) -> bool:
    """Whether this process can write ``path``: the file or directory, or where it would be made."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return os.access(path, os.W_OK)


class _Interrupts:
    """Marks the session interrupted (Ctrl-C, or SIGTERM: see `proc.interrupt_on_sigterm`) in
    its stash: its labs all go then, none is left warm (`LabPool.close`)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.config.stash[INTERRUPTED_KEY] = True


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    config.add_cleanup(proc.interrupt_on_sigterm())
    capture = config.pluginmanager.get_plugin("logging-plugin")
    if capture is not None:  # a stage's build is in its own log file: the report names it instead
        capture.report_handler.addFilter(lambda record: not log.kept_elsewhere(record))
    if config.stash[PIPELINE_KEY] is not None and os.geteuid() == 0 \
            and not hasattr(config, "workerinput"):
        lab_module.sweep_stale()  # labs of runs killed with SIGKILL: their owner pid is gone
    wanted = config.option.from_snapshot
    pipeline = config.stash[PIPELINE_KEY]
    if wanted is None or pipeline is None:
        return
    if wanted not in pipeline.names:
        raise pytest.UsageError(f"--from-snapshot={wanted}: unknown stage; the stages are "
                                f"{', '.join(pipeline.names)}{_with_snapshots(config, pipeline)}")


def _with_snapshots(config: pytest.Config, pipeline: Pipeline) -> str:
    try:
        snaps = store_of(config).snapshots()
    except HarnessError:
        return ""
    groups = {s.ref.group for s in snaps}
    have = [n for n in pipeline.names if n in groups]
    return f"; with snapshots: {', '.join(have) or 'none'}"


def _shard(text: str) -> tuple[int, int]:
    """``I/N`` as (I, N); the error says the form."""
    index, _, total = text.partition("/")
    if not (index.isdigit() and total.isdigit() and 1 <= int(index) <= int(total)):
        raise argparse.ArgumentTypeError(f"{text!r}: give I/N with 1 <= I <= N, e.g. 2/3")
    return int(index), int(total)


def shard_of(nodeids: Sequence[str], index: int, total: int) -> list[str]:
    """The tests of share ``index`` (from 1) of ``total``: every N-th in node id order, so
    shares differ by one test at most and a test's share depends on nothing but the ids."""
    return [n for i, n in enumerate(sorted(nodeids)) if i % total == index - 1]


EMPTY_PARAMETER_SET = "got empty parameter set"  # pytest's reason for a test it cannot generate


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test parametrized over nothing (the IPv6 rows of an IPv4-only inventory, the rooms of
    # a lab without rooms) is not generated: deselected, not shown as a skip that looks like
    # coverage withheld.
    empty = [i for i in items if any(str(m.kwargs.get("reason", "")).startswith(EMPTY_PARAMETER_SET)
                                     for m in i.iter_markers("skip"))]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [i for i in items if i not in empty]
    if config.option.shard is not None:
        mine = set(shard_of([i.nodeid for i in items], *config.option.shard))
        config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in mine])
        items[:] = [i for i in items if i.nodeid in mine]
    on_labs = any("harness_labs" in getattr(i, "fixturenames", ()) for i in items)
    mutant = settings_of(config).mutant
    if on_labs and not (config.option.first or mutant):
        cache = getattr(config, "cache", None)
        items[:] = timings.order(items, name=lambda i: i.nodeid,
                                 private=lambda i: i.get_closest_marker("fresh_lab") is not None,
                                 durations=cache.get(timings.CACHE_KEY, {}) if cache else {})
    elif config.option.first or mutant:
        # --first ones first; against a mutant, the tests on the shared lab before those that
        # boot a lab of their own: a mutant dies at its first failure, the cheaper the sooner
        first = set(config.option.first)
        cheap = mutant is not None
        items.sort(key=lambda i: (i.nodeid not in first,
                                  cheap and i.get_closest_marker("fresh_lab") is not None))
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (btrfs, namespaces, nspawn): run as root")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


def pytest_collection_finish(session: pytest.Session) -> None:
    pipeline = session.config.stash[PIPELINE_KEY]
    if pipeline is None and any("harness_pipeline" in getattr(i, "fixturenames", ()) for i in session.items):
        raise pytest.UsageError("no pipeline: the selected tests use labs; name the module that defines "
                                f"PIPELINE in {session.config.inipath or 'the pytest ini'} "
                                '(harness_pipeline = "MODULE"), or give --pipeline MODULE')
    names = [needs(item, pipeline) for item in session.items] if pipeline else []
    target = needed_stage(pipeline, names) if pipeline else None
    mutant = settings_of(session.config).mutant
    if pipeline is not None and target is not None and mutant is not None:
        # the lab must hold what the mutant breaks, even if the selected tests need less
        target = max(target, pipeline.mutant(mutant)[0], key=pipeline.index)
    session.config.stash[TARGET_KEY] = target
    runnable = [i for i in session.items if i.get_closest_marker("skip") is None]
    session.config.stash[PRIVATE_KEY] = sum(i.get_closest_marker("fresh_lab") is not None
                                            for i in runnable)
    if pipeline is not None and runnable and not session.config.option.collectonly and needed_stage(
            pipeline, [needs(i, pipeline) for i in runnable]) is not None:
        _preflight(session.config)


def _preflight(config: pytest.Config) -> None:
    """Before any test runs: root, btrfs-progs, the store, the host tools labs need. A missing
    one is a usage error, one line that says what to do (exit 4), not an error per test."""
    try:
        store_of(config)
        proc.require_tools(HOST_TOOLS)
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes ``room`` runs once per room of the pipeline (its id names the room)."""
    pipeline = metafunc.config.stash.get(PIPELINE_KEY, None)
    if "room" in metafunc.fixturenames and pipeline is not None and not any(
            "room" in str(mark.args[0]) for mark in metafunc.definition.iter_markers("parametrize")):
        if not pipeline.rooms:
            raise UsageError(f"{metafunc.definition.nodeid} takes `room`, but the inventory has no rooms")
        metafunc.parametrize("room", list(pipeline.rooms), indirect=True)
