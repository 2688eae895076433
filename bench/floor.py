"""The physical floor of the warm paths on this host, and the figures measured against it.

- clone: every machine root of the last stage cloned from its snapshot (btrfs), then dropped;
- bare boot: one machine of the base image, no network, from clone to ``running``: the least
  a machine costs;
- lab boot CPU: the CPU time the reference lab's machines spend from start to all-ready
  (their cgroups' ``cpu.stat``), and that time over the host's cores: a lab of N machines
  cannot resume faster than its machines' boot work spread over every core;
- up/down: ``harness up`` then ``harness down``, back to back, as a user types them.
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import Lab
from harness.core.names import WorkOwner
from harness.engine.build.builder import Builder
from harness.machines import nspawn
from harness.machines.lab import MachineSetup
from harness.machines.store import Snapshot, Store
from harness.model.stage import BASE_MEMBER


def clone(store: Store, snapshot: Snapshot, reps: int) -> list[float]:
    """Seconds to clone every member of ``snapshot`` (and not the deletion after)."""
    times = []
    for _ in range(reps):
        owner = str(WorkOwner("bench", "floor", os.getpid(), secrets.token_hex(2)))
        began = time.monotonic()
        for member in snapshot.members:
            store.clone(snapshot.member(member), store.work_path(owner, member))
        times.append(time.monotonic() - began)
        store.release(owner)
    return times


def bare_boot(store: Store, base: Snapshot, reps: int) -> list[float]:
    """Seconds from nothing to one base machine ``running`` (clone, boot, no network)."""
    times = []
    for _ in range(reps):
        began = time.monotonic()
        with Lab(store, [MachineSetup("bare", base.member(BASE_MEMBER))]):
            times.append(time.monotonic() - began)
    return times


def machine_cpu(lab: Lab) -> float:
    """CPU seconds the machines of a running ``lab`` have used so far, from their cgroups (the
    unified hierarchy's, which counts CPU)."""
    total = 0
    for machine in lab.machines.values():
        stats = [p / "cpu.stat" for p in nspawn.cgroups(machine.spec.unit) if (p / "cpu.stat").exists()]
        for line in stats[0].read_text().splitlines() if stats else []:
            if line.startswith("usage_usec "):
                total += int(line.split()[1])
    return total / 1e6


def lab_boot_cpu(builder: Builder, snapshot: Snapshot, reps: int) -> list[float]:
    """CPU seconds of the lab's machines from start to all-ready, per resume."""
    used = []
    for _ in range(reps):
        with builder.lab(snapshot) as lab:
            used.append(machine_cpu(lab))
    return used


def up_down(store: Store, reps: int, repo: Path) -> list[float]:
    """Seconds of `harness up` followed at once by `harness down` of the same lab."""
    cli = [sys.executable, "-m", "harness.cli", "--store", str(store.root)]
    times = []
    for _ in range(reps):
        began = time.monotonic()
        up = subprocess.run([*cli, "up"], cwd=repo, capture_output=True, text=True, check=True)
        lab_id = up.stdout.split()[1]  # "lab <id> is up, from ..."
        subprocess.run([*cli, "down", lab_id], cwd=repo, capture_output=True, check=True)
        times.append(time.monotonic() - began)
    return times


def private_lab_overhead(timings: dict[str, Any]) -> dict[str, float]:
    """From a suite's ``timings.json``: the median set-up plus teardown of the tests that took
    a private lab, of those on the shared lab, and their difference (what a private lab costs
    a test in a real run, spare labs included)."""
    def median_of(private: bool) -> float:
        # a median: the few shared-lab tests that paid for the shared lab's boot do not move it
        return statistics.median([t.get("setup", 0.0) + t.get("teardown", 0.0)
                                  for t in timings.values() if t.get("fresh_lab") is private] or [0.0])

    fresh, shared = median_of(True), median_of(False)
    return {"fresh test": fresh, "shared test": shared, "per scenario": fresh - shared}
