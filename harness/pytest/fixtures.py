"""The harness's pytest fixtures: the store, the pipeline, labs, machines, rooms.

Registered by the plugin (`harness.plugin`, in its ``pytest_configure``);
one fixture per stage is made here too, from the pipeline (`stage_fixture`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.core.errors import HarnessError, UsageError
from harness.engine import evidence, warm
from harness.engine.build.builder import Builder
from harness.engine.labpool import LabPool
from harness.machines import store
from harness.machines.lab import Lab, MachineSetup
from harness.machines.machine import Machine
from harness.model.pipeline import Pipeline, needed_stage
from harness.model.stage import Stage
from harness.pytest import flaky, reporting
from harness.pytest.session import (
    INTERRUPTED_KEY,
    PIPELINE_KEY,
    PRIVATE_KEY,
    RUN_ID_KEY,
    TARGET_KEY,
    needs,
    settings_of,
    spare_labs,
    store_of,
)


def stage_fixture(stage: Stage) -> Callable[..., Any]:
    """The fixture named after ``stage``: its snapshot (the base stage), else its first machine."""
    if stage.handle is None:
        @pytest.fixture(scope="session", name=stage.name)
        def base(harness_builder: Builder) -> store.Snapshot:
            return harness_builder.ensure(stage.name)

        base.__doc__ = (f"Session: the snapshot of base stage {stage.name} (member 'base'), "
                        "built on first use.")
        return base

    handle = stage.handle

    @pytest.fixture(name=stage.name)
    def machine(lab: Lab) -> Machine:
        return lab[handle]

    machine.__doc__ = (f"Function: machine {handle} of a lab that has reached stage {stage.name} "
                       "(the private lab of a fresh_lab test, else the shared one).")
    return machine


def machine_fixture(name: str, machine: str) -> Callable[..., Any]:
    """The fixture ``name`` returning machine ``machine``, from a lab that holds it."""

    @pytest.fixture(name=name)
    def named(lab: Lab) -> Machine:
        return lab[machine]

    named.__doc__ = (f"Function: machine {machine}, from a lab that holds it (the private lab of a "
                     "fresh_lab test, else the shared one).")
    return named


@pytest.fixture(scope="session")
def harness_store(pytestconfig: pytest.Config) -> store.Store:
    """Session: the btrfs store (``--store``, else /var/lib/machines, else the embedded image)."""
    return store_of(pytestconfig)


@pytest.fixture(scope="session")
def harness_pipeline(pytestconfig: pytest.Config) -> Pipeline:
    """Session: the pipeline of stages (``--pipeline`` / ini ``harness_pipeline``)."""
    pipeline = pytestconfig.stash[PIPELINE_KEY]
    if pipeline is None:
        raise HarnessError("no pipeline: give --pipeline MODULE, a module that defines PIPELINE")
    return pipeline


@pytest.fixture(scope="session")
def harness_builder(pytestconfig: pytest.Config, harness_store: store.Store,
                    harness_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Builder:
    """Session: builds and restores stages; one run id shared by all xdist workers."""
    # kept in the stash: a --flake-check rerun of the last test re-creates session fixtures
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID") or pytestconfig.stash.setdefault(
        RUN_ID_KEY, uuid.uuid4().hex)
    run = settings_of(pytestconfig)
    return Builder(harness_store, harness_pipeline, run_id=run_id, boot_timeout=run.boot_timeout,
                   log_dir=tmp_path_factory.getbasetemp() / "labs", mutant=run.mutant,
                   project=str(pytestconfig.rootpath))


@pytest.fixture(scope="session")
def harness_labs(pytestconfig: pytest.Config, harness_builder: Builder,
                 harness_pipeline: Pipeline) -> Iterator[LabPool]:
    """Session: the labs of this session, built up to the last stage the selected tests need."""
    target = pytestconfig.stash.get(TARGET_KEY, None) or harness_pipeline.names[-1]
    run = settings_of(pytestconfig)
    pristine = run.mutant is None  # a mutant's lab is never handed on, nor a warm lab taken for it
    where, project = harness_builder.store, harness_builder.project

    def warmer(snapshot: store.Snapshot) -> int:
        return warm.start(where, project, snapshot, str(run.pipeline), boot_timeout=run.boot_timeout)

    pool = LabPool(harness_builder, target, from_snapshot=pytestconfig.option.from_snapshot,
                   rebuild=pytestconfig.option.rebuild, spares=spare_labs(pytestconfig),
                   private_wanted=pytestconfig.stash.get(PRIVATE_KEY, 0), lazy_spares=not pristine,
                   warm=run.warm_labs if pristine and run.pipeline else 0,
                   adopt=run.boot_timeout if pristine else 0, warmer=warmer)
    try:
        yield pool
    finally:
        pool.close(keep=pytestconfig.option.keep_lab,
                   leave_warm=not pytestconfig.stash.get(INTERRUPTED_KEY, False))


@pytest.fixture(scope="session")
def harness_lab(harness_labs: LabPool) -> Lab:
    """Session: the shared lab at the last stage the session needs (for session-wide fixtures)."""
    return harness_labs.shared(harness_labs.snapshot_for(harness_labs.target))


@pytest.fixture
def machine(request: pytest.FixtureRequest, lab: Lab) -> Machine:
    """Function: the machine named by the test's ``machine`` parameter, from its lab, which
    holds it: the stage that adds it counts among the test's needs.

    >>> @pytest.mark.parametrize("machine", ["gw", "web"], indirect=True)
    ... def test_answers_ping(machine):
    ...     machine.succeed("ping -c1 -W2 127.0.0.1")
    """
    name = getattr(request, "param", None)
    if not isinstance(name, str):
        raise UsageError("the machine fixture needs @pytest.mark.parametrize(\"machine\", NAMES, "
                         "indirect=True)")
    return lab[name]


@pytest.fixture
def room(request: pytest.FixtureRequest, lab: Lab, harness_pipeline: Pipeline) -> list[Machine]:
    """Function: the machines of one room of the inventory, in seat order; a test that takes it
    runs once per room (``test_x[r11]``). Check them together with `harness.machines.fleet.on_each`.

    >>> def test_every_seat_resolves_gw(room):
    ...     on_each(room, lambda m: m.succeed("getent hosts gw"), what="resolve gw")
    """
    return [lab[name] for name in harness_pipeline.rooms[request.param]]


@pytest.fixture
def rooms(lab: Lab, harness_pipeline: Pipeline) -> dict[str, list[Machine]]:
    """Function: every room of the inventory, by name, each its machines in seat order."""
    return {name: [lab[m] for m in machines] for name, machines in harness_pipeline.rooms.items()}


@pytest.fixture(scope="session")
def harness_captures() -> Iterator[dict[str, evidence.Capture]]:
    """Session: the capture of each shared lab's switch, by lab id: started by the lab's first
    test, stopped at the end; each test that fails takes its own window of it."""
    running: dict[str, evidence.Capture] = {}
    try:
        yield running
    finally:
        for capture in running.values():
            capture.stop()


@pytest.fixture
def lab(request: pytest.FixtureRequest, harness_labs: LabPool, harness_pipeline: Pipeline,
        harness_captures: dict[str, evidence.Capture],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Function: the lab this test runs against: a private one if marked ``fresh_lab``, else shared.

    Its switch is captured while the test runs; if the test fails, the evidence (journals,
    addresses, routes, rulesets, pcaps, topology) is attached to its report.

    >>> @pytest.mark.fresh_lab
    ... def test_gw_restart(lab):
    ...     lab["gw"].succeed("systemctl restart kea-dhcp4-server")
    """
    need = needed_stage(harness_pipeline, [needs(request.node, harness_pipeline)]) \
        or harness_labs.target
    snapshot = harness_labs.snapshot_for(need)
    with contextlib.ExitStack() as stack:
        rerun = request.node.stash.get(flaky.RERUN_KEY, 0)  # --flake-check: a lab of its own
        since = time.time()
        if request.node.get_closest_marker("fresh_lab") is None and not rerun:
            chosen = harness_labs.shared(snapshot)
            capture = harness_captures.get(chosen.id)
            if capture is None:
                directory = tmp_path_factory.mktemp(f"capture-{chosen.id}")
                capture = harness_captures[chosen.id] = evidence.Capture(chosen.network, directory).start()
        else:  # torn down behind the next test (LabPool.later): the test is over
            private = contextlib.ExitStack()
            stack.callback(harness_labs.later, private.close)
            chosen = private.enter_context(harness_labs.private(snapshot))
            directory = tmp_path_factory.mktemp("capture")
            capture = evidence.Capture(chosen.network, directory).start()
            private.callback(shutil.rmtree, directory, ignore_errors=True)
            private.callback(capture.stop)
        request.node.stash[reporting.WATCHED_KEY] = reporting.Watched(chosen, snapshot, since, capture)
        yield chosen


MakeLab = Callable[[Sequence[MachineSetup]], Lab]


@pytest.fixture
def make_lab(harness_store: store.Store, pytestconfig: pytest.Config,
             tmp_path: Path) -> Iterator[MakeLab]:
    """Function: build private labs from explicit machine setups; torn down after the test.

    >>> def test_two(make_lab, bootstrap):
    ...     lab = make_lab([MachineSetup("a", bootstrap.member("base"))])
    ...     lab["a"].succeed("true")
    """
    labs: list[Lab] = []

    def make(setups: Sequence[MachineSetup]) -> Lab:
        lab = Lab(harness_store, setups, boot_timeout=settings_of(pytestconfig).boot_timeout,
                  log_dir=tmp_path)
        lab.__enter__()
        labs.append(lab)
        return lab

    try:
        yield make
    finally:
        for made in reversed(labs):
            made.__exit__(None, None, None)
