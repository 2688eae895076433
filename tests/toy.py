"""The toy project the pipeline tests run: the real bootstrap stage plus ``alpha`` and ``beta``.

One module each, so that editing a module changes exactly that stage's key. Every step
appends the stage's name to a host-side build log: the log says which stages a run
built. Each test gets a scratch store of its own, seeded with the real bootstrap snapshot.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from harness.machines import records
from harness.machines.store import Snapshot, Store

REPO = Path(__file__).resolve().parent.parent

COMMON = '''
"""What the toy stages share: the build log, and where a test can hold a run (TOY_HOLD names
the place, TOY_HOLD_FILE the marker)."""
import os
import select


def record(stage):
    """Append ``stage`` to the host-side build log: the log says what a run built."""
    with open(os.environ["TOY_LOG"], "a") as log:
        log.write(stage + "\\n")


def hold(place, lab_id):
    """At ``place``, write the lab's id to the marker, then wait until the test has opened and
    closed the FIFO <marker>.release (or the run is interrupted).

    Each wait is a poll of a tenth of a second, not one blocking open: a signal the kernel
    hands to another thread (a console's reader) runs Python's handler only once the main
    thread is back in Python, and an open() of a FIFO never came back."""
    if os.environ.get("TOY_HOLD") != place:
        return
    marker = os.environ["TOY_HOLD_FILE"]
    with open(marker + ".part", "w") as out:
        out.write(lab_id)
    os.rename(marker + ".part", marker)
    fd = os.open(marker + ".release", os.O_RDONLY | os.O_NONBLOCK)  # no writer needed to open
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)  # HUP: the test's writer came and went
        while not poller.poll(100):
            pass
    finally:
        os.close(fd)
'''

ALPHA = '''
"""Toy stage alpha: one machine that records it was built."""
import os
from harness.model.stage import Stage
from toy_common import hold, record

def mark(build):
    """mark alpha as built"""
    hold("alpha", build.lab.id)
    if os.environ.get("TOY_FILL") == "alpha":
        build["alpha"].succeed("dd if=/dev/zero of=/fill bs=1M count=4096 status=none")
    build["alpha"].succeed("echo {version} > /etc/alpha-built")
    record("alpha")

STAGE = Stage.here("alpha", machines=("alpha",), steps=(mark,))
'''

BETA = '''
"""Toy stage beta: a second machine that reaches alpha over the lab network."""
import os
from harness.model.stage import Stage
from toy_common import hold, record

def mark(build):
    """reach alpha and mark beta as built"""
    hold("beta", build.lab.id)
    if os.environ.get("TOY_FAIL") == "beta":
        build["beta"].succeed("logger -t toy 'beta gives up: no frobnicator'; exit 3")
    build["beta"].succeed("ping -c1 -W5 10.66.0.1 && echo {version} > /etc/beta-built")
    record("beta")

def spare(build):
    """hold a spare lab's boot (TOY_HOLD=spare)"""
    import threading
    if threading.current_thread().name == "harness-spares":
        hold("spare", build.lab.id)

STAGE = Stage.here("beta", machines=("beta",), steps=(mark,), ready=(spare,))
'''

PIPELINE = '''
from harness.core.links import Interface
from harness.model.pipeline import Pipeline
from harness.engine.build.debian import base_stage
import toy_alpha, toy_beta

PIPELINE = Pipeline(
    [base_stage(), toy_alpha.STAGE, toy_beta.STAGE],
    {"alpha": [Interface("alpha", "host0", "lan", "02:00:00:00:66:01", ("10.66.0.1/24",))],
     "beta": [Interface("beta", "host0", "lan", "02:00:00:00:66:02", ("10.66.0.2/24",))]},
)
'''

SCENARIOS = '''
import pytest
from toy_common import hold

def test_alpha(alpha, lab):
    hold("scenario", lab.id)
    assert alpha.succeed("cat /etc/alpha-built").strip()

def test_beta_sees_alpha(beta, alpha):
    assert beta.succeed("cat /etc/beta-built").strip()
    beta.succeed("ping -c1 -W5 10.66.0.1")

def test_beta_again(beta):
    assert beta.succeed("hostname").strip() == "beta"

@pytest.mark.fresh_lab
def test_private_lab_is_private(beta, lab):
    beta.succeed("touch /etc/scribbled")
    assert lab["beta"] is beta

def test_shared_lab_was_not_scribbled_on(beta):
    beta.fail("test -e /etc/scribbled")
'''


class Toy:
    """A toy project in pytester's directory, run against a scratch store."""

    def __init__(self, pytester: pytest.Pytester, store: Store) -> None:
        self.pytester = pytester
        self.store = store
        self.log = pytester.path / "build.log"
        self.started: list[subprocess.Popen[str]] = []
        self.write(alpha=1, beta=1)
        pytester.makepyfile(toystages=PIPELINE, test_toy=SCENARIOS, toy_common=COMMON)

    def write(self, *, alpha: int, beta: int) -> None:
        """(Re)write the stage modules; a new version changes the module's source, so its key."""
        self.pytester.makepyfile(toy_alpha=ALPHA.replace("{version}", str(alpha)),
                                 toy_beta=BETA.replace("{version}", str(beta)))

    def run(self, *args: str, store: Store | None = None, env: Mapping[str, str] | None = None,
            cache: bool = False) -> pytest.RunResult:
        """Run the toy scenarios (on ``store``, default the toy's, with ``env`` added; with
        ``cache``, pytest's cache on: --lf, --ff); return the result with ``built``: the stages
        built by this run."""
        before = self.log.read_text().split() if self.log.exists() else []
        with pytest.MonkeyPatch.context() as patch:
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            result = self.pytester.runpytest_subprocess(
                "--pipeline=toystages", f"--store={(store or self.store).root}",
                *([] if cache else ["-p", "no:cacheprovider"]), *args, timeout=600)
        after = self.log.read_text().split() if self.log.exists() else []
        result.built = after[len(before):]  # type: ignore[attr-defined]
        return result

    def start(self, *args: str, env: Mapping[str, str] | None = None,
              output: Path | None = None, group: bool = False) -> subprocess.Popen[str]:
        """Start the toy scenarios in the background (``env`` added to the environment), output
        to ``output`` (unbuffered: a test can watch it); with ``group``, in a process group of
        its own, as a terminal starts a command (signal it with ``os.killpg``)."""
        out = open(output or self.pytester.path / "run.out", "w")  # noqa: SIM115 (the run owns it)
        process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--pipeline=toystages", f"--store={self.store.root}",
             "-p", "no:cacheprovider", "-p", "no:randomly", *args],
            cwd=self.pytester.path, stdout=out, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, start_new_session=group)
        self.started.append(process)
        return process

    def kill_left_running(self) -> None:
        """End what `start` started and a failed test left running (by its pid): a run still
        holding its lab must not go on beside the next test's. SIGTERM first (the run tears its
        lab down); one that does not end is killed and its lab swept, as the next run would."""
        left = [p for p in self.started if p.poll() is None]
        for process in left:
            process.terminate()
        for process in left:
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)
                records.sweep_stale()

    def published(self) -> list[str]:
        return sorted(s.name.split("/")[0] for s in self.store.snapshots())


def scratch_store(main: Store) -> Store:
    """An empty store in a fresh directory of ``main``'s filesystem (a second machine, say)."""
    root = main.root / "scratch" / f"{os.getpid()}-{secrets.token_hex(3)}"
    root.mkdir(parents=True)
    return Store(root)


def drop_store(store: Store) -> None:
    """Delete a scratch store and everything in it."""
    for snap in store.snapshots():
        store.remove(snap.ref)
    for owner in store.owners():
        store.release(owner)
    shutil.rmtree(store.root)


@pytest.fixture
def seeded_store(harness_store: Store, base_bootstrap: Snapshot) -> Iterator[Store]:
    """A scratch store holding the plain bootstrap snapshot (the base every test pipeline shares)."""
    store = scratch_store(harness_store)
    # built by another project, as a shared base is: a snapshot of no project is anyone's own,
    # and `--rebuild` in the test's project would build it again
    meta = {**base_bootstrap.meta, "project": base_bootstrap.meta.get("project") or str(REPO)}
    store.publish(base_bootstrap.ref, {"base": base_bootstrap.member("base")}, meta)
    yield store
    drop_store(store)


@pytest.fixture
def toy(pytester: pytest.Pytester, seeded_store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Toy]:
    """A toy project in pytester's directory, with a scratch store seeded with bootstrap."""
    # The toy's modules, then this checkout's harness (not the one the venv installed: a worktree's)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pytester.path), str(REPO)]))
    monkeypatch.setenv("TOY_LOG", str(pytester.path / "build.log"))
    monkeypatch.delenv("TOY_FAIL", raising=False)
    toy = Toy(pytester, seeded_store)
    yield toy
    toy.kill_left_running()
