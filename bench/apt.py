"""Package installs: one stage's packages into its members' roots, the ways a build could do it.

A cold build of a stage spends most of its time in apt (bench/README.md, "What apps costs"),
so the way `harness.machines.rootfs` installs is measured here, on the reference lab's apps
stage (apps's packages and the container tools; the ``pad`` tree's): each way, ``--reps``
times, in clones of the base image, the package cache warm (every package already in it, as
on any host after its first build). Run alone, as root: ``python -m bench.apt --reps 3``.
Writes ``reports/bench/apt.json``.

- fsync, one by one: each root's ``apt-get install`` in turn, dpkg syncing every file it
  unpacks (dpkg's default, and the harness's before 2026-12-06);
- one by one: the same without the syncs (``--force-unsafe-io``, `rootfs._APT_OPTIONS`);
- side by side: `rootfs.install_packages_side_by_side`, what the builder does now.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.run import REPO, progress, summary
from harness.machines import containers, rootfs
from harness.machines.store import Store, open_store
from stages import PIPELINE
from stages.apps import STAGE as APPS


def packages() -> dict[str, tuple[str, ...]]:
    """The apps stage's packages by member, the container tools included, as the builder
    gives them."""
    tools = {member: containers.PACKAGES for member in APPS.containers}
    return {member: (*APPS.packages.get(member, ()), *tools.get(member, ()))
            for member in APPS.members if APPS.packages.get(member) or member in tools}


def one_by_one(wanted: Mapping[Path, Sequence[str]]) -> None:
    for root, names in wanted.items():
        rootfs.install_packages(root, names)


def with_fsync(wanted: Mapping[Path, Sequence[str]]) -> None:
    """One by one, dpkg syncing every file: the install options without `rootfs.UNSAFE_IO`."""
    options = list(rootfs._APT_OPTIONS)
    at = next(i for i in range(len(options)) if tuple(options[i:i + 2]) == rootfs.UNSAFE_IO)
    rootfs._APT_OPTIONS[:] = options[:at] + options[at + 2:]
    try:
        one_by_one(wanted)
    finally:
        rootfs._APT_OPTIONS[:] = options


WAYS: dict[str, Callable[[Mapping[Path, Sequence[str]]], None]] = {
    "fsync, one by one": with_fsync,
    "one by one": one_by_one,
    "side by side": rootfs.install_packages_side_by_side,
}


def measure(store: Store, base: Path, install: Callable[[Mapping[Path, Sequence[str]]], None]) -> float:
    owner = f"bench-apt-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        wanted = {store.clone(base, store.work_path(owner, member)): names
                  for member, names in packages().items()}
        started = time.monotonic()
        install(wanted)
        return time.monotonic() - started
    finally:
        store.release(owner)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    store = open_store(None)
    first = PIPELINE.stages[0].name
    snapshot = store.get(PIPELINE.ref(first))
    if snapshot is None:
        raise SystemExit(f"bench.apt: stage {first} is not built: run `harness build --until {first}` first")
    base = snapshot.member(snapshot.members[0])
    measure(store, base, one_by_one)  # the cache filled, whatever it held
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    for rep in range(args.reps):
        for way, install in WAYS.items():  # in turn, so that a change of load touches every way
            progress(f"apt {way} {rep + 1}/{args.reps}")
            times[way].append(measure(store, base, install))
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "load before": os.getloadavg()[0],
              "packages": packages(), **{way: summary(values) for way, values in times.items()}}
    out = REPO / "reports/bench/apt.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for way in WAYS:
        s = result[way]
        print(f"{way:20} min {s['min']:.1f}  median {s['median']:.1f}  max {s['max']:.1f} s (n={s['n']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
