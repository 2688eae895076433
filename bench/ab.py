"""Two versions of the harness, side by side, on the same `harness init` project: does a change
cost the user anything on the commands they type most?

Each tree (a checkout of the harness, e.g. ``git archive OLD | tar -x -C /tmp/old``) runs a
project of its own, made by its own ``harness init``, on the same store; the project is first
run once (its lab built). Then, ``--reps`` rounds, the order swapped every round so that a
change of load touches both: ``harness up``, ``harness down`` of that lab, ``pytest``, each
timed as a whole process, as typed. Run alone, as root:

    python -m bench.ab /tmp/old /tmp/new --reps 12

Prints each round and the medians (min, max); nothing here imports the harness itself (each
command runs with ``PYTHONPATH`` set to its tree), so the two versions may differ in anything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ("up", "down", "pytest")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="the first harness tree")
    parser.add_argument("new", type=Path, help="the second harness tree")
    parser.add_argument("--reps", type=int, default=12)
    parser.add_argument("--projects", type=Path, default=Path("/tmp/bench-ab"),
                        help="where the two projects are made (kept: a second run reuses them)")
    args = parser.parse_args(argv)
    sides = {"old": args.old.resolve(), "new": args.new.resolve()}

    def run(side: str, *words: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        project = args.projects / side / "demo"
        env = {**os.environ, "PYTHONPATH": f"{sides[side]}:{project}"}
        began = time.monotonic()
        done = subprocess.run([sys.executable, *words], cwd=project, env=env, capture_output=True,
                              text=True, timeout=900)
        if done.returncode != 0:
            said = done.stdout[-2000:] + done.stderr[-2000:]
            raise SystemExit(f"bench.ab: {side}: {' '.join(words)} failed:\n{said}")
        return time.monotonic() - began, done

    for side, tree in sides.items():
        project = args.projects / side / "demo"
        if not project.exists():
            project.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "harness.cli", "init", str(project)], check=True,
                           env={**os.environ, "PYTHONPATH": str(tree)}, cwd=project.parent)
        seconds, _ = run(side, "-m", "pytest", "-q", "-p", "no:cacheprovider")
        print(f"{side}: first run (its lab built when missing) {seconds:.1f} s", flush=True)
    times: dict[str, dict[str, list[float]]] = {s: {c: [] for c in COMMANDS} for s in sides}
    for rep in range(args.reps):
        for side in (list(sides) if rep % 2 == 0 else list(sides)[::-1]):
            seconds, up = run(side, "-m", "harness.cli", "up")
            times[side]["up"].append(seconds)
            found = re.search(r"harness down ([\w-]+)", up.stdout + up.stderr)
            if found is None:
                raise SystemExit(f"bench.ab: {side}: `harness up` named no lab:\n{up.stdout}{up.stderr}")
            times[side]["down"].append(run(side, "-m", "harness.cli", "down", found.group(1))[0])
            times[side]["pytest"].append(run(side, "-m", "pytest", "-q", "-p", "no:cacheprovider")[0])
        last = {side: " ".join(f"{c} {times[side][c][-1]:.2f}" for c in COMMANDS) for side in sides}
        print(f"round {rep + 1}: " + "; ".join(f"{side} {said}" for side, said in last.items()), flush=True)
    medians = {side: {c: [round(statistics.median(v), 2), round(min(v), 2), round(max(v), 2)]
                      for c, v in by.items()} for side, by in times.items()}
    print("median, min, max:", json.dumps(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
