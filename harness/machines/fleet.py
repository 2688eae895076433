"""Many machines at once: a check run on each with bounded threads, every failure reported.

A room of a hundred machines fails differently from one machine: the scenario must say
*which* machines failed and how, not stop at the first. `on_each` runs a check on every
machine (``threads`` at a time), waits for all of them, and raises one error that names
each machine that failed with its own message. `wait_all` is the same with one deadline
shared by every machine, for readiness. `deadline` sizes a deadline for work that many
machines do at once on the host's few cores.

    >>> on_each(room, lambda m: m.succeed("getent hosts gw"), what="resolve gw")
    >>> wait_all(room, lambda m, left: m.wait_for_unit("console-getty.service", timeout=left),
    ...          timeout=60, what="a login prompt")
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Sequence, Sized
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from harness.core.errors import CheckFailed, HarnessError
from harness.core.log import carried
from harness.machines import nspawn
from harness.machines.commands import DEFAULT_WAIT_TIMEOUT
from harness.machines.machine import Machine
from harness.machines.spread import Spread, record

T = TypeVar("T")
DEFAULT_THREADS = 16
SHOWN = 20  # failures listed in full; the rest are named only


def on_each(machines: Sequence[Machine], check: Callable[[Machine], T], *, what: str,
            threads: int = DEFAULT_THREADS) -> dict[str, T]:
    """``check(machine)`` for every machine, ``threads`` at a time; their results by machine.

    If any failed, raises once all are done: `CheckFailed` (an assertion: the lab misbehaved)
    when every failure was an assertion, else `HarnessError`; either way, the message names
    every machine that failed and what it said, ``what`` first."""
    __tracebackhide__ = True
    results: dict[str, T] = {}
    failures: dict[str, BaseException] = {}
    if not machines:
        return results

    def one(machine: Machine) -> None:
        try:
            results[machine.name] = check(machine)
        except Exception as exc:
            failures[machine.name] = exc

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(machines)))) as pool:
        list(pool.map(carried(one), machines))
    if failures:
        raise summary(failures, len(machines), what)
    return results


def timed_each(machines: Sequence[Machine], check: Callable[[Machine], object], *, what: str,
               threads: int = DEFAULT_THREADS) -> Spread:
    """`on_each`, and how long each machine's check took (the monotonic clock, from its start
    to its end): the room as a distribution, for `Spread.check` and the report (recorded:
    a pytest run attaches its table and plot to the test, `harness.engine.distribution`).

        >>> on_each(room, ...); timed_each(room, resolve_five, what="5 lookups").check(k=4, floor=0.2)
    """
    __tracebackhide__ = True

    def timed(machine: Machine) -> float:
        began = time.monotonic()
        check(machine)
        return time.monotonic() - began

    spread = Spread(what, on_each(machines, timed, what=what, threads=threads))
    record(spread)  # the report shows it, checked or not (harness.engine.distribution)
    return spread


def wait_all(machines: Sequence[Machine], wait: Callable[[Machine, float], object], *,
             timeout: float, what: str, threads: int = 64) -> None:
    """``wait(machine, seconds_left)`` for every machine, against one deadline ``timeout``
    from now: a machine whose wait starts late gets what is left, not a deadline of its own."""
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    on_each(machines, lambda m: wait(m, max(deadline - time.monotonic(), 0.1)),
            what=f"{what} (one deadline of {timeout:g}s for all {len(machines)})", threads=threads)


def deadline(machines: Sized, cpu_each: float, base: float = DEFAULT_WAIT_TIMEOUT) -> float:
    """Seconds to allow ``machines`` that all do the same work at once, each costing about
    ``cpu_each`` CPU-seconds: one machine's ``base``, plus the CPU time of all of them over the
    cores this run may use (`cores`). A lab's machines share the host's CPUs, so a room
    booting or logging in together takes about its size times one machine's CPU; a fixed
    deadline fails a big room on a small host for no fault of the lab (a room of 125 logging
    in at once outlasted a console's fixed deadline on two cores: bench/README.md, "Rooms at
    scale").

        >>> deadline(room, 1.0, base=30)  # 100 seats on 2 cores: 30 s, and 100 CPU-s over 2
        80.0
    """
    return base + len(machines) * cpu_each / cores()


def cores(cgroup_root: Path = nspawn.CGROUPS, membership: Path = Path("/proc/self/cgroup")) -> float:
    """The CPUs this process's labs may use: its CPU affinity, capped by the ``cpu.max`` quota
    of its cgroup (``membership`` names it; a CI runner's limit), shared among pytest-xdist's
    workers (each runs a lab of its own on the same host)."""
    usable = float(len(os.sched_getaffinity(0)))
    with contextlib.suppress(OSError, ValueError, StopIteration):
        own = next(line[3:].strip() for line in membership.read_text().splitlines() if line.startswith("0::"))
        for tree in (cgroup_root, cgroup_root / "unified"):  # pure cgroup v2, or a hybrid host
            limit = tree / own.lstrip("/") / "cpu.max"
            if limit.exists():
                quota, period = limit.read_text().split()
                if quota != "max":
                    usable = min(usable, int(quota) / int(period))
                break
    return usable / max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def summary(failures: dict[str, BaseException], total: int, what: str) -> Exception:
    """One error for ``failures`` (machine -> what it raised) among ``total`` machines."""
    names = sorted(failures, key=_natural)
    lines = [f"{what}: {len(failures)} of {total} machine(s) failed: {', '.join(names)}"]
    for name in names[:SHOWN]:
        text = str(failures[name]).strip() or type(failures[name]).__name__
        first, _, rest = text.partition("\n")
        lines.append(f"- {name}: {first}" + (f"\n    {rest[-600:]}".replace("\n", "\n    ")
                                             if rest and name == names[0] else ""))
    if len(names) > SHOWN:
        lines.append(f"- and {len(names) - SHOWN} more")
    kind = CheckFailed if all(isinstance(e, AssertionError) for e in failures.values()) else HarnessError
    return kind("\n".join(lines))


def _natural(name: str) -> tuple[object, ...]:
    """Sort key putting pas-r11p2 before pas-r11p10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))
