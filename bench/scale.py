"""Rooms at scale: the reference lab with N contestants, measured as a curve.

``python -m bench.scale --sizes 10,50,100,250`` (or ``make bench BENCH_ARGS=--scale``) runs,
for each N, in a process of its own with ``--room-size=N/2`` (the lab has two rooms):

- build: the pas stage's build (one machine cloned from the rfs tree per seat, booted,
  each seat's lease and login prompt awaited), from the snapshot's own record when cached;
- resume: a lab booted from the pas snapshot until every machine is ready (every seat's
  DHCP address and login prompt), ``--reps`` times; and its teardown;
- memory: per seat, the proportional set size (PSS) of its processes, while the lab is up;
- scenarios: ``pytest scenarios/test_rooms.py`` at that size (every room check, and a boot
  storm of every seat at once in a lab of its own).

Writes ``reports/bench/scale.json``, each size's pytest output (``scale-N.log``) and the
plot ``bench/scale.svg``, and prints a table.
Snapshots of each size stay in the store (each size has keys of its own): the next run
reuses them; ``harness gc`` removes those of sizes no longer current.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SIZES = (10, 50, 100, 250)
ROOMS = 2  # rooms in the reference lab: N contestants are ROOMS rooms of N / ROOMS


def progress(text: str) -> None:
    print(f"[bench scale] {text}", file=sys.stderr, flush=True)


def pss_of_machine(unit: str) -> int:
    """Bytes of memory the processes of machine ``unit`` use, shared pages divided among users."""
    from harness.machines import nspawn

    total = 0
    for procs in (p for cgroup in nspawn.cgroups(unit)[:1] for p in cgroup.rglob("cgroup.procs")):
        try:
            pids = procs.read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            total += sum(int(line.split()[1]) * 1024 for line in text.splitlines() if line.startswith("Pss:"))
    return total


def one_size(contestants: int, reps: int, scenarios: bool = True) -> dict[str, Any]:
    """Every figure for ``contestants`` seats, measured in this process (its room size is set
    before the pipeline is imported); the room scenarios only with ``scenarios``."""
    os.environ["HARNESS_ROOM_SIZE"] = str(contestants // ROOMS)
    sys.path.insert(0, str(REPO))
    import logging

    from harness.core.names import LabName
    from harness.engine.build.builder import Builder
    from harness.machines.store import open_store
    from stages import PIPELINE
    from stages.inventory import INVENTORY

    logging.getLogger("harness").setLevel(logging.WARNING)
    store = open_store(os.environ.get("HARNESS_STORE"))
    builder = Builder(store, PIPELINE)
    progress(f"{contestants} contestants: build (or reuse) every stage")
    snapshot = builder.ensure("pas")
    name = PIPELINE.ref("pas")
    built = builder.durations.get("pas") or float(snapshot.meta.get("duration") or 0)
    seats = INVENTORY.seats()
    ready, down, memory = [], [], []
    for rep in range(reps):
        progress(f"{contestants} contestants: resume {rep + 1}/{reps} from {name}")
        began = time.monotonic()
        lab = builder.lab(snapshot)
        lab.__enter__()
        ready.append(time.monotonic() - began)
        try:
            if rep == 0:
                memory = [pss_of_machine(str(LabName(lab.id, seat))) for seat in seats]
        finally:
            began = time.monotonic()
            lab.__exit__(None, None, None)
            down.append(time.monotonic() - began)
    figures = {"contestants": len(seats), "build pas": built,
               "resume": _summary(ready), "teardown": _summary(down),
               "memory per seat MiB": statistics.median(memory) / 2**20 if memory else None}
    if not scenarios:
        return {**figures, "scenarios": None}
    progress(f"{contestants} contestants: room scenarios")
    began = time.monotonic()
    tests = subprocess.run([sys.executable, "-m", "pytest", "scenarios/test_rooms.py", "-q",
                            "-p", "no:cacheprovider", f"--room-size={contestants // ROOMS}"],
                           cwd=REPO, capture_output=True, text=True)
    took = time.monotonic() - began
    last = (tests.stdout.strip().splitlines() or ["no output"])[-1]
    log = REPO / "reports" / "bench" / f"scale-{contestants}.log"  # the whole pytest output
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(tests.stdout + tests.stderr)
    return {**figures, "scenarios": took, "scenarios passed": tests.returncode == 0, "scenarios said": last}


def _summary(values: Sequence[float]) -> dict[str, Any]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "values": [round(v, 2) for v in values]}


def measure(sizes: Sequence[int], reps: int, scenarios: bool = True) -> list[dict[str, Any]]:
    """Each size measured in a child process (a room size is fixed when the pipeline loads)."""
    results = []
    for size in sizes:
        out = subprocess.run([sys.executable, "-m", "bench.scale", "--one", str(size), "--reps", str(reps),
                              *([] if scenarios else ["--no-scenarios"])],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
        if out.returncode != 0:
            results.append({"contestants": size, "error": f"exit status {out.returncode}"})
            continue
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def markdown(results: Sequence[dict[str, Any]]) -> str:
    lines = ["| contestants | build pas | resume to all-ready (median) | teardown (median) | "
             "memory per seat | room scenarios |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['contestants']} | {r['error']} | | | | |")
            continue
        passed = "passed" if r.get("scenarios passed") else f"FAILED: {r.get('scenarios said')}"
        verdict = "not run" if r["scenarios"] is None else f"{r['scenarios']:.0f} s, {passed}"
        lines.append(f"| {r['contestants']} | {r['build pas']:.1f} s | {r['resume']['median']:.1f} s | "
                     f"{r['teardown']['median']:.2f} s | {r['memory per seat MiB']:.1f} MiB | {verdict} |")
    return "\n".join(lines) + "\n"


def svg(results: Sequence[dict[str, Any]]) -> str:
    """Four small line charts against the number of contestants."""
    good = [r for r in results if "error" not in r]
    panels = [("resume to all-ready (s)", [r["resume"]["median"] for r in good]),
              ("build of the pas stage (s)", [r["build pas"] for r in good]),
              ("teardown (s)", [r["teardown"]["median"] for r in good]),
              ("memory per seat (MiB)", [r["memory per seat MiB"] for r in good])]
    xs = [r["contestants"] for r in good]
    width, height, pad = 300, 200, 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width}" height="{2 * height}" '
             'font-family="sans-serif" font-size="11">', '<rect width="100%" height="100%" fill="white"/>']
    for index, (title, ys) in enumerate(panels):
        ox, oy = (index % 2) * width, (index // 2) * height
        parts.append(f'<text x="{ox + width / 2}" y="{oy + 16}" text-anchor="middle">{title}</text>')
        parts.append(f'<line x1="{ox + pad}" y1="{oy + height - pad}" x2="{ox + width - 10}" '
                     f'y2="{oy + height - pad}" stroke="black"/>')
        parts.append(f'<line x1="{ox + pad}" y1="{oy + 24}" x2="{ox + pad}" '
                     f'y2="{oy + height - pad}" stroke="black"/>')
        if not xs:
            continue
        top = max(ys) * 1.1 or 1
        right = max(xs)

        def point(x: float, y: float, ox: int = ox, oy: int = oy, top: float = top,
                  right: int = right) -> str:
            px = ox + pad + (width - pad - 10) * x / right
            py = oy + height - pad - (height - pad - 24) * y / top
            return f"{px:.1f},{py:.1f}"

        parts.append(f'<polyline fill="none" stroke="#1a73e8" stroke-width="2" '
                     f'points="{" ".join(point(x, y) for x, y in zip(xs, ys, strict=True))}"/>')
        for x, y in zip(xs, ys, strict=True):
            px, py = point(x, y).split(",")
            parts.append(f'<circle cx="{px}" cy="{py}" r="3" fill="#1a73e8"/>')
            parts.append(f'<text x="{px}" y="{float(py) - 6:.1f}" text-anchor="middle">{y:.1f}</text>')
            parts.append(f'<text x="{px}" y="{oy + height - pad + 14}" text-anchor="middle">{x}</text>')
        parts.append(f'<text x="{ox + width / 2}" y="{oy + height - 8}" '
                     'text-anchor="middle">contestants</text>')
    return "\n".join([*parts, "</svg>"]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="numbers of contestants, comma-separated")
    parser.add_argument("--reps", type=int, default=3, help="resumes measured per size")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child: one size, JSON out
    parser.add_argument("--no-scenarios", action="store_true",
                        help="measure build, resume, teardown and memory only, not the room scenarios")
    parser.add_argument("--out", default=str(REPO / "reports" / "bench"))
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_size(args.one, args.reps, scenarios=not args.no_scenarios)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(size % ROOMS or size < ROOMS for size in sizes):
        parser.error(f"--sizes: give multiples of {ROOMS} (the lab has {ROOMS} rooms)")
    results = measure(sizes, args.reps, scenarios=not args.no_scenarios)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
    (REPO / "bench" / "scale.svg").write_text(svg(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
