"""A harness that survives what happens to real runs: Ctrl-C, a cancelled CI job, kill -9,
two runs at once, a full disk. Each on the toy pipeline (tests/toy.py), a real pytest run
held at a chosen place (a stage's step, a scenario) until the test acts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.core import proc
from harness.core.wait import retry
from harness.engine import bundle
from harness.machines import lab
from harness.machines.store import Snapshot, Store
from tests.conftest import NOTHING, as_nobody, traces_of
from tests.toy import Toy

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent


class Held:
    """A toy run held at a place: its process, and the lab id the hold reported."""

    def __init__(self, toy: Toy, place: str, *args: str, group: bool = False) -> None:
        self.marker = toy.pytester.path / f"hold-{place}"
        os.mkfifo(f"{self.marker}.release")
        self.output = toy.pytester.path / f"run-{place}.out"
        self.process = toy.start(*args, env={"TOY_HOLD": place, "TOY_HOLD_FILE": str(self.marker)},
                                 output=self.output, group=group)
        retry(lambda last: self.marker.exists() or self.process.poll() is not None, timeout=300,
              what=f"the toy run to reach {place}")
        assert self.process.poll() is None, self.output.read_text()[-3000:]
        self.lab_id = self.marker.read_text()

    def release(self) -> None:
        with open(f"{self.marker}.release", "w"):
            pass

    def finish(self, timeout: float = 120) -> int:
        """The run's exit status; if it is still running at ``timeout``, a failure showing where
        each of its threads was: SIGABRT, which pytest's faulthandler turns into every thread's
        traceback in the run's output."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
            raise AssertionError(f"the held run did not exit within {timeout:g}s; where its threads "
                                 f"were (SIGABRT):\n{self.output.read_text()[-6000:]}") from None


def leftovers(store: Store) -> list[str]:
    """Working clones and unfinished publishes in a store."""
    tmp = store.root / ".tmp"
    return [*store.owners(), *(p.name for p in tmp.iterdir() if tmp.exists())]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_stage_build_leaves_nothing(toy: Toy, sig: signal.Signals) -> None:
    held = Held(toy, "alpha")
    held.process.send_signal(sig)
    assert held.finish() == 2, held.output.read_text()[-3000:]  # pytest: interrupted
    assert traces_of(held.lab_id, toy.store.root / "work" / held.lab_id) == NOTHING
    assert toy.published() == ["bootstrap"]  # no partial alpha
    assert leftovers(toy.store) == []
    again = toy.run()
    again.assert_outcomes(passed=5)
    assert again.built == ["alpha", "beta"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_scenario_leaves_nothing(toy: Toy, sig: signal.Signals) -> None:
    held = Held(toy, "scenario")
    held.process.send_signal(sig)
    assert held.finish() == 2, held.output.read_text()[-3000:]
    assert traces_of(held.lab_id, toy.store.root / "work" / held.lab_id) == NOTHING
    assert leftovers(toy.store) == []
    again = toy.run()
    again.assert_outcomes(passed=5)
    assert again.built == []  # the stages it had built are published whole


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_a_spare_lab_boots_leaves_nothing(toy: Toy, sig: signal.Signals) -> None:
    toy.run().assert_outcomes(passed=5)  # built: the run below only boots labs
    held = Held(toy, "spare")  # the shared lab is up; the spare, for the fresh_lab test, is booting
    held.process.send_signal(sig)
    held.release()  # the boot under way ends, as a real one does
    assert held.finish() == 2, held.output.read_text()[-3000:]
    assert traces_of(held.lab_id, toy.store.root / "work" / held.lab_id) == NOTHING
    assert leftovers(toy.store) == []
    assert [r for r in lab.recorded_labs() if r.get("pid") == held.process.pid] == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_an_interrupted_rebuild_keeps_every_published_snapshot(toy: Toy, sig: signal.Signals) -> None:
    toy.run().assert_outcomes(passed=5)
    before = sorted(s.name for s in toy.store.snapshots())
    held = Held(toy, "beta", "--from-snapshot=alpha", group=True)  # rebuilding beta, held there
    os.killpg(held.process.pid, sig)  # as a terminal's Ctrl-C, a cancelled job, kill -9
    assert held.finish() == (2 if sig is not signal.SIGKILL else -sig), held.output.read_text()[-3000:]
    assert sorted(s.name for s in toy.store.snapshots()) == before
    again = toy.run("--from-snapshot=alpha")
    again.assert_outcomes(passed=5)
    assert again.built == ["beta"]
    assert sorted(s.name for s in toy.store.snapshots()) == before  # beta replaced in place
    assert leftovers(toy.store) == []
    assert traces_of(held.lab_id, toy.store.root / "work" / held.lab_id) == NOTHING


def test_the_next_run_removes_the_lab_of_a_killed_run(toy: Toy) -> None:
    held = Held(toy, "scenario")
    held.process.send_signal(signal.SIGKILL)
    held.finish()
    work = toy.store.root / "work" / held.lab_id
    left = traces_of(held.lab_id, work)
    assert left.namespaces and left.clones and left.cgroups  # kill -9 cleans nothing
    again = toy.run()
    again.assert_outcomes(passed=5)
    again.stdout.fnmatch_lines([f"*removing stale lab {held.lab_id}: its owner, pid "
                                f"{held.process.pid}, is gone*"])
    assert traces_of(held.lab_id, work) == NOTHING


def test_two_runs_at_once_build_each_stage_once(toy: Toy) -> None:
    first = Held(toy, "alpha")
    second_out = toy.pytester.path / "second.out"
    second = toy.start(output=second_out)
    retry(lambda last: "waiting for the lock on alpha, held by pid" in second_out.read_text()
          or second.poll() is not None, timeout=120, what="the second run to wait for alpha's lock")
    first.release()
    assert first.finish(300) == 0, first.output.read_text()[-3000:]
    assert second.wait(300) == 0, second_out.read_text()[-3000:]
    assert sorted(toy.log.read_text().split()) == ["alpha", "beta"]  # each built once
    outputs = {"first": first.output.read_text(), "second": second_out.read_text()}
    assert "stage alpha: reused" in outputs["second"], outputs["second"][-3000:]  # what it waited for
    for stage in ("alpha", "beta"):  # beta: whichever run takes its lock first builds it
        said = {run: [verb for verb in ("built", "reused") if f"stage {stage}: {verb}" in text]
                for run, text in outputs.items()}
        assert sorted(said.values()) == [["built"], ["reused"]], f"{stage}: {said}"


@pytest.fixture
def small_store(toy: Toy, base_bootstrap: Snapshot, tmp_path: Path) -> Iterator[Store]:
    """A 1.2 GiB btrfs holding only the bootstrap snapshot: one stage's worth of room."""
    image, mountpoint = tmp_path / "small.img", tmp_path / "small"
    proc.run(["truncate", "-s", "1200M", str(image)])
    proc.run(["mkfs.btrfs", "-q", str(image)])
    mountpoint.mkdir()
    proc.run(["mount", "-o", "loop", str(image), str(mountpoint)])
    try:
        store = Store(mountpoint)
        carried = bundle.save(toy.store, base_bootstrap, tmp_path / "bootstrap.tar.zst")
        bundle.load(store, carried)
        yield store
    finally:
        lab.sweep_stale()
        proc.run(["umount", str(mountpoint)])


def test_a_full_store_is_a_clear_error_and_keeps_its_snapshots(toy: Toy, small_store: Store) -> None:
    base = small_store.get(next(s.ref for s in small_store.snapshots()))
    assert base is not None
    before = sorted(p.name for p in (base.member("base") / "etc").iterdir())
    result = toy.run("-k", "test_alpha", store=small_store, env={"TOY_FILL": "alpha"})
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*store {small_store.root} is full (* MiB free of * MiB): the "
                                 "published snapshots are intact; free space with `harness gc`*"])
    assert [s.name.split("/")[0] for s in small_store.snapshots()] == ["bootstrap"]
    assert sorted(p.name for p in (base.member("base") / "etc").iterdir()) == before
    assert leftovers(small_store) == []


def test_pytest_as_a_user_from_elsewhere_is_one_line_and_exit_4() -> None:
    """As a user types it: `pytest CHECKOUT/scenarios`, unprivileged, from a directory of their
    own, no flag; the checkout is root's, so is its reports/ (needs root to switch user; no
    machine boots: the run stops before it writes anything)."""
    with tempfile.TemporaryDirectory() as home:
        Path(home).chmod(0o777)
        result = subprocess.run([*as_nobody(), sys.executable, "-m", "pytest", str(REPO / "scenarios")],
                                capture_output=True, text=True, cwd=home, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(REPO)})  # this checkout's harness
    said = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, "\n".join(said[-30:])
    assert len(said) == 1, "\n".join(said[-30:])
    assert said[0].startswith("ERROR: harness needs root (btrfs, network namespaces, systemd-nspawn): "
                              "run it as root, e.g. `sudo make test`")
