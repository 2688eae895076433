"""Where a mutation run's time goes: the last whole `harness mutate`, read from what it left.

Nothing is run: each mutant's pytest process left its log (``reports/mutants/<name>/pytest.log``)
and its tests' timings (``timings.json``), and ``reports/mutants.json`` its wall time. Per
mutant, the time is split into:

- build: stages built for it (a mutant of a stage's build: "stage X: built ... in Ns");
- lab up: its lab cloned, booted and ready, the readiness hooks passed ("lab ID: N machine(s)
  up ... in Ns"), less the mutant's own apply;
- apply: a mutant of a booted lab applied ("mutant NAME: apply ... done in Ns");
- other set-up: the rest of the tests' set-up (fixtures, a second lab);
- tests: the tests' calls; teardown: their teardowns (the lab's included);
- process: the rest of the process, outside any test (interpreter, plugins, collection of the
  suite, the stages' keys, the session's end).

Summed over the mutants and divided by the run's wall time, it says what the run's workers
spent their time on. ``python -m bench.mutants [--reports DIR]``; prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILT = re.compile(r"stage \S+: built \S+ in ([\d.]+)s")
UP = re.compile(r"lab \S+: \d+ machine\(s\) up from \S+ in ([\d.]+)(m?s)")
APPLY = re.compile(r"mutant \S+: apply .* done in ([\d.]+)s")
PARTS = ("build", "lab up", "apply", "other set-up", "tests", "teardown", "process")


def seconds(value: str, unit: str) -> float:
    return float(value) / (1000 if unit == "ms" else 1)


def split(wall: float, log: str, timings: dict[str, dict[str, float]]) -> dict[str, float]:
    """One mutant's ``wall`` seconds, split into `PARTS` from its pytest ``log`` and ``timings``."""
    build = sum(float(m) for m in BUILT.findall(log))
    apply = sum(float(m) for m in APPLY.findall(log))
    up = sum(seconds(*m) for m in UP.findall(log)) - apply
    setup = sum(t["setup"] for t in timings.values())
    parts = {"build": build, "lab up": up, "apply": apply,
             "other set-up": max(setup - build - up - apply, 0.0),
             "tests": sum(t["call"] for t in timings.values()),
             "teardown": sum(t["teardown"] for t in timings.values())}
    parts["process"] = max(wall - sum(parts.values()), 0.0)
    return parts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", default=str(REPO / "reports"), help="where `harness mutate` wrote")
    args = parser.parse_args(argv)
    reports = Path(args.reports)
    run = json.loads((reports / "mutants.json").read_text())
    rows = []
    for mutant in run["mutants"]:
        here = reports / "mutants" / mutant["mutant"]
        if not (here / "timings.json").exists():
            continue
        rows.append(split(float(mutant["seconds"]), (here / "pytest.log").read_text(errors="replace"),
                          json.loads((here / "timings.json").read_text())))
    total = {p: sum(r[p] for r in rows) for p in PARTS}
    busy = sum(total.values())
    print(f"{len(rows)} mutants, run wall time {run['seconds']:.0f} s, their processes' time summed "
          f"{busy:.0f} s ({busy / run['seconds']:.2f} workers busy on average)\n")
    print("| part | summed | share | median per mutant |\n| --- | --- | --- | --- |")
    for part in PARTS:
        print(f"| {part} | {total[part]:.0f} s | {total[part] / busy:.0%} | "
              f"{statistics.median(r[part] for r in rows):.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
