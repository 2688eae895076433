"""Where a session's time goes, and the order that spends it best.

`Timings` (a plugin of the process that reports: the only one, or xdist's controller)
records each test's set-up, call and teardown and writes ``timings.md`` into the reports
directory, slowest first: the table to read before cutting a suite's time (and
``timings.json``, which the bench reads). It keeps each test's total in pytest's cache,
from which `order` arranges the next run.

`order` is pure: tests on the shared lab longest first, so that under xdist (which deals
tests out one by one, then hands more to whichever worker is free) the long ones do not
start last and leave one worker running alone; and the tests that take a private lab
spread evenly among them, so that a spare lab (`harness.engine.spares`) has time to boot
between two of them instead of all of them waiting at the start of the run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

CACHE_KEY = "harness/durations"
PHASES = ("setup", "call", "teardown")
T = TypeVar("T")


def order(tests: Sequence[T], *, name: Callable[[T], str], private: Callable[[T], bool],
          durations: Mapping[str, float]) -> list[T]:
    """``tests`` arranged for the run: shared-lab tests by known duration, longest first
    (unknown ones first, as they may be long; ties keep their order), with the private-lab
    tests, longest first too, spread evenly among them, none at the very start.

    >>> order(["a", "b", "c", "F"], name=str, private=str.isupper, durations={"b": 3, "c": 1})
    ['a', 'b', 'F', 'c']
    """
    def longest_first(group: list[T]) -> list[T]:
        return sorted(group, key=lambda t: -durations.get(name(t), math.inf))

    shared = longest_first([t for t in tests if not private(t)])
    fresh = longest_first([t for t in tests if private(t)])
    arranged: list[T] = []
    step = len(shared) / (len(fresh) + 1)
    for index, test in enumerate(fresh):  # the k-th after (k+1) steps of shared tests
        until = round((index + 1) * step)
        arranged += shared[len(arranged) - index:until]
        arranged.append(test)
    arranged += shared[len(arranged) - len(fresh):]
    return arranged


class Timings:
    """Records every test's phases; at the end, writes the table and remembers the totals."""

    def __init__(self, config: pytest.Config, reports: Path | None) -> None:
        self.config = config
        self.reports = reports
        self.phases: dict[str, dict[str, float]] = {}
        self.private: dict[str, bool] = {}  # whether each test took a private lab

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.phases.setdefault(report.nodeid, {})[report.when] = report.duration
        if report.when == "setup":  # under xdist, the controller has the report, not the item
            self.private[report.nodeid] = "fresh_lab" in report.keywords

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.phases:
            return
        cache = getattr(self.config, "cache", None)
        if cache is not None:
            known = dict(cache.get(CACHE_KEY, {}))
            known.update({n: round(sum(p.values()), 3) for n, p in self.phases.items()})
            cache.set(CACHE_KEY, known)
        if self.reports is not None:
            self.reports.mkdir(parents=True, exist_ok=True)
            (self.reports / "timings.md").write_text(table(self.phases))
            private = {n for n, item in self.private.items() if item}
            (self.reports / "timings.json").write_text(json.dumps(
                {n: {**p, "fresh_lab": n in private} for n, p in self.phases.items()}, indent=1) + "\n")


def table(phases: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown: the totals per phase, then every test, slowest first."""
    totals = {when: sum(p.get(when, 0.0) for p in phases.values()) for when in PHASES}
    rows = sorted(phases.items(), key=lambda item: -sum(item[1].values()))
    lines = ["# Where the time went", "",
             f"{len(phases)} tests; seconds summed over every test (across workers, so more "
             "than the wall clock under xdist). Set-up includes booting a lab: the shared one, "
             "for the first test on it, or a private one not ready in time.", "",
             "| | " + " | ".join(PHASES) + " | total |", "| --- | ---: | ---: | ---: | ---: |",
             "| **all tests** | " + " | ".join(f"{totals[w]:.2f}" for w in PHASES)
             + f" | {sum(totals.values()):.2f} |", "", "| test | " + " | ".join(PHASES) + " | total |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for nodeid, phase in rows:
        lines.append(f"| `{nodeid}` | " + " | ".join(f"{phase.get(w, 0.0):.2f}" for w in PHASES)
                     + f" | {sum(phase.values()):.2f} |")
    return "\n".join(lines) + "\n"
