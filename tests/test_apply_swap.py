"""``harness apply`` of a Python stage (harness/engine/swap.py): the toy's last stage built
again and its machine swapped into a lab `harness up` started, the other machine left
running; and what an interrupt during the swap leaves (nothing)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from harness.core.wait import retry
from harness.machines import network, nspawn, records
from harness.machines.store import Store
from tests.conftest import NOTHING, traces_of
from tests.toy import Toy

pytestmark = pytest.mark.integration


def harness(toy: Toy, *args: str) -> subprocess.CompletedProcess[str]:
    """``harness ARGS`` in the toy's project, on its store, with this checkout's harness."""
    return subprocess.run([sys.executable, "-m", "harness.cli", "--store", str(toy.store.root),
                           "--pipeline", "toystages", *args], cwd=toy.pytester.path,
                          capture_output=True, text=True, timeout=900)


def record_of(lab_id: str) -> dict[str, object]:
    return dict(next(r for r in records.recorded_labs() if r["id"] == lab_id))


def read(toy: Toy, lab_id: str, machine: str, path: str) -> str:
    got = harness(toy, "shell", machine, "--lab", lab_id, "--", "cat", path)
    assert got.returncode == 0, got.stderr
    return got.stdout


def leftovers(store: Store, lab_id: str) -> list[str]:
    """What of lab ``lab_id`` is still on the host: its record, machines, namespaces, roots,
    and the working roots of any apply or build."""
    found = [str(p) for p in records.RUN_DIR.glob(f"{lab_id}*")]
    found += [u for u in nspawn.units_with_cgroups(f"harness-{lab_id}")]
    found += [n for n in network.lab_namespaces() if lab_id in n]
    found += [o for o in store.owners()]
    return found


@pytest.fixture
def toy_lab(toy: Toy) -> Iterator[str]:
    """A lab of the toy (alpha and beta) that `harness up` started; `harness down` after."""
    started = harness(toy, "up")
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-3000:]
    lab_id = started.stdout.split()[1]  # "lab ID is up, from ..."
    try:
        yield lab_id
    finally:
        harness(toy, "down", lab_id)


def test_apply_swaps_in_a_rebuilt_python_stage(toy: Toy, toy_lab: str) -> None:
    assert read(toy, toy_lab, "beta", "/etc/beta-built") == "1\n"
    alpha = dict(record_of(toy_lab)["machines"])["alpha"]  # type: ignore[call-overload]
    snapshots = toy.published()
    toy.write(alpha=1, beta=2)
    applied = harness(toy, "apply", "--lab", toy_lab)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    lines = applied.stdout.splitlines()
    assert lines[:4] == ["stage beta: module toy_beta changed",
                         "the new build of beta changed 1 path(s) in beta:",
                         "  beta: ~ etc/beta-built",
                         "swapped in beta (booted again on the new roots); alpha kept running"]
    assert read(toy, toy_lab, "beta", "/etc/beta-built") == "2\n"
    ping = harness(toy, "shell", "beta", "--lab", toy_lab, "--", "ping", "-c1", "-W5", "10.66.0.1")
    assert ping.returncode == 0, ping.stdout + ping.stderr  # the same network, alpha still there
    record = record_of(toy_lab)
    assert dict(record["machines"])["alpha"] == alpha  # type: ignore[call-overload]
    assert record["applied"] == ["beta"] and record["pid"] is None
    assert toy.published() == snapshots  # nothing published
    listed = harness(toy, "ls")
    assert f"lab {toy_lab} (kept, from" in listed.stdout and "applied: beta" in listed.stdout

    again = harness(toy, "apply", "beta", "--lab", toy_lab)
    assert again.returncode == 2
    assert again.stderr.strip() == (f"harness: error: nothing to apply: stage beta has not changed since "
                                    f"lab {toy_lab}'s snapshot of it (a Python stage is built again only "
                                    "when its inputs changed)")

    toy.write(alpha=1, beta=3)  # a second apply compares with what the first built
    third = harness(toy, "apply", "--lab", toy_lab)
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.stdout.splitlines()[0] == "stage beta: module toy_beta changed"
    assert read(toy, toy_lab, "beta", "/etc/beta-built") == "3\n"
    record = record_of(toy_lab)
    assert dict(record["machines"])["alpha"] == alpha and record["applied"] == ["beta"]  # type: ignore[call-overload]

    down = harness(toy, "down", toy_lab)
    assert down.returncode == 0, down.stderr
    assert leftovers(toy.store, toy_lab) == []


def test_apply_refuses_what_a_swap_cannot_take(toy: Toy, toy_lab: str) -> None:
    toy.write(alpha=2, beta=1)
    later = harness(toy, "apply", "--lab", toy_lab)
    assert later.returncode == 2
    assert later.stderr.strip() == (
        f"harness: error: lab {toy_lab} holds stage(s) beta built on alpha, which apply does not build "
        f"again: `harness down {toy_lab}` then `harness up` rebuilds it and boots a new lab")
    toy.write(alpha=1, beta=2)
    twice = harness(toy, "apply", "--check-idempotent", "--lab", toy_lab)
    assert twice.returncode == 2
    assert twice.stderr.strip() == (
        "harness: error: --check-idempotent runs script and playbook steps twice; stage beta has Python "
        "steps, which apply builds again instead: `harness apply beta` without it")
    assert read(toy, toy_lab, "beta", "/etc/beta-built") == "1\n"  # nothing ran


# beta, whose readiness holds in the lab TOY_HOLD_LAB names (TOY_HOLD=swap): after the swap
BETA_HELD = '''
"""Toy stage beta, with a readiness that can be held in a running lab."""
import os
from harness.model.stage import Stage
from toy_common import hold

def mark(build):
    """mark beta as built"""
    hold("beta", build.lab.id)
    build["beta"].succeed("echo {version} > /etc/beta-built")

def settle(build):
    """hold in lab TOY_HOLD_LAB"""
    if build.lab.id == os.environ.get("TOY_HOLD_LAB"):
        hold("swap", build.lab.id)

STAGE = Stage.here("beta", machines=("beta",), steps=(mark,), ready=(settle,))
'''


@pytest.fixture
def held_beta(toy: Toy) -> Iterator[str]:
    """A toy lab that `harness up` started, whose beta can hold (`BETA_HELD`)."""
    toy.pytester.makepyfile(toy_beta=BETA_HELD.replace("{version}", "1"))
    started = harness(toy, "up")
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-3000:]
    lab_id = started.stdout.split()[1]
    try:
        yield lab_id
    finally:
        harness(toy, "down", lab_id)


@pytest.mark.parametrize("place", ["beta", "swap"], ids=["during-the-build", "during-the-swap"])
def test_a_sigterm_during_apply_leaves_nothing_behind(toy: Toy, held_beta: str, place: str) -> None:
    """Held in the new build of beta, the running lab stays as it was; held once beta's new root
    is in and booted, the lab is torn down whole. Either way nothing of the build is left."""
    machines = dict(record_of(held_beta)["machines"])  # type: ignore[call-overload]
    toy.pytester.makepyfile(toy_beta=BETA_HELD.replace("{version}", "2"))
    marker = toy.pytester.path / f"hold-{place}"
    os.mkfifo(f"{marker}.release")
    out = toy.pytester.path / "apply.out"
    with open(out, "w") as output:
        applying = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "--store", str(toy.store.root), "--pipeline", "toystages",
             "apply", "--lab", held_beta], cwd=toy.pytester.path, stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, "TOY_HOLD": place, "TOY_HOLD_FILE": str(marker), "TOY_HOLD_LAB": held_beta})
    try:
        retry(lambda last: marker.exists() or applying.poll() is not None, timeout=300,
              what=f"harness apply to reach {place}")
        assert applying.poll() is None, out.read_text()[-3000:]
        holding = marker.read_text()
        applying.send_signal(signal.SIGTERM)
        assert applying.wait(120) == 130, out.read_text()[-3000:]
    finally:
        if applying.poll() is None:
            applying.kill()
            applying.wait()
    if place == "beta":  # the build's own lab is gone; the running lab is as it was
        assert holding != held_beta
        assert traces_of(holding, toy.store.root / "work" / holding) == NOTHING
        record = record_of(held_beta)
        assert record["machines"] == machines and record["pid"] is None and "applied" not in record
        assert read(toy, held_beta, "beta", "/etc/beta-built") == "1\n"
        assert toy.store.owners() == [held_beta]
    else:
        assert holding == held_beta
        assert "was torn down" in out.read_text()
        assert leftovers(toy.store, held_beta) == []
        assert traces_of(held_beta, toy.store.root / "work" / held_beta) == NOTHING
    assert [s for s in toy.published() if s == "beta"] == ["beta"]  # the one `harness up` built
