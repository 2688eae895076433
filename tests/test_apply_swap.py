"""``harness apply`` of a Python stage (harness/engine/swap.py): the toy's last stage built
again and its machine swapped into a lab `harness up` started, the other machine left
running; and what an interrupt during the swap leaves (nothing)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from harness.machines import network, nspawn, records
from harness.machines.store import Store
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

    down = harness(toy, "down", toy_lab)
    assert down.returncode == 0, down.stderr
    assert leftovers(toy.store, toy_lab) == []
