"""What the reference lab's ``apps`` machine costs: its stage built cold, and a lab's resume with it.

Run alone, as root, on a store that holds the reference lab built (``harness build``):
``python -m bench.apps --cold-reps 2 --reps 5``. Writes ``reports/bench/apps.json``.

- cold: stage apps built in a scratch store seeded with the main store's snapshots of the
  stages before it (the host's package cache stays warm, as in bench/run.py), ``--cold-reps``
  times;
- resume: a lab booted from web's snapshot (the lab before apps) and from apps's (the same
  plus apps), each to all-ready, readiness hooks included, in turn (``--reps``): the
  difference of the medians is what apps adds to every resume.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.run import REPO, progress, summary
from harness.engine.build.builder import Builder
from harness.machines.store import Store, open_store
from stages import PIPELINE

BEFORE = "web"  # the stage before apps: its snapshot is the lab without apps


def seeded(main: Store, until: str) -> Store:
    """A scratch store holding ``main``'s current snapshots of every stage up to ``until``."""
    root = main.root / "scratch" / f"bench-apps-{os.getpid()}-{secrets.token_hex(3)}"
    root.mkdir(parents=True)
    store = Store(root)
    for name in PIPELINE.names[: PIPELINE.index(until) + 1]:
        snap = main.get(PIPELINE.ref(name))
        if snap is None:
            raise SystemExit(f"bench.apps: stage {name} is not built in {main.root}: run "
                             "`harness build` first")
        store.publish(snap.ref, {m: snap.member(m) for m in snap.members}, dict(snap.meta))
    return store


def drop(store: Store) -> None:
    for snap in store.snapshots():
        store.remove(snap.ref)
    shutil.rmtree(store.root, ignore_errors=True)


def cold(main: Store, reps: int) -> dict[str, object]:
    """Stage apps built from the snapshot before it, ``reps`` times, in a scratch store."""
    times: list[float] = []
    for rep in range(reps):
        store = seeded(main, BEFORE)
        try:
            progress(f"apps cold build {rep + 1}/{reps}")
            builder = Builder(store, PIPELINE)
            builder.ensure("apps")
            times.append(builder.durations["apps"])
        finally:
            drop(store)
    return summary(times)


def resume(main: Store, reps: int) -> dict[str, object]:
    """Labs from web's and apps's snapshots, booted to all-ready in turn, ``reps`` times each."""
    builder = Builder(main, PIPELINE)
    snaps = {name: builder.ensure(name) for name in (BEFORE, "apps")}
    ready: dict[str, list[float]] = {name: [] for name in snaps}
    for rep in range(reps):
        for name, snap in snaps.items():
            progress(f"resume from {name} {rep + 1}/{reps}")
            began = time.monotonic()
            with builder.lab(snap):
                ready[name].append(time.monotonic() - began)
    result: dict[str, object] = {f"resume from {name}": summary(v) for name, v in ready.items()}
    result["apps adds (medians)"] = statistics.median(ready["apps"]) - statistics.median(ready[BEFORE])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.apps", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="resumes from each snapshot")
    parser.add_argument("--cold-reps", type=int, default=2, help="cold builds of stage apps")
    parser.add_argument("--store", default=os.environ.get("HARNESS_STORE"))
    parser.add_argument("--out", default=str(REPO / "reports" / "bench"))
    args = parser.parse_args(argv)
    main_store = open_store(args.store)
    results = {"date": time.strftime("%Y-%m-%d"), "load before": os.getloadavg()[0],
               "cold build: apps": cold(main_store, args.cold_reps), **resume(main_store, args.reps)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "apps.json").write_text(json.dumps(results, indent=2) + "\n")
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
