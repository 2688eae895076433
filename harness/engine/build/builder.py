"""Running a pipeline: build or reuse each stage's snapshot, then boot labs from them.

A stage is built in a lab of its own: the machines of the previous stage's snapshot,
plus the stage's new machines cloned from the base image, packages installed and files
prepared before boot, then its steps run in the booted lab. The machines are powered off
cleanly and all their roots published together as the stage's snapshot; if anything
fails, nothing is published. Each stage is decided and built under a store lock, so
concurrent runs (xdist workers, two CI jobs) build it once and the others reuse it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness.core import log
from harness.core.errors import UsageError, present
from harness.core.log import format_elapsed, logger, step
from harness.core.names import SnapshotRef, WorkOwner
from harness.core.settings import DEFAULT_BOOT_TIMEOUT
from harness.machines import containers, lean, rootfs
from harness.machines.lab import Lab, MachineSetup
from harness.machines.machine import Machine
from harness.machines.store import Snapshot, Store
from harness.model.keys import changes
from harness.model.mutant import Mutant
from harness.model.pipeline import Pipeline
from harness.model.plan import Action, Step, plan
from harness.model.stage import BASE_MEMBER, Stage


@dataclass
class Build:
    """What a stage's ``prepare`` hook and ``steps`` get: the stage, the pipeline, the lab.

    During ``prepare`` the lab's machines are not booted yet: write into ``root(machine)``.
    During ``steps`` they are: ``build["gw"].succeed(...)``.
    """

    stage: Stage
    pipeline: Pipeline
    lab: Lab

    def root(self, machine: str) -> Path:
        """The (writable) root of ``machine``."""
        return self.lab.root(machine)

    def write(self, machine: str, path: str, content: str, mode: int = 0o644) -> Path:
        """Write a file into ``machine``'s root before boot."""
        return rootfs.write_file(self.root(machine), path, content, mode)

    def __getitem__(self, machine: str) -> Machine:
        return self.lab[machine]


JOURNAL_LINES = 300  # per machine: the failure is near the end; the start is the boot
JOURNAL_TIMEOUT = 15.0  # per machine, all read side by side: a wedged one delays the error little


def journals_kept(lab: Lab, since: float, exc: Exception) -> None:
    """Append each machine's journal since ``since`` (its last lines; for a machine that died,
    the end of its console) to the build log and say so on ``exc``: a step that failed says
    little more than an exit code ("Job for pod-pad.service failed"); the why is in a journal,
    and the lab goes once the build fails. Whatever goes wrong here is logged, never raised
    in place of the step's error."""
    kept = log.kept_path()
    if kept is None:  # not a build with a log of its own (`harness apply`'s)
        return

    def section(name: str, machine: Machine) -> str:
        if not machine.running:
            return (f"---- {name} is not running; the end of its console ----\n"
                    f"{machine.console_tail()}\n")
        head = f"---- {name}'s journal since the build's lab booted (last {JOURNAL_LINES} lines) ----"
        try:
            return f"{head}\n{machine.journal(since=since, lines=JOURNAL_LINES, timeout=JOURNAL_TIMEOUT)}"
        except Exception as failed:  # one machine's unread journal spoils no other's
            return f"{head}\n(not read: {failed})\n"

    try:
        with ThreadPoolExecutor(max_workers=min(8, len(lab.machines) or 1)) as pool:
            sections = list(pool.map(lambda item: section(*item), lab.machines.items()))
        with kept.open("a", encoding="utf-8") as out:
            out.write("".join(f"\n{text}" for text in sections))
    except Exception as failed:  # evidence never replaces the step's error
        logger.warning("the machines' journals could not be kept in %s: %s", kept, failed)
        return
    if sections:
        exc.add_note("each machine's journal (or, if it died, its console) is in the build log, "
                     "after the failed step's lines")


def _title(hook: object) -> str:
    title = getattr(hook, "title", None)  # a hook object that names itself (harness.engine.build.scripts)
    if isinstance(title, str):
        return title
    doc = (getattr(hook, "__doc__", None) or "").strip().splitlines()
    return doc[0].rstrip(".") if doc else getattr(hook, "__name__", repr(hook))


class Builder:
    """Builds and restores the stages of ``pipeline`` in ``store``.

    ``run_id`` identifies this run (all xdist workers share it): a stage this run built
    is never rebuilt by it again, even with ``--rebuild`` or ``--from-snapshot``.

    With ``mutant`` (a name of `Pipeline.mutants`), every lab it boots from a snapshot has
    that regression: built into its stage's snapshot (a build-time mutant, under keys of its
    own) or applied once the lab is ready. Builds themselves are never mutated otherwise.
    """

    def __init__(self, store: Store, pipeline: Pipeline, *, run_id: str | None = None,
                 boot_timeout: float = DEFAULT_BOOT_TIMEOUT, log_dir: Path | None = None,
                 mutant: str | None = None, project: str = "") -> None:
        self.store = store
        self.project = project  # the project's root directory: the owner of what it builds
        self.mutant: tuple[str, Mutant] | None = None
        if mutant is not None:
            self.mutant = pipeline.mutant(mutant)
            pipeline = pipeline.mutated(mutant)
        self.pipeline = pipeline
        self.run_id = run_id or secrets.token_hex(8)
        self.boot_timeout = boot_timeout
        self.log_dir = log_dir
        self.done: list[Step] = []
        self.durations: dict[str, float] = {}  # seconds each stage this builder built took

    def _settled(self, ref: SnapshotRef) -> bool:
        """Whether a rebuild leaves snapshot ``ref`` of a stage alone: this run built it, or
        another project did (a shared base image: its key says it is the same build)."""
        snap = self.store.get(ref)
        return snap is not None and (snap.meta.get("run") == self.run_id or not self.owns(snap))

    def owns(self, snapshot: Snapshot) -> bool:
        """Whether ``snapshot`` is this builder's project's (one recorded before projects were:
        anyone's)."""
        owner = snapshot.meta.get("project")
        return not owner or not self.project or owner == self.project

    def why(self, stage: str) -> list[str]:
        """What changed in stage ``stage``'s inputs since the newest snapshot of it this
        project built (`harness.model.keys.changes`); empty if there is none, or nothing changed."""
        earlier = [s for s in self.store.snapshots() if s.ref.stage == stage
                   and self.owns(s) and isinstance(s.meta.get("inputs"), dict)]
        if not earlier:
            return []
        newest = max(earlier, key=lambda s: s.created)
        return changes(dict(newest.meta["inputs"]), self.pipeline.inputs(stage))

    def _reasons(self, stage: str, rebuild: bool, from_snapshot: str | None) -> str:
        """Why a stage is built, for its log line: its changed inputs, or what asked for it."""
        said = self.why(stage) or ["--rebuild" if rebuild else "--from-snapshot" if from_snapshot
                                   else "no earlier snapshot"]
        return "; ".join(said[:3]) + (f" and {len(said) - 3} more" if len(said) > 3 else "")

    def plan(self, target: str, *, from_snapshot: str | None = None,
             rebuild: bool = False) -> list[Step]:
        """The plan for ``target`` as the store stands now (see `harness.model.plan.plan`)."""
        return plan(self.pipeline, target, self.store.exists, from_snapshot=from_snapshot,
                    rebuild=rebuild, settled=self._settled)

    def ensure(self, target: str, *, from_snapshot: str | None = None,
               rebuild: bool = False) -> Snapshot:
        """The snapshot of ``target``, building whatever the plan says; logs what it restored and built."""
        start = time.monotonic()
        steps = self.plan(target, from_snapshot=from_snapshot, rebuild=rebuild)
        snapshot: Snapshot | None = None
        base: Snapshot | None = None
        for index, first_guess in enumerate(steps):
            if first_guess.action is Action.SKIP:
                break
            stage = self.pipeline[first_guess.stage]
            with self.store.lock(stage.name):  # decide again: another run may have built it meanwhile
                decided = self.plan(target, from_snapshot=from_snapshot, rebuild=rebuild)[index]
                name = decided.ref
                if decided.action is Action.REUSE:
                    found = present(self.store.get(name), f"snapshot {name}")
                    how = "restored" if from_snapshot is not None else "reused"
                    logger.info("stage %s: %s %s", stage.name, how, name)
                    snapshot = found
                else:
                    reasons = self._reasons(stage.name, rebuild, from_snapshot)
                    began = time.monotonic()
                    snapshot = self._build(stage, decided.key, snapshot, base)
                    self.durations[stage.name] = time.monotonic() - began
                    logger.info("stage %s: built %s in %s (%s; log %s)", stage.name, name,
                                format_elapsed(self.durations[stage.name]), reasons,
                                self.build_log(stage.name, decided.key))
            base = base or snapshot
            self.done.append(decided)
        if snapshot is None:
            raise UsageError(f"nothing to build for {target}")
        restored = [s.stage for s in self.done if s.action is Action.REUSE]
        built = [s.stage for s in self.done if s.action is Action.BUILD]
        logger.info("stages up to %s ready in %s: restored %s; built %s", target,
                    format_elapsed(time.monotonic() - start),
                    ", ".join(restored) or "nothing", ", ".join(built) or "nothing")
        return snapshot

    def build_log(self, stage: str, key: str) -> Path:
        """Where the build of ``stage`` under ``key`` writes its lines (the last build's)."""
        return self.store.log_of(SnapshotRef.of_stage(stage, key))

    def _build(self, stage: Stage, key: str, parent: Snapshot | None,
               base: Snapshot | None) -> Snapshot:
        # Its lines go to a file of their own: a test whose setup triggered the build reports
        # the headline and the file, not the build's lines (which the terminal still shows).
        with log.kept_in(self.build_log(stage.name, key)) as kept:
            try:
                return self._build_stage(stage, key, parent, base)
            except Exception as exc:
                full = self.store.full(exc)
                if full is not None:
                    raise full from exc
                exc.add_note(f"stage {stage.name}'s build log: {kept}")
                raise

    def _build_stage(self, stage: Stage, key: str, parent: Snapshot | None,
                     base: Snapshot | None) -> Snapshot:
        name = SnapshotRef.of_stage(stage.name, key)
        meta: dict[str, object] = {"stage": stage.name, "key": key, "run": self.run_id,
                "parent": parent.name if parent else None, "project": self.project,
                "inputs": self.pipeline.inputs(stage.name)}
        started = time.monotonic()
        with step(f"stage {stage.name}: build"):
            # A rebuild replaces the published snapshot only once the new one is whole (we
            # hold the stage's lock): interrupted or failed, the old one stays.
            if stage.base is not None:
                return self._build_base(stage, name, meta)
            with self.built(stage, present(parent, "the previous stage"),
                            present(base, "the base image")) as lab:
                meta["duration"] = round(time.monotonic() - started, 3)
                stored = self.pipeline.stored_until(stage.name)
                return self.store.publish(name, {m: lab.root(m) for m in stored}, meta, replace=True)

    @contextlib.contextmanager
    def built(self, stage: Stage, parent: Snapshot, base: Snapshot) -> Iterator[Lab]:
        """The lab of stage ``stage``'s build, from ``parent`` (the previous stage's snapshot)
        and ``base`` (the base image's): packages, ``prepare``, boot, steps and ``ready`` done,
        every machine powered off, ``lab.root(m)`` whole. Nothing is published: `_build_stage`
        publishes those roots, `harness.engine.swap` swaps them into a running lab. Leaving
        the block removes the lab and its roots."""
        members = self.pipeline.members_until(stage.name)

        def source(member: str) -> Path:
            if member in parent.members:
                return parent.member(member)
            tree = stage.sources.get(member)
            return source(tree) if tree else base.member(BASE_MEMBER)

        setups = [self._setup(m, source(m), shares=None if m in parent.members
                              else self.pipeline.shared_tree(m)) for m in members]

        def prepare(lab: Lab) -> None:
            for member in stage.members:  # a machine sharing a tree is made its own at boot
                if not lab.setups[member].shares:
                    rootfs.make_own(lab.root(member))
            # The container tools in the same apt run as the stage's own packages: one run, and
            # before any of them (systemd-resolved) takes the root's resolver, which a later
            # download needs. The members' runs side by side.
            packages = {machine: (*stage.packages.get(machine, ()),
                                  *(containers.PACKAGES if machine in stage.containers else ()))
                        for machine in stage.members}
            if any(packages.values()):
                counts = ", ".join(f"{len(p)} on {m}" for m, p in packages.items() if p)
                with step(f"stage {stage.name}: install packages ({counts})"):
                    rootfs.install_packages_side_by_side({lab.root(m): p for m, p in packages.items()})
            for machine, users in stage.containers.items():
                with step(f"stage {stage.name}: rootless containers on {machine} for {', '.join(users)}"):
                    containers.install(lab.root(machine), users, packages=False)
            if stage.prepare is not None:
                with step(f"stage {stage.name}: {_title(stage.prepare)}"):
                    stage.prepare(Build(stage, self.pipeline, lab))
            for member in stage.members if stage.lean else ():
                if not lab.setups[member].shares:  # a tree's sharers boot what the tree masks
                    lean.mask(lab.root(member), stage.lean)

        earlier = self.pipeline.stages[: self.pipeline.index(stage.name)]
        began = time.time()
        with self._lab(setups, prepare, self._ready(earlier)) as lab:
            try:
                for hook in (*stage.steps, *stage.ready):
                    with step(f"stage {stage.name}: {_title(hook)}"):
                        hook(Build(stage, self.pipeline, lab))
            except Exception as exc:
                journals_kept(lab, began, exc)
                raise
            lab.stop_all()
            yield lab

    def _build_base(self, stage: Stage, name: SnapshotRef, meta: dict[str, object]) -> Snapshot:
        fill = present(stage.base, f"stage {stage.name}'s base=")
        owner = str(WorkOwner("build", stage.name, os.getpid(), secrets.token_hex(2)))
        root = self.store.create(self.store.work_path(owner, BASE_MEMBER))
        try:
            facts = fill(root)
            lean.mask(root, stage.lean)
            return self.store.publish(name, {BASE_MEMBER: root}, {**meta, **facts}, replace=True)
        finally:
            self.store.release(owner)

    def _setup(self, machine: str, source: Path, *, shares: str | None) -> MachineSetup:
        """Machine ``machine`` of a lab, from ``source``, or booting tree ``shares`` in place
        (`Pipeline.shared_tree`; None when a snapshot holds a root of its own for it, as a kept
        failure holds what a diskless machine wrote)."""
        return MachineSetup(machine, source, self.pipeline.interfaces.get(machine, ()),
                            self.pipeline.boot_args(machine), self.pipeline.sysctls.get(machine, {}),
                            boot=not self.pipeline.is_tree(machine), wave=self._wave(machine),
                            env=self.pipeline.boot_env(machine),
                            shares=shares or "")

    def _wave(self, machine: str) -> int:
        """A machine's boot wave: the rank of its stage among those that add machines (a lab
        boots the servers of earlier stages ahead of their clients, see `Lab.boot`)."""
        return [s.name for s in self.pipeline.stages if s.machines].index(self.pipeline.owner[machine])

    def _lab(self, setups: list[MachineSetup], before_boot: Callable[[Lab], None] | None = None,
             after_boot: Callable[[Lab], None] | None = None, origin: str | None = None) -> Lab:
        hosting = sorted({m for stage in self.pipeline.stages for m in stage.containers}
                         & {setup.name for setup in setups})
        problems = containers.host_problems() if hosting else []
        if problems:  # else podman fails in the machine, a minute into the build, with fuse's words
            raise UsageError(f"{hosting[0]} runs rootless containers, and this host cannot give it "
                             f"what they need: {problems[0]}")
        return Lab(self.store, setups, boot_timeout=self.boot_timeout, log_dir=self.log_dir,
                   before_boot=before_boot, after_boot=after_boot, origin=origin, project=self.project)

    def _ready(self, stages: Sequence[Stage]) -> Callable[[Lab], None]:
        """A hook that runs the ``ready`` hooks of ``stages`` on a booted lab: each stage's in
        order, the stages side by side (they wait on different machines; one after the
        other, a lab's resume was the sum of their waits). If several fail, the earliest
        stage's error is raised: a later stage's machines often wait on an earlier one's."""

        def run(stage: Stage, lab: Lab) -> None:
            for hook in stage.ready:
                with step(f"{stage.name}: {_title(hook)}"):
                    hook(Build(stage, self.pipeline, lab))

        def ready(lab: Lab) -> None:
            waiting = [s for s in stages if s.ready]
            if len(waiting) < 2:
                for stage in waiting:
                    run(stage, lab)
                return
            pool = ThreadPoolExecutor(max_workers=len(waiting), thread_name_prefix=f"ready-{lab.id}")
            try:
                futures = [pool.submit(log.carried(run), stage, lab) for stage in waiting]
                errors = [f.exception() for f in futures]  # waits for every one
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
            failed = [e for e in errors if e is not None]
            if failed:
                raise failed[0]

        return ready

    def lab(self, snapshot: Snapshot) -> Lab:
        """A lab (not yet entered) of every machine in stage ``snapshot``, booted from it."""
        stage = str(snapshot.meta.get("stage") or snapshot.ref.stage)
        members = self.pipeline.members_until(stage)
        stages = self.pipeline.stages[: self.pipeline.index(stage) + 1]
        ready = self._ready(stages)
        if self.mutant is not None and self.mutant[1].apply is not None \
                and self.pipeline.index(stage) >= self.pipeline.index(self.mutant[0]):
            ready = self._mutate(ready, self.mutant[1])  # the lab holds what it breaks

        def setup(member: str) -> MachineSetup:
            tree = None if member in snapshot.members else self.pipeline.shared_tree(member)
            return self._setup(member, snapshot.member(tree or member), shares=tree)

        return self._lab([setup(m) for m in members],
                         after_boot=ready, origin=snapshot.name)

    @staticmethod
    def _mutate(ready: Callable[[Lab], None], mutant: Mutant) -> Callable[[Lab], None]:
        """``ready``, then ``mutant`` applied."""

        def mutate(lab: Lab) -> None:
            ready(lab)
            apply = present(mutant.apply, f"mutant {mutant.name}'s apply=")
            with step(f"mutant {mutant.name}: apply ({mutant.regression})"):
                apply(lab)

        return mutate
