"""``harness apply`` of a Python stage: build it again, and swap its new roots into the running lab.

Whether a function of a stage's module is safe to run twice in a running machine only its
author knows, so `apply` does not run a Python stage's steps again (it does a script's or a
playbook's: `harness.engine.apply`). It builds the stage again instead, exactly as a build
does (`Builder.built`: from the snapshot of the stage before it, packages, ``prepare``,
steps, ``ready``, machines powered off), into working roots that are never published; says
what the new build changed in each machine's root against the stage's snapshot the lab was
booted from (`harness.engine.rootdiff`); then, for each machine whose root changed, stops that
machine in the running lab, puts the new root in place of its old one (one atomic exchange,
`harness.machines.volumes.exchange`), boots it again in the same network namespace, and runs
the stage's ``ready`` waits. A swapped machine keeps its ``/etc/machine-id`` (a build gives a
stage's machines new ones, which is no change of the stage's). The lab's other machines keep
running, untouched.

Only the machines of the stage's snapshot are rebuilt, so a lab that holds stages after the
stage is refused: their keys depend on it, and their steps may have changed its machines
(`harness down` then `harness up` rebuilds them all). So are a change of a machine's
interfaces or sysctls (its links are made before it boots), of the base image, and a lab a
pytest run owns. The swapped roots live where the old ones did (the lab's ``work/<id>/``),
so `harness down` removes them as it removes any root of the lab.

Interrupted (Ctrl-C, SIGTERM) or failed while the stage builds, the running lab is untouched
and the build's lab goes as any build's does. Once a machine is being swapped, the lab is
taken over by this process (`Lab.adopting`, as a run adopts a warm lab): interrupted or
failed then, it is torn down whole, nothing of it left behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.core.errors import UsageError, present
from harness.core.log import logger, step
from harness.core.names import WorkOwner
from harness.engine import rootdiff
from harness.engine.build.builder import Build, Builder
from harness.machines import records, rootfs, volumes
from harness.machines.lab import Lab
from harness.machines.records import RUN_DIR
from harness.machines.store import Snapshot, Store
from harness.model.pipeline import Pipeline
from harness.model.stage import Stage

# Each build gives a stage's new machines a new id (`rootfs.make_own`); a swapped machine keeps its own.
IDENTITY = rootfs.MACHINE_ID.lstrip("/")
# Inputs a rebuilt root cannot take into a running lab: its links and sysctls are made before boot.
NETWORK = ("machine ", "inventory")


def refusal(pipeline: Pipeline, stage: Stage, said: Sequence[str], held: Sequence[str],
            lab_id: str) -> str | None:
    """Why stage ``stage``'s change (``said``: `harness.engine.apply.changed_inputs`) cannot be
    swapped into lab ``lab_id``, which holds the stages ``held``, as one line saying what to
    do; None when it can."""
    again = f"`harness down {lab_id}` then `harness up` rebuilds it and boots a new lab"
    if stage.base is not None:
        return f"stage {stage.name} is the base image every machine is cloned from: {again}"
    if not said:
        return (f"nothing to apply: stage {stage.name} has not changed since lab {lab_id}'s snapshot of it "
                "(a Python stage is built again only when its inputs changed)")
    network = [c for c in said if c.startswith(NETWORK)]
    if network:
        return (f"stage {stage.name}: {', '.join(network)} (interfaces, links, sysctls), which a lab "
                f"makes before its machines boot: {again}")
    later = [s for s in held if pipeline.index(s) > pipeline.index(stage.name)]
    if later:
        return (f"lab {lab_id} holds stage(s) {', '.join(later)} built on {stage.name}, which apply "
                f"does not build again: {again}")
    return None


def owner_refusal(record: Mapping[str, object]) -> str | None:
    """Why `apply` leaves the lab of ``record`` alone: a pytest run (or a warm spare) owns it."""
    if record.get("warm"):
        return (f"lab {record['id']} is a warm lab a pytest run left for the next to adopt: "
                "apply changes labs started with `harness up`")
    if record.get("pid") is not None:
        return (f"lab {record['id']} belongs to the pytest run of pid {record['pid']}: apply changes "
                "only labs started with `harness up` (start one with it)")
    return None


def swapped(record: Mapping[str, object]) -> dict[str, object]:
    """What apply swapped into the lab of ``record`` (its ``swapped``): per stage, its
    ``inputs`` as built then and the ``machines`` swapped."""
    found = record.get("swapped")
    return dict(found) if isinstance(found, dict) else {}


def taken(swapped: Mapping[str, object], stage: str) -> dict[str, str] | None:
    """The inputs of stage ``stage`` as apply last built it into the lab (``swapped``: `swapped`)."""
    entry = swapped.get(stage)
    inputs = entry.get("inputs") if isinstance(entry, dict) else None
    return dict(inputs) if isinstance(inputs, dict) else None


def swap(record: Mapping[str, object], pipeline: Pipeline, snapshot: Snapshot,
         held: Mapping[str, Snapshot], name: str, *,
         progress: Callable[[str], None] = lambda line: None) -> dict[str, list[str]]:
    """Build stage ``name`` again and swap the machines whose roots it changed into the running
    lab of ``record``, booted from ``snapshot`` (whose chain is ``held``: stage -> snapshot);
    what the build changed, per machine of the stage's snapshot. Checks are the caller's
    (`refusal`, `owner_refusal`)."""
    store = Store(Path(str(record["store"])))
    stage = pipeline[name]
    index = pipeline.index(name)
    parent = present(held.get(pipeline.names[index - 1]), f"the snapshot of the stage before {name}")
    base = present(held.get(pipeline.names[0]), f"lab {record['id']}'s base image")
    builder = Builder(store, pipeline, project=str(record.get("project") or ""))
    running = dict(record.get("machines") or {})  # type: ignore[call-overload]
    with step(f"apply {name}: build it again from {parent.name}"), \
            builder.built(stage, parent, base) as built:
        changed = {m: [c for c in rootdiff.between(held[name].member(m), built.root(m)) if c[2:] != IDENTITY]
                   for m in pipeline.stored_until(name) if m in held[name].members}
        lines = [f"  {m}: {line}" for m, said in changed.items() for line in said]
        touched = ", ".join(m for m, c in changed.items() if c)
        progress(f"the new build of {name} changed " + (f"{len(lines)} path(s) in {touched}:" if lines
                                                        else "nothing"))
        for line in lines:
            progress(line)
        trees = [m for m, c in changed.items() if c and m not in running]
        if trees:
            raise UsageError(f"stage {name} changed {', '.join(trees)}, which no machine of lab "
                             f"{record['id']} boots as its own root: `harness down {record['id']}` then "
                             "`harness up` rebuilds it and boots a new lab")
        before = dict(swapped(record).get(name) or {})  # type: ignore[call-overload]
        again = [m for m in before.get("machines", ()) if m in running]  # not as its snapshot has it
        chosen = [m for m, c in changed.items() if c or m in again]
        if chosen:
            swap_roots(record, builder, snapshot, stage, {m: built.root(m) for m in chosen})
            kept = [m for m in running if m not in chosen]
            progress(f"swapped in {', '.join(chosen)} (booted again on the new roots)"
                     + (f"; {', '.join(kept)} kept running" if kept else ""))
        records.amend(str(record["id"]), {"swapped": {**swapped(record), name: {
            "inputs": pipeline.inputs(name), "machines": sorted({*again, *chosen})}}})
    return changed


def swap_roots(record: Mapping[str, object], builder: Builder, snapshot: Snapshot, stage: Stage,
               roots: Mapping[str, Path]) -> None:
    """Take the running lab of ``record`` over, put ``roots`` (machine -> a root of the new
    build) in place of its machines' roots, boot them again, run ``stage``'s ``ready`` waits,
    and leave it running again as `harness up` left it. Interrupted or failed, the lab is
    torn down whole."""
    store = builder.store
    setups = list(builder.lab(snapshot).setups.values())  # as `harness up` made them
    logs = Path(str(record.get("logs") or RUN_DIR / str(record["id"])))
    lab = Lab(store, setups, lab_id=str(record["id"]), origin=snapshot.name, log_dir=logs.parent,
              project=str(record.get("project") or "")).adopting(record)
    owner = str(WorkOwner("swap", lab.id, os.getpid(), secrets.token_hex(2)))
    lab.__enter__()  # adopted: from here on, this process owns the lab and tears it down on failure
    try:
        with step(f"lab {lab.id}: swap in {', '.join(roots)}"):
            for machine, root in roots.items():
                lab[machine].discard()  # its root is about to go: no orderly power-off
                del lab.machines[machine]
                staged = store.clone(root, store.work_path(owner, machine))
                identity = lab.root(machine) / IDENTITY
                if identity.is_file():  # it stays the machine it was (its leases, its journal's name)
                    rootfs.write_file(staged, rootfs.MACHINE_ID, identity.read_text(), 0o444)
                volumes.exchange(staged, lab.root(machine))  # the old root is now at `staged`
            store.release(owner)
            lab.boot(list(roots))
            for hook in stage.ready:
                hook(Build(stage, builder.pipeline, lab))
        lab.detach()
    except BaseException as exc:
        lab.__exit__(type(exc), exc, exc.__traceback__)
        store.release(owner)
        logger.warning("lab %s was torn down (%s while its machines were swapped): `harness up` boots "
                       "a new one", lab.id, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
