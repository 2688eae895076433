"""The verbs of the ``harness`` command that look at and move snapshots: ls, rm, gc, export,
import. (`harness.cli` is the command; `harness.cli.labs` the verbs of running labs.)"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli import args as cli_args
from harness.cli import labs as cli_labs
from harness.core.errors import UsageError
from harness.core.names import FAILED, SnapshotRef
from harness.engine import pool
from harness.machines import records
from harness.machines.store import Snapshot, Store
from harness.model.pipeline import Pipeline

if TYPE_CHECKING:
    from harness.engine import bundle


def _age(seconds: float) -> str:
    """``45s``, ``12m``, ``3h05m``, ``2d04h``: a snapshot's age at a glance."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _in_order(snaps: Sequence[Snapshot], stages: Sequence[str]) -> list[tuple[SnapshotRef, Snapshot]]:
    """Snapshots in pipeline order (other groups after, kept failures last), newest first."""
    def rank(ref: SnapshotRef) -> tuple[int, str]:
        if ref.is_failure:
            return (len(stages) + 1, "")
        return (stages.index(ref.group), "") if ref.group in stages else (len(stages), ref.group)

    pairs = [(s.ref, s) for s in snaps]
    return sorted(pairs, key=lambda p: (rank(p[0]), -p[1].created))


def cmd_ls(args: argparse.Namespace) -> int:
    """List snapshots in pipeline order (* marks the stages' current keys) with what each was built
    on and its age, sizes with --size; then this project's running labs (--all: every project's)."""
    store = cli_args.store(args)
    if args.why:
        return _why(args, store, args.why)
    snaps = store.snapshots()
    pipeline: Pipeline | None = None
    broken: UsageError | None = None
    try:
        pipeline = cli_args.pipeline(args)
    except UsageError as exc:  # without a pipeline, the store's snapshots are still listed
        with contextlib.suppress(UsageError):
            cli_args.pipeline_name(args)
            broken = exc  # but one named that does not load (a typo in its inventory) is an error
    stages = list(pipeline.names) if pipeline else []
    current = {pipeline.ref(n) for n in pipeline.names} if pipeline else set()
    if not snaps:
        print(f"no snapshots in {store.root} (build some with `harness build`)")
    else:
        sizes = f" {'EXCLUSIVE':>10} {'TOTAL':>10}" if args.size else ""
        print(f"  {'STAGE':10} {'KEY':42} {'AGE':>6}{sizes}  {'PROJECT':12} BUILT ON")
    now = time.time()
    for ref, snap in _in_order(snaps, stages):
        mark = "*" if snap.ref in current else " "
        parent = snap.meta.get("parent") or snap.meta.get("from") or "-"
        sizes = ""
        if args.size:
            usage = store.usage(snap.path)
            sizes = f" {cli_args.size(usage.exclusive):>10} {cli_args.size(usage.total):>10}"
        owner = Path(str(snap.meta.get("project") or "-")).name  # who built it: gc and --rebuild
        age = _age(now - snap.created)
        print(f"{mark} {ref.group:10} {ref.key:42} {age:>6}{sizes}  {owner:12} {parent}")
    this = cli_args.project_root()
    labs = cli_labs.live_labs()
    for record in labs if args.all else [r for r in labs if cli_labs.of_project(r, this)]:
        machines = ", ".join(dict(record.get("machines") or {}))  # type: ignore[call-overload]
        owner = "kept" if record.get("pid") is None else f"pid {record['pid']}"
        warm = record.get("warm")
        if isinstance(warm, dict):  # left by a run for the next to adopt (harness.engine.warm)
            owner = f"warm, adoptable for {_age(float(warm.get('until') or 0) - now)}"
            if isinstance(warm.get("pool"), dict):
                owner += f", of {warm['pool'].get('id')}"
        project = "" if cli_labs.of_project(record, this) else \
            f", project {Path(str(record.get('project') or '-')).name}"
        applied = record.get("applied")  # `harness apply` changed it: no longer its snapshot as built
        origin = f"{record.get('origin') or '?'}" + (
            f", applied: {', '.join(map(str, applied))}" if isinstance(applied, list) and applied else "")
        print(f"lab {record['id']} ({owner}, from {origin}{project}): {machines}")
    for held in records.recorded_pools():  # harness up --pool (harness.engine.pool)
        if records.pool_gone(held) or not (args.all or cli_labs.of_project(held, this)):
            continue
        ready, booting = pool.counts(held)
        project = "" if cli_labs.of_project(held, this) else \
            f", project {Path(str(held.get('project') or '-')).name}"
        print(f"pool {held['id']} (pid {held['pid']}, of {held['snapshot']}{project}): {ready} ready, "
              f"{booting} booting, of {held['size']}")
    others = 0 if args.all else sum(not cli_labs.of_project(r, this) for r in labs)
    if others:
        print(f"{others} running lab(s) of other projects not listed: `harness ls --all` lists them")
    if broken is not None:
        print(f"harness: error: {broken}", file=sys.stderr)
        return 2
    return 0


def _why(args: argparse.Namespace, store: Store, stage: str) -> int:
    """Say why stage ``stage`` would be built: which of its inputs changed since this
    project's newest snapshot of it."""
    from harness.engine.build.builder import Builder  # imported when used: other verbs start faster
    pipeline = cli_args.pipeline(args)
    name = pipeline.ref(stage)
    if store.exists(name):
        print(f"{stage}: {name} is current; nothing to rebuild")
        return 0
    reasons = Builder(store, pipeline, project=cli_args.project_root()).why(stage)
    print(f"{stage}: no snapshot for its current key; since this project's last one:" if reasons
          else f"{stage}: no snapshot of it records its inputs; the next build does")
    for reason in reasons:
        print(f"  {reason}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    """Delete snapshots: a stage (its current snapshot), a full name, or a pattern ('failed/*')."""
    store = cli_args.store(args)
    chosen = _chosen(args, store, args.snapshot)
    if not chosen:
        print(f"nothing matches {' '.join(args.snapshot)}: nothing removed")
        return 0
    for snap in chosen.values():
        with store.lock(snap.ref.group):
            store.remove(snap.ref)
        print(f"removed {snap.name}")
    return 0


def _chosen(args: argparse.Namespace, store: Store, refs: Sequence[str]) -> dict[str, Snapshot]:
    """The snapshots ``refs`` name: stages, full names, or patterns ('failed/*')."""
    chosen: dict[str, Snapshot] = {}
    for ref in refs:
        if any(c in ref for c in "*?["):
            chosen.update({s.name: s for s in store.snapshots() if fnmatch.fnmatchcase(s.name, ref)})
        else:
            found = cli_args.snapshot(args, store, ref)
            chosen[found.name] = found
    return chosen


def cmd_gc(args: argparse.Namespace) -> int:
    """Delete this project's snapshots that no current stage produces (old keys), keeping the
    --keep newest per stage; other projects' snapshots stay."""
    store = cli_args.store(args)
    pipeline = cli_args.pipeline(args)
    this = cli_args.project_root()

    def ours(ref: SnapshotRef, snap: Snapshot) -> bool:  # unrecorded (older): if this has the stage
        owner = snap.meta.get("project")
        return owner == this if owner else ref.group in (*pipeline.names, FAILED)
    current = {pipeline.ref(n) for n in pipeline.names}
    for name, declared in pipeline.mutants.items():  # build-time mutants' variants are current too
        if declared.at_build:
            variant = pipeline.mutated(name)
            current |= {variant.ref(n) for n in variant.names}
    removed = []
    snapshots = [(s.ref, s) for s in store.snapshots() if ours(s.ref, s)]
    for stage in sorted({ref.group for ref, _ in snapshots}):
        if stage == FAILED and not args.failed:
            continue
        stale = sorted((s for ref, s in snapshots if ref.group == stage and ref not in current),
                       key=lambda s: s.created, reverse=True)
        with store.lock(stage):
            for snap in stale[args.keep:]:
                store.remove(snap.ref)
                removed.append(snap.name)
    print(f"removed {len(removed)} snapshot(s)" + "".join(f"\n  {n}" for n in removed))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write snapshots (btrfs send streams, zstd, manifest, evidence) to files to carry elsewhere."""
    from harness.engine import bundle  # imported when used: other verbs start faster
    store = cli_args.store(args)
    refs = list(args.snapshot)
    if args.all_stages:
        refs += list(cli_args.pipeline(args).names)
    if not refs:
        raise UsageError("name what to export: a stage, a snapshot, a pattern such as 'failed/*', "
                         "or --all-stages")
    chosen = _chosen(args, store, refs)
    if not chosen:
        print(f"nothing matches {' '.join(refs)}: nothing to export")
        return 0
    output = Path(args.output) if args.output else None
    into_directory = len(refs) > 1 or len(chosen) > 1 or (output is not None and (
        output.is_dir() or str(args.output).endswith("/")))
    if into_directory:
        directory = output or Path(".")
        directory.mkdir(parents=True, exist_ok=True)
    for snap in chosen.values():
        file_name = f"{snap.name.replace('/', '_')}.tar.zst"
        target = directory / file_name if into_directory else output or Path(file_name)
        bundle.save(store, snap, target, full=args.full)
        print(f"{snap.name} exported to {target} ({cli_args.size(target.stat().st_size)})")
    return 0


def _build_parent(args: argparse.Namespace, store: Store, missing: bundle.MissingParent) -> None:
    """Build the stage snapshot an incremental bundle needs, when this checkout's stages give it
    the same key; otherwise re-raise `missing`, which says what to do."""
    from harness.engine.build.builder import Builder  # imported when used: other verbs start faster
    wanted = missing.parent
    try:
        pipeline = cli_args.pipeline(args)
    except UsageError:
        raise missing from None
    if wanted.stage is None or wanted.stage not in pipeline.names or pipeline.ref(wanted.stage) != wanted:
        raise missing from None
    print(f"building {missing.parent} first: the bundle holds changes to it", flush=True)
    Builder(store, pipeline, project=cli_args.project_root()).ensure(wanted.stage)


def cmd_import(args: argparse.Namespace) -> int:
    """Import a file written by `harness export`: verified whole before the store is touched."""
    from harness.engine import bundle  # imported when used: other verbs start faster
    store = cli_args.store(args)
    for file in map(Path, args.file):
        if args.if_missing:
            header = bundle.verify(file)
            if store.exists(header.ref):
                print(f"{header.ref} is already in the store: {file} not imported")
                continue
        try:
            snap = bundle.load(store, file)
        except bundle.MissingParent as missing:
            _build_parent(args, store, missing)  # or say what to build
            snap = bundle.load(store, file)
        how = f"as changes to {snap.meta['imported_on']}" if snap.meta.get("imported_on") else "whole"
        print(f"imported {snap.name} ({', '.join(snap.members)}; {how})")
    return 0
