"""A pool of warm labs (harness.engine.pool, `harness up --pool N`) on the toy project: a run
adopts its lab and a replacement boots behind it; a stale key is destroyed, never adopted; an
owner killed is swept with its labs; `harness down pool-PID` leaves nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping

import pytest

from harness.core import proc
from harness.core.wait import retry
from harness.engine import pool, warm
from harness.machines import records
from tests.conftest import NOTHING, traces_of
from tests.toy import Toy

ADOPTED = re.compile(r"lab (\w+): \d+ machine\(s\) adopted, warm")


def harness(toy: Toy, *words: str) -> subprocess.CompletedProcess[str]:
    """``harness --store <toy's> --pipeline toystages WORDS`` in the toy's directory."""
    return subprocess.run([sys.executable, "-m", "harness.cli", "--store", str(toy.store.root),
                           "--pipeline", "toystages", *words], cwd=toy.pytester.path, capture_output=True,
                          text=True, timeout=600, check=False)


def ready(pool_id: str) -> list[str]:
    """The ids of the labs pool ``pool_id`` has warm and adoptable."""
    return [str(r["id"]) for r in pool.labs_of(pool_id) if records.stale(r) is None]


def wait_ready(pool_id: str, but: set[str] | None = None) -> str:
    """Wait for pool ``pool_id`` to have a lab warm (other than ``but``); its id."""
    found: list[str] = []

    def one(last_try: bool) -> bool:
        found[:] = [i for i in ready(pool_id) if i not in (but or set())]
        return bool(found)

    retry(one, 300, f"a lab of {pool_id} to be warm")
    return found[0]


@pytest.fixture
def started(toy: Toy) -> Iterator[Mapping[str, object]]:
    """A pool of one lab of the toy's last stage (built first), started with `harness up
    --pool 1`; its record. Ended on the way out, whatever the test left."""
    up = harness(toy, "up", "--pool", "1")
    assert up.returncode == 0, up.stderr
    [held] = [p for p in records.recorded_pools() if p["store"] == str(toy.store.root)]
    assert f"pool {held['id']} is up" in up.stdout and f"harness down {held['id']}" in up.stdout
    try:
        yield held
    finally:
        pool.stop(str(held["id"]))


def gone(toy: Toy, *lab_ids: str) -> None:
    for lab_id in lab_ids:
        assert traces_of(lab_id, toy.store.root / "work" / lab_id) == NOTHING
        assert not (records.RUN_DIR / f"{lab_id}.json").exists()


@pytest.mark.integration
def test_a_run_adopts_a_pool_lab_and_a_replacement_boots_behind_it(toy: Toy,
                                                                   started: Mapping[str, object]) -> None:
    pool_id = str(started["id"])
    first = wait_ready(pool_id)
    listed = harness(toy, "ls").stdout
    lines = listed.splitlines()
    held = f"pool {pool_id} (pid {started['pid']}, of {started['snapshot']})"
    assert f"{held}: 1 ready, 0 booting, of 1" in lines
    [lab] = [line for line in lines if line.startswith(f"lab {first} ")]
    assert lab.startswith(f"lab {first} (warm, adoptable for ") and f", of {pool_id}, from " in lab, listed

    run = toy.run("-k", "test_beta_again")  # no --warm-labs: the pool is the user's choice
    run.assert_outcomes(passed=1)
    assert ADOPTED.findall(run.stdout.str() + run.stderr.str()) == [first]
    gone(toy, first)  # a test touched it: never handed on
    second = wait_ready(pool_id, but={first})

    down = harness(toy, "down", pool_id)
    assert down.returncode == 0 and f"pool {pool_id} is down" in down.stdout, down.stderr
    gone(toy, second)
    assert pool.find(pool_id) is None and proc.start_time(int(str(started["pid"]))) is None  # or a zombie
    assert warm.warming(toy.store, str(toy.pytester.path)) == []


@pytest.mark.integration
def test_a_pool_lab_of_a_stale_key_is_destroyed_not_adopted(toy: Toy, started: Mapping[str, object]) -> None:
    pool_id = str(started["id"])
    old = wait_ready(pool_id)
    owner = int(str(started["pid"]))
    # The owner is held (stopped, not gone: its labs are not stale) while the run looks, or it
    # could follow the stage first, and the run would never meet the stale lab it must refuse.
    os.kill(owner, signal.SIGSTOP)
    try:
        toy.write(alpha=1, beta=2)  # beta's key changes: the pool's lab is of a stale key
        run = toy.run("-k", "test_beta_again")
    finally:
        os.kill(owner, signal.SIGCONT)
    run.assert_outcomes(passed=1)
    said = run.stdout.str() + run.stderr.str()
    assert ADOPTED.findall(said) == [] and f"removing warm lab {old}: it was booted from key" in said, said
    gone(toy, old)
    new = wait_ready(pool_id, but={old})  # the pool follows its stage: the new key's
    [record] = [r for r in pool.labs_of(pool_id) if r["id"] == new]
    assert dict(record["warm"])["key"] != str(started["snapshot"]).split("/")[1]  # type: ignore[call-overload]
    assert json.loads((records.RUN_DIR / f"{pool_id}.pool").read_text())["snapshot"] != started["snapshot"]

    destroyed = harness(toy, "destroy")  # this project's: its pool, and the pool's lab with it
    assert destroyed.returncode == 0 and f"ended 1 pool(s): {pool_id}" in destroyed.stdout, destroyed.stderr
    gone(toy, new)
    assert pool.find(pool_id) is None


@pytest.mark.integration
def test_a_pool_whose_owner_was_killed_is_swept_with_its_labs(toy: Toy, started: Mapping[str, object],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pool_id, owner = str(started["id"]), int(str(started["pid"]))
    for name in ("recorded_labs", "recorded_pools"):  # the sweep sees the toy's only: others are other runs'
        everything = getattr(records, name)
        monkeypatch.setattr(records, name, lambda every=everything: [
            r for r in every() if r.get("store") == str(toy.store.root)])
    lab_id = wait_ready(pool_id)
    os.kill(owner, signal.SIGKILL)
    assert proc.wait_for_exit(owner, 10)
    assert records.stale(next(r for r in records.recorded_labs() if r["id"] == lab_id)) == \
        f"its pool's owner, pid {owner}, is gone"
    swept = records.sweep_stale()
    assert pool_id in swept and lab_id in swept
    gone(toy, lab_id)
    assert pool.find(pool_id) is None
    assert pool_id not in harness(toy, "ls").stdout
