"""What every verb of the ``harness`` command reads from its arguments: the store, the
pipeline, and a snapshot named by stage or in full."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import harness.model.project
from harness.core import settings
from harness.core.errors import UsageError
from harness.core.names import SnapshotRef
from harness.machines.store import Snapshot, Store, open_store
from harness.model.pipeline import Pipeline, load_pipeline


def run_settings(args: argparse.Namespace,
                 project: harness.model.project.Project | None = None) -> settings.RunSettings:
    """The command's settings (`harness.core.settings`), resolved once: each option, else the
    environment, else the ini of the project (`harness.model.project`, as pytest reads it), else the
    default; kept on ``args``, and the inherited ones exported for the processes it starts."""
    run = getattr(args, "settings", None)
    if not isinstance(run, settings.RunSettings):
        project = project or harness.model.project.find(Path.cwd())
        run = settings.resolve(vars(args), project.option, settings.Front.CLI,
                               verb=getattr(args, "command", None))
        settings.export(run)  # read by harness.model.inventory_file.load, here and in children
        args.settings = run
    return run


def store(args: argparse.Namespace) -> Store:
    run = run_settings(args)
    return open_store(run.store, size=run.store_size)


def project_root() -> str:
    """The directory of the project the command runs in (`harness.model.project`): the owner its
    builds record, as pytest's rootdir is for pytest's."""
    return str(harness.model.project.find(Path.cwd()).root)


def pipeline_name(args: argparse.Namespace, project: harness.model.project.Project | None = None) -> str:
    """The pipeline module: ``--pipeline``, else env HARNESS_PIPELINE, else ini
    ``harness_pipeline`` of the project (`harness.model.project`), as pytest reads it."""
    project = project or harness.model.project.find(Path.cwd())
    name = run_settings(args, project).pipeline
    if not name:
        raise UsageError(f"no pipeline: name your project's in {project.where} "
                         '(harness_pipeline = "MODULE"), or give --pipeline MODULE')
    return str(name)


def pipeline(args: argparse.Namespace) -> Pipeline:
    """The pipeline `pipeline_name` names, imported from the project's root (and the current
    directory), with the run's room size and families (`run_settings`)."""
    project = harness.model.project.find(Path.cwd())
    name = pipeline_name(args, project)
    for directory in (os.getcwd(), str(project.root)):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    pipeline = load_pipeline(name)
    if pipeline is None:
        raise UsageError(f"no pipeline module {name!r} in {project.root}: run from the project's "
                         "directory or give --pipeline MODULE (a module that defines PIPELINE)")
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
        found = store.get(SnapshotRef.parse(ref))
        if found is None:
            known = ", ".join(s.name for s in store.snapshots()) or "none"
            raise UsageError(f"no snapshot {ref} in {store.root}; it has: {known}")
        return found
    current = pipeline(args).ref(ref)
    found = store.get(current)
    if found is None:
        raise UsageError(f"stage {ref} has no snapshot for its current key {current.key}: build it with "
                         f"`harness build --until {ref}`")
    return found
