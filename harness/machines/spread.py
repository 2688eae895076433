"""A room as a distribution: how long each machine took for one check, and who stands out.

A room of a hundred seats that all pass can still hide a bad switch port or an overloaded
server: one seat ten times slower than its neighbours. `Spread` holds each machine's time
for a check (`harness.machines.fleet.timed_each` measures them), reports the room's p50, p95 and
maximum, and `check` fails naming every machine slower than ``k`` times the median of the
*others* (the median of the rest, so that in a room of two the slow seat is compared with
its neighbour, not with a median it pulls up itself), and slower than ``floor`` seconds
(a few milliseconds more on a busy host is noise, not a bad port).

>>> Spread("lookups", {"a": 0.05, "b": 0.06, "c": 0.9}).outliers(k=4, floor=0.2)
[('c', 0.9)]
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from harness.core.errors import CheckFailed, UsageError

# Called with each spread measured (k None: `harness.machines.fleet.timed_each`) and checked
# (`Spread.check`: its k and floor); the pytest plugin's puts them in the test's report.
Recorder = Callable[["Spread", "float | None", float], None]
_recorders: list[Recorder] = []


def add_recorder(recorder: Recorder) -> Callable[[], None]:
    """Call ``recorder(spread, k, floor)`` for every future spread measured or checked;
    returns the remover."""
    _recorders.append(recorder)
    return lambda: _recorders.remove(recorder)


def record(spread: Spread, k: float | None = None, floor: float = 0.0) -> None:
    """Tell the recorders of ``spread`` (and of the k and floor it is checked with)."""
    for recorder in list(_recorders):
        recorder(spread, k, floor)


def percentile(values: list[float], share: float) -> float:
    """The ``share`` (0..1) percentile of ``values``, nearest rank (a value that was measured)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _natural(name: str) -> tuple[object, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


@dataclass(frozen=True)
class Spread:
    """Each machine's time for ``what``, in seconds."""

    what: str
    times: dict[str, float]

    @property
    def p50(self) -> float:
        """The median."""
        return percentile(list(self.times.values()), 0.5)

    @property
    def p95(self) -> float:
        """The 95th percentile (nearest rank)."""
        return percentile(list(self.times.values()), 0.95)

    @property
    def max(self) -> float:
        """The slowest machine's time."""
        return max(self.times.values())

    def outliers(self, k: float, floor: float = 0.0) -> list[tuple[str, float]]:
        """Machines slower than ``k`` times the median of the others and than ``floor``
        seconds, slowest first."""
        if k <= 1:
            raise UsageError(f"spread: k is how many times the median a machine may take: "
                             f"more than 1, not {k}")
        found = []
        for name, took in self.times.items():
            others = [t for n, t in self.times.items() if n != name]
            if others and took > floor and took > k * statistics.median(others):
                found.append((name, took))
        return sorted(found, key=lambda item: -item[1])

    def table(self) -> str:
        """The figures and every machine's time, slowest first, as text for a report."""
        lines = [f"{self.what}: {len(self.times)} machine(s), p50 {self.p50:.3f} s, p95 {self.p95:.3f} s, "
                 f"max {self.max:.3f} s", ""]
        for name in sorted(self.times, key=lambda n: (-self.times[n], _natural(n))):
            lines.append(f"{name:24} {self.times[name]:8.3f} s")
        return "\n".join(lines) + "\n"

    def check(self, k: float, floor: float = 0.0) -> None:
        """Fail (`CheckFailed`) naming each outlier, with the room's p50/p95/max."""
        __tracebackhide__ = True
        slow = self.outliers(k, floor)
        record(self, k, floor)
        if slow:
            named = ", ".join(f"{name} ({took:.3f} s)" for name, took in slow)
            raise CheckFailed(f"{self.what}: {len(slow)} of {len(self.times)} machine(s) took more than "
                              f"{k:g} times the others' median: {named}; p50 {self.p50:.3f} s, "
                              f"p95 {self.p95:.3f} s, max {self.max:.3f} s")
