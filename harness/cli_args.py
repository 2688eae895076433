"""What every verb of the ``harness`` command reads from its arguments: the store, the
pipeline, and a snapshot named by stage or in full."""

from __future__ import annotations

import argparse
import os
import sys

from harness.errors import UsageError
from harness.inventory import ROOM_SIZE_ENV, room_size
from harness.names import SnapshotRef
from harness.stage import Pipeline, load_pipeline, snapshot_name
from harness.store import Snapshot, Store, open_store

DEFAULT_PIPELINE = "stages"


def store(args: argparse.Namespace) -> Store:
    return open_store(args.store, size=args.store_size)


def pipeline(args: argparse.Namespace) -> Pipeline:
    """The pipeline of module ``--pipeline`` (importable from the current directory too)."""
    name = args.pipeline or os.environ.get("HARNESS_PIPELINE") or DEFAULT_PIPELINE
    if getattr(args, "room_size", None):  # read by harness.inventory.load, here and in children
        os.environ[ROOM_SIZE_ENV] = str(room_size(args.room_size))
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    pipeline = load_pipeline(name)
    if pipeline is None:
        raise UsageError(f"no pipeline module {name!r}: run from the project's directory or give "
                         "--pipeline MODULE (a module that defines PIPELINE)")
    return pipeline


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def snapshot(args: argparse.Namespace, store: Store, ref: str) -> Snapshot:
    """The snapshot ``ref`` names: a full name, or a stage (its snapshot for the current key)."""
    if "/" in ref:
        found = store.get(str(SnapshotRef.parse(ref)))
        if found is None:
            known = ", ".join(s.name for s in store.snapshots()) or "none"
            raise UsageError(f"no snapshot {ref} in {store.root}; it has: {known}")
        return found
    stages = pipeline(args)
    key = stages.keys()[stages[ref].name]
    found = store.get(snapshot_name(ref, key))
    if found is None:
        raise UsageError(f"stage {ref} has no snapshot for its current key {key}: build it with "
                         f"`harness build --until {ref}`")
    return found
