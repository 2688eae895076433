"""``harness apply``: run a changed stage's steps again in the machines of a running lab.

Editing a stage rebuilds it and every later stage, then a new lab boots: minutes for a
one-line change of a script. A lab started with ``harness up`` can take the change in
place instead: `apply` runs the stage's steps (and its ``ready`` waits) again in the running
machines, as its build ran them, from the stage's files as they are now, and says what that
changed in each machine's root. It never publishes a snapshot: the lab now differs from the
snapshot it was booted from, and only a build makes one (``harness build``; the next pytest
run does it too). Steps made of scripts (`harness.engine.build.scripts`) or of a playbook
(`harness.engine.build.playbook`) can run again; whether a function of a stage's module is safe
to run twice only its author knows, so a stage with a Python step is built again instead and its
machines swapped in (`harness.engine.swap`).

What changed is a walk of each machine's root against a btrfs snapshot of it taken just
before, keeping what a step did (`harness.engine.rootdiff`). With ``check_idempotent`` the steps
run twice, and a second run that changes anything fails (Molecule's idempotence step).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.core import proc
from harness.core.errors import CheckFailed, UsageError
from harness.core.log import step
from harness.core.names import LabName, SnapshotRef, WorkOwner
from harness.engine import rootdiff, swap
from harness.engine.build.builder import Build, Builder
from harness.engine.build.playbook import Playbook
from harness.engine.build.scripts import Scripts
from harness.machines import records, treediff
from harness.machines.lab import Lab
from harness.machines.machine import Machine
from harness.machines.nspawn import MachineSpec
from harness.machines.records import RUN_DIR
from harness.machines.store import Snapshot, Store
from harness.model.keys import changes
from harness.model.pipeline import Pipeline
from harness.model.stage import Stage

# Inputs a step cannot take into a running machine: they are laid down before it boots.
BEFORE_BOOT = ("packages", "trees", "sources", "boot_args", "machine ", "inventory")
RERUNNABLE = (Scripts, Playbook)


class Attached(Machine):
    """A machine of a lab another process booted (``harness up``): commands enter its PID 1,
    which the lab's record names. It is never started nor stopped from here."""

    def __init__(self, spec: MachineSpec, leader: int, console_log: Path) -> None:
        super().__init__(spec, console_log=console_log)
        self.leader = leader
        self.ready = True

    @property
    def running(self) -> bool:
        return self.leader is not None and proc.alive(self.leader)


def attach(record: Mapping[str, object], pipeline: Pipeline) -> tuple[Lab, Snapshot]:
    """The running lab of ``record`` (`harness.machines.lab.recorded_labs`) as a `Lab` whose machines
    are `Attached`, never entered (leaving nothing to tear down), and its snapshot."""
    store = Store(Path(str(record["store"])))
    origin = str(record.get("origin") or "")
    snapshot = store.get(SnapshotRef.parse(origin)) if origin else None
    if snapshot is None:
        raise UsageError(f"lab {record['id']} was booted from {origin or 'no snapshot'}, which the store "
                         f"{store.root} no longer holds: `harness down {record['id']}`, then `harness up`")
    made = Builder(store, pipeline).lab(snapshot)  # its machine setups, as `harness up` made them
    lab = Lab(store, list(made.setups.values()), lab_id=str(record["id"]), origin=origin)
    logs = Path(str(record.get("logs") or RUN_DIR / lab.id))
    for name, leader in dict(record.get("machines") or {}).items():  # type: ignore[call-overload]
        spec = MachineSpec(name=name, root=lab.root(name), unit=str(LabName(lab.id, name)))
        lab.machines[name] = Attached(spec, int(leader), logs / f"{name}.console")
    return lab, snapshot


def chain(store: Store, snapshot: Snapshot) -> dict[str, Snapshot]:
    """``snapshot`` and the snapshots it was built on (its manifest's ``parent``), by stage; a
    kept failure stands for the stage snapshot its lab was booted from (``from``)."""
    found: dict[str, Snapshot] = {}
    current: Snapshot | None = snapshot
    while current is not None:
        kept_from = current.meta.get("from")
        if kept_from and "inputs" not in current.meta:
            current = store.get(SnapshotRef.parse(str(kept_from)))
            continue
        found[str(current.meta.get("stage") or current.ref.stage)] = current
        parent = current.meta.get("parent")
        current = store.get(SnapshotRef.parse(str(parent))) if parent else None
    return found


def changed_inputs(store: Store, pipeline: Pipeline, snapshot: Snapshot,
                   swapped: Mapping[str, object] | None = None) -> dict[str, list[str]]:
    """Per stage of the lab (up to ``snapshot``'s), what changed in its own inputs since the
    snapshot of it the lab holds (`harness.model.keys.changes`: ``file office/server/10-site.sh
    changed``), or since apply last swapped it in (``swapped``, from the lab's record:
    `harness.engine.swap.taken`); a change that cascades from an earlier stage, or from the
    harness, is left out."""
    found: dict[str, list[str]] = {}
    for stage, snap in chain(store, snapshot).items():
        recorded = swap.taken(swapped or {}, stage) or snap.meta.get("inputs")
        if stage not in pipeline.names or not isinstance(recorded, dict):
            continue
        said = [c for c in changes(dict(recorded), pipeline.inputs(stage))
                if not c.startswith(("parent stage", "harness build code"))]
        if said:
            found[stage] = said
    return {s: found[s] for s in pipeline.names if s in found}


def refusal(stage: Stage, said: Sequence[str], lab_id: str) -> str | None:
    """Why `apply` cannot take stage ``stage``'s change (``said``) into lab ``lab_id``, as one
    line saying what to do; None when it can."""
    again = f"`harness down {lab_id}` then `harness up` rebuilds it and boots a new lab"
    if not stage.steps:
        return f"stage {stage.name} has no steps to run again: {again}"
    early = [c for c in said if c.startswith(BEFORE_BOOT)]
    if early:
        return (f"stage {stage.name}: {', '.join(early)}, which a machine gets before it boots, not "
                f"from its steps: {again}")
    return None


def is_python(stage: Stage) -> bool:
    """Whether ``stage`` has a step that is neither scripts nor a playbook: apply builds such a
    stage again and swaps its machines in (`harness.engine.swap`) instead of running it twice."""
    return any(not isinstance(hook, RERUNNABLE) for hook in stage.steps)


def targets(stage: Stage) -> list[str]:
    """The machines the steps of ``stage`` run in."""
    names: list[str] = []
    for hook in stage.steps:
        for name in (hook.machine,) if isinstance(hook, Scripts) else getattr(hook, "machines", ()):
            if name not in names:
                names.append(name)
    return names


@contextlib.contextmanager
def watched(lab: Lab, machines: Sequence[str]) -> Iterator[dict[str, list[str]]]:
    """Snapshot the roots of ``machines`` on entering; on leaving, fill the mapping it yields
    with what changed in each (`real_changes`). The snapshots are deleted."""
    owner = str(WorkOwner("apply", lab.id, os.getpid(), secrets.token_hex(2)))
    found: dict[str, list[str]] = {}
    try:
        before = {m: lab.store.clone(lab.root(m), lab.store.work_path(owner, m)) for m in machines}
        yield found
        for machine, old in before.items():
            leader = lab.machines[machine].leader if machine in lab.machines else None
            skip = treediff.mount_points(leader) if leader else []
            root = lab.root(machine)
            found[machine] = rootdiff.between(old, root, skip)
    finally:
        lab.store.release(owner)


@dataclass(frozen=True)
class Run:
    """One run of a stage's steps in a lab: what it changed, per machine."""

    stage: str
    changed: Mapping[str, Sequence[str]]

    @property
    def anything(self) -> bool:
        return any(self.changed.values())


def run_steps(pipeline: Pipeline, stage: Stage, lab: Lab) -> Run:
    """Run ``stage``'s steps, then its ``ready`` waits, in the running ``lab``."""
    machines = [m for m in targets(stage) if m in lab.machines]
    with watched(lab, machines) as found:
        for hook in (*stage.steps, *stage.ready):
            hook(Build(stage, pipeline, lab))
    return Run(stage.name, found)


def apply(record: Mapping[str, object], pipeline: Pipeline, stage_name: str | None = None, *,
          check_idempotent: bool = False,
          progress: Callable[[str], None] = lambda line: None) -> tuple[dict[str, list[str]], list[Run]]:
    """Apply the changed stages (or stage ``stage_name``) to the running lab of ``record``:
    what changed in each stage's inputs, and each run; both are told to ``progress`` as they
    are known, a line at a time. A `UsageError` if a stage cannot be
    applied (before anything runs); `CheckFailed` if ``check_idempotent`` and a second run
    changed something."""
    lab, snapshot = attach(record, pipeline)
    said = changed_inputs(lab.store, pipeline, snapshot, swap.swapped(record))
    held = chain(lab.store, snapshot)
    if stage_name is not None:
        if pipeline[stage_name].name not in held:
            raise UsageError(f"lab {lab.id} holds the stages {', '.join(held) or 'none'} (it was "
                             f"booted from {snapshot.name}), not {stage_name}")
        chosen = [stage_name]
    else:
        chosen = [s for s in said if s in held]
        if not chosen:
            raise UsageError(f"nothing changed in the stages of lab {lab.id} since {snapshot.name}: "
                             "give a STAGE to run its steps again")
    why = swap.owner_refusal(record)
    for name in chosen:
        if why is None and is_python(pipeline[name]) and check_idempotent:
            why = (f"--check-idempotent runs script and playbook steps twice; stage {name} has Python "
                   f"steps, which apply builds again instead: `harness apply {name}` without it")
        elif why is None and is_python(pipeline[name]):
            why = swap.refusal(pipeline, pipeline[name], said.get(name, []), list(held), lab.id)
        elif why is None:
            why = refusal(pipeline[name], said.get(name, []), lab.id)
    if why is not None:
        raise UsageError(why)
    runs: list[Run] = []
    for name in chosen:
        stage = pipeline[name]
        progress(f"stage {name}: " + ("; ".join(said[name]) if said.get(name) else "unchanged, run again"))
        if is_python(stage):
            runs.append(Run(name, swap.swap(record, pipeline, snapshot, held, name, progress=progress)))
            continue
        for attempt in (1, 2) if check_idempotent else (1,):
            which = ("first " if attempt == 1 else "second ") if check_idempotent else ""
            with step(f"apply {name} to lab {lab.id}" + (" (second run)" if attempt == 2 else "")):
                runs.append(run_steps(pipeline, stage, lab))
            lines = [f"  {m}: {line}" for m, changed in runs[-1].changed.items() for line in changed]
            progress(f"the {which}run of {name}'s steps changed "
                     + (f"{len(lines)} path(s) in {', '.join(m for m, c in runs[-1].changed.items() if c)}:"
                        if lines else "nothing"))
            for line in lines:
                progress(line)
            if attempt == 2 and runs[-1].anything:
                shown = "; ".join(f"{m}: {', '.join(c[:10])}" for m, c in runs[-1].changed.items() if c)
                raise CheckFailed(f"stage {name} is not idempotent: its second run changed {shown}")
    earlier = record.get("applied")  # a swap wrote the record anew: the stages applied before it too
    _note(lab.id, [*(earlier if isinstance(earlier, list) else []), *chosen])
    return {s: said.get(s, []) for s in chosen}, runs


def _note(lab_id: str, stages: Sequence[str]) -> None:
    """Add ``stages`` to the lab's record (``applied``): it is no longer its snapshot as built."""
    records.amend(lab_id, {"applied": sorted(set(stages))})
