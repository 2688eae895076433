"""Pipelines: stages in build order, the interfaces of every machine they add, and the key
each stage's snapshot is stored under.

A `Pipeline` orders stages (the first builds the base image every machine is cloned from)
and knows each machine's interfaces from the inventory. A stage's key (`harness.model.keys`)
hashes its definition (module source, packages, inventory entries, the files it reads, the
harness's build code) chained with its parent's key, so a change to one stage invalidates its
snapshot and every later one, nothing before it. Stage S with key K is published as ``S/K``
(`Pipeline.ref`). `harness.model.plan` decides, without touching anything, which stages to
reuse and which to build.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.core.errors import UsageError
from harness.core.links import Interface
from harness.core.links import validate as validate_interfaces
from harness.core.names import FAILED, SnapshotRef
from harness.machines import containers, nspawn
from harness.model.keys import files_digest, inputs, stage_key
from harness.model.mutant import Mutant
from harness.model.stage import Stage

if TYPE_CHECKING:
    from harness.model.inventory import Inventory


DEFAULT_WARM_FOR = 900.0  # seconds a lab left warm may be adopted from its boot (Pipeline warm_for=)


def _hook_name(hook: object) -> str:
    """A hook as a key names it: its ``title`` (a `harness.engine.build.scripts.Scripts`), else its name."""
    title = getattr(hook, "title", None)
    return title if isinstance(title, str) else getattr(hook, "__qualname__", repr(hook))


class Pipeline:
    """Stages in build order, the interfaces of every machine they add, and the lab's rooms."""

    def __init__(self, stages: Sequence[Stage], interfaces: Mapping[str, Sequence[Interface]] | None = None,
                 sysctls: Mapping[str, Mapping[str, str]] | None = None,
                 rooms: Mapping[str, Sequence[str]] | None = None,
                 mutants: Mapping[str, Iterable[Mutant]] | None = None, *,
                 inventory: Inventory | None = None, static_addresses: bool = False,
                 warm_for: float = DEFAULT_WARM_FOR) -> None:
        """``interfaces`` and ``sysctls`` (per machine) come from the inventory, as do ``rooms``
        (name -> its machines, in order): groups of identical machines that the ``room`` and
        ``rooms`` fixtures hand to scenarios. ``mutants`` are each stage's (stage name -> its
        mutants, e.g. ``harness.model.mutant.declared(module)``), declared in modules that no stage
        imports: a module a stage's key covers is refused.

        Given the ``inventory`` itself, the pipeline takes them from it: every machine's
        interfaces (`Inventory.interfaces`, unless ``interfaces`` is given), its rooms (unless
        ``rooms`` is), and the sysctls of `Inventory.sysctls` (the machine marked ``router``
        forwards in each family it has) under those ``sysctls`` adds; script stages see it
        (`harness.engine.build.scripts`). With ``static_addresses``, the lab sets each
        ``config = "static"`` interface's addresses and gateways (default routes) from outside
        before boot, as `Inventory.interfaces` says: machines that write no network
        configuration of their own need nothing more.

        ``warm_for`` bounds how long a lab a run left warm (run setting ``warm_labs``,
        `harness.engine.warm`) may be adopted by a later run, in seconds from its boot (default
        `DEFAULT_WARM_FOR`, 15 minutes): keep it under the shortest time in which the lab's
        machines do something a fresh boot would not have done yet (renew a DHCP lease, run
        a timer, rotate a log), or a scenario could see the difference.

        Everything is checked here, when the pipeline's module is imported, before anything
        is built: each error names the declaration at fault (file:line)."""
        caller = sys._getframe(1)
        here = f"{caller.f_code.co_filename}:{caller.f_lineno}: "
        if inventory is not None:
            interfaces = interfaces if interfaces is not None else {
                name: inventory.interfaces(name, static_addresses=static_addresses)
                for name in inventory.hosts}
            rooms = rooms if rooms is not None else {n: r.machines for n, r in inventory.rooms.items()}
            given = sysctls or {}
            merged = {m: {**(inventory.sysctls(m) if m in inventory.hosts else {}), **given.get(m, {})}
                      for m in {*inventory.hosts, *given}}
            sysctls = {m: s for m, s in merged.items() if s}
        elif static_addresses:
            raise UsageError(f"{here}static_addresses is the inventory's: give inventory= too")
        interfaces = interfaces or {}
        if not warm_for > 0:
            raise UsageError(f"{here}warm_for={warm_for!r}: give the seconds a warm lab may be "
                             "adopted, more than 0")
        self.warm_for = float(warm_for)
        if not stages or stages[0].base is None:
            raise UsageError(f"{here}a pipeline starts with a base stage (one with `base=`)")
        names = [s.name for s in stages]
        if FAILED in names:
            raise UsageError(f"{here}no stage may be called {FAILED!r}: that name holds kept failures")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UsageError(f"{here}stage names must be unique: {', '.join(dupes)} repeated")
        owners: dict[str, str] = {}
        for stage in stages:
            where = f"{stage.origin}: " if stage.origin else here
            for machine in stage.members:
                if machine in owners:
                    raise UsageError(f"{where}machine {machine} is added by both {owners[machine]} "
                                     f"and {stage.name}")
                owners[machine] = stage.name
            for machine, tree in stage.sources.items():
                if tree not in owners or tree not in self._trees(stages):
                    raise UsageError(f"{where}stage {stage.name}: {machine}'s source {tree!r} is not "
                                     "a tree of this or an earlier stage")
                if tree in stage.trees and not nspawn.boots_read_only(stage.boot_args.get(machine, ())):
                    raise UsageError(f"{where}stage {stage.name}: {machine} gets a root of its own from "
                                     f"tree {tree!r}, which this stage is still preparing: add the tree "
                                     "in an earlier stage, or boot it read-only to share it")
        for index, stage in enumerate(stages):
            unmet = containers.unmet(stages[: index + 1])
            if unmet:
                where = f"{stage.origin}: " if stage.origin else here
                raise UsageError(f"{where}stage {stage.name}: {unmet}")
        by_name: dict[str, tuple[str, Mutant]] = {}
        keyed = {module: stage.name for stage in stages for module in stage.modules}
        for name in (mutants or {}):
            if name not in names:
                raise UsageError(f"{here}mutants of {name!r}, which is no stage: the stages are "
                                 f"{', '.join(names)}")
        for stage in stages:
            for declared in (mutants or {}).get(stage.name, ()):
                where = declared.origin or here.rstrip(": ")
                if declared.name in by_name:
                    raise UsageError(f"{where}: mutant {declared.name} is declared "
                                     f"twice (stages {by_name[declared.name][0]} and {stage.name})")
                if declared.module in keyed:
                    raise UsageError(f"{where}: mutant {declared.name} is declared in {declared.module}, "
                                     f"which stage {keyed[declared.module]}'s key covers: declare it in a "
                                     "module no stage imports, or every edit rebuilds the stage")
                by_name[declared.name] = (stage.name, declared)
        for stage in stages:
            _refuse_mutants_beside(stage)
        strangers = sorted((set(interfaces) | set(sysctls or {})
                            | {m for ms in (rooms or {}).values() for m in ms}) - set(owners))
        if strangers:
            raise UsageError(f"{here}interfaces, sysctls or rooms for machines no stage adds: "
                             f"{_some(strangers)}; the stages add: {_some(list(owners))}")
        try:
            validate_interfaces([i for ifaces in interfaces.values() for i in ifaces])
        except UsageError as exc:
            raise UsageError(f"{here}{exc}") from None
        self.stages = tuple(stages)
        self.interfaces = {m: tuple(i) for m, i in interfaces.items()}
        self.sysctls = {m: dict(s) for m, s in (sysctls or {}).items() if s}
        self.inventory = inventory
        self.owner = owners
        self.rooms = {name: tuple(machines) for name, machines in (rooms or {}).items()}
        self._mutants = by_name
        self._keys: dict[str, str] | None = None
        self._definitions: dict[str, dict[str, Any]] = {}

    @property
    def mutants(self) -> dict[str, Mutant]:
        """Every mutant the stages declare, by name, in pipeline order."""
        return {name: declared for name, (_, declared) in self._mutants.items()}

    def mutant(self, name: str) -> tuple[str, Mutant]:
        """The stage that declares mutant ``name``, and the mutant (a `UsageError` listing them)."""
        if name not in self._mutants:
            raise UsageError(f"unknown mutant {name!r}: `harness mutate --list` lists the "
                             f"{len(self._mutants)} mutants of this pipeline")
        return self._mutants[name]

    def mutated(self, name: str) -> Pipeline:
        """This pipeline with build-time mutant ``name`` built into its stage: that stage and every
        later one get keys of their own. A mutant applied to a booted lab changes nothing here."""
        stage_name, declared = self.mutant(name)
        if declared.variant is None:
            return self
        stage = self[stage_name]
        changed = dataclasses.replace(
            declared.variant(stage), name=stage.name,
            definition={**stage.definition, "mutant": declared.name, "mutant_source": declared.source})
        if changed.members != stage.members:
            raise UsageError(f"{declared.origin}: mutant {name} changes the machines of stage "
                             f"{stage_name}; a variant keeps them and changes how they are built")
        stages = [changed if s.name == stage_name else s for s in self.stages]
        return Pipeline._trusted(stages, self)

    @classmethod
    def _trusted(cls, stages: Sequence[Stage], like: Pipeline) -> Pipeline:
        """A pipeline of ``stages`` with ``like``'s inventory, already validated."""
        made = cls.__new__(cls)
        made.stages = tuple(stages)
        made.interfaces, made.sysctls, made.owner = like.interfaces, like.sysctls, like.owner
        made.rooms, made.inventory = like.rooms, like.inventory
        made._mutants, made.warm_for = like._mutants, like.warm_for
        made._keys, made._definitions = None, {}
        return made

    @property
    def names(self) -> tuple[str, ...]:
        """Stage names, in order."""
        return tuple(s.name for s in self.stages)

    @staticmethod
    def _trees(stages: Sequence[Stage]) -> set[str]:
        return {t for s in stages for t in s.trees}

    def __getitem__(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise UsageError(f"unknown stage {name!r}: the stages are {', '.join(self.names)}")

    def index(self, name: str) -> int:
        """Position of stage ``name`` (a `UsageError` listing the stages if unknown)."""
        return self.stages.index(self[name])

    def members_until(self, name: str) -> tuple[str, ...]:
        """Every machine and tree a snapshot of stage ``name`` holds."""
        return tuple(m for s in self.stages[: self.index(name) + 1] for m in s.members)

    def stored_until(self, name: str) -> tuple[str, ...]:
        """The members a snapshot of stage ``name`` stores: all but the machines that boot a
        tree (see `shared_tree`), which need no root of their own."""
        return tuple(m for m in self.members_until(name) if not self.shared_tree(m))

    def shared_tree(self, machine: str) -> str | None:
        """The tree that ``machine`` boots in place, shared with every machine that boots it,
        or None when it has a root of its own. A machine from a tree (``sources``) that boots
        read-only (``--read-only`` or ``--volatile``) shares it, as diskless machines share
        one network root: one copy in the page cache for a room, no clone per machine."""
        stage = self[self.owner[machine]]
        tree = stage.sources.get(machine)
        return tree if tree and nspawn.boots_read_only(stage.boot_args.get(machine, ())) else None

    def is_tree(self, member: str) -> bool:
        """Whether ``member`` is a tree (prepared, never booted) rather than a machine."""
        return member in self[self.owner[member]].trees

    def boot_args(self, machine: str) -> tuple[str, ...]:
        """Extra nspawn flags of ``machine``, from the stage that adds it (and its containers')."""
        stage = self[self.owner[machine]]
        own = tuple(stage.boot_args.get(machine, ()))
        return (*containers.NSPAWN_ARGS, *own) if machine in stage.containers else own

    def boot_env(self, machine: str) -> dict[str, str]:
        """The environment nspawn boots ``machine`` with, beyond the host's: its containers' needs."""
        return dict(containers.NSPAWN_ENV) if machine in self[self.owner[machine]].containers else {}

    def definition(self, stage: Stage) -> dict[str, Any]:
        """Everything a stage's key depends on, besides its parent's key."""
        return {
            "name": stage.name, "modules": dict(stage.modules), "definition": stage.definition,
            "packages": {m: list(p) for m, p in sorted(stage.packages.items())},
            "trees": list(stage.trees), "sources": dict(stage.sources),
            "boot_args": {m: list(a) for m, a in sorted(stage.boot_args.items())},
            **({"containers": {m: containers.definition(u) for m, u in sorted(stage.containers.items())}}
               if stage.containers else {}),
            "machines": {m: {"interfaces": [vars(i) for i in self.interfaces.get(m, ())],
                             "sysctls": self.sysctls.get(m, {})} for m in stage.machines},
            "steps": [_hook_name(s) for s in (*stage.steps, *stage.ready)],
            "files": files_digest(stage.inputs),
            **({"lean": sorted(stage.lean)} if stage.lean else {}),  # none: the keys of before
            **self._plan(stage),
        }

    def _plan(self, stage: Stage) -> dict[str, str]:
        """The whole inventory, for the key of a stage whose hooks see all of it (a hook that
        ``reads_plan``: `harness.engine.build.scripts.Scripts`); nothing for any other stage."""
        hooks = (stage.prepare, *stage.steps, *stage.ready)
        if self.inventory is None or not any(getattr(h, "reads_plan", False) for h in hooks):
            return {}
        return {"inventory": self.inventory.fingerprint()}

    @property
    def evidence(self) -> dict[str, dict[str, str]]:
        """Per machine, the evidence every stage declares for it (title -> shell command)."""
        merged: dict[str, dict[str, str]] = {}
        for stage in self.stages:
            for machine, commands in stage.evidence.items():
                merged.setdefault(machine, {}).update(commands)
        return merged

    def inputs(self, name: str) -> dict[str, str]:
        """Stage ``name``'s key taken apart, input by input (`harness.model.keys.inputs`)."""
        index = self.index(name)
        parent = self.keys()[self.stages[index - 1].name] if index else None
        return inputs(self._defined(self.stages[index]), parent)

    def keys(self, start: Mapping[str, str] | None = None) -> dict[str, str]:
        """Each stage's key, in order; ``start`` pins the keys of leading stages (a restored one).

        Computed once per pipeline (hashing reads every file the stages read): a file edited
        while a run goes on changes the next run's keys, never this one's halfway."""
        if self._keys is None:
            self._keys = self._chain({})
        return dict(self._keys) if not start else self._chain(start)

    def _chain(self, start: Mapping[str, str]) -> dict[str, str]:
        keys: dict[str, str] = {}
        parent: str | None = None
        for stage in self.stages:
            key = start.get(stage.name) or stage_key(self._defined(stage), parent)
            keys[stage.name] = parent = key
        return keys

    def _defined(self, stage: Stage) -> dict[str, Any]:
        """`definition`, computed once per stage of this pipeline."""
        if stage.name not in self._definitions:
            self._definitions[stage.name] = self.definition(stage)
        return self._definitions[stage.name]

    def ref(self, stage: str) -> SnapshotRef:
        """Where stage ``stage``'s snapshot for its current key is published (``gw/1a2b...``)."""
        return SnapshotRef.of_stage(stage, self.keys()[self[stage].name])


def _refuse_mutants_beside(stage: Stage) -> None:
    """A mutant declared in a module that ``stage``'s key hashes (its own, or one it uses) is
    refused: its key would change with every edit of the mutant, and the mutant could not be
    run without rebuilding the stage it breaks."""
    for number, module_name in enumerate(stage.modules):
        module = sys.modules.get(module_name)
        beside = [v.name for v in vars(module).values() if isinstance(v, Mutant)] if module else []
        if beside:
            whose = "its module" if number == 0 else f"module {module_name}, which it uses,"
            raise UsageError(f"{stage.origin}: stage {stage.name}: {whose} declares mutants "
                             f"({', '.join(beside)}), which its key would hash: move them to a module "
                             "no stage imports and attach them in the pipeline "
                             "(Pipeline(..., mutants={stage: [...]}))")


def _some(names: Sequence[str], shown: int = 12) -> str:
    """``names`` joined, at most ``shown`` of them (a room of 250 is not an error message)."""
    head = ", ".join(names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")


def load_pipeline(module_name: str) -> Pipeline | None:
    """The ``PIPELINE`` of module ``module_name``; None if there is no such module.

    A stage, the pipeline or the inventory that is wrong raises a `UsageError` naming the
    line at fault (see `Pipeline`); a module without a PIPELINE says so."""
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the module exists; something it imports does not
        return None
    except UsageError as exc:
        raise UsageError(f"pipeline {module_name}: {exc}") from None
    pipeline = getattr(module, "PIPELINE", None)
    if not isinstance(pipeline, Pipeline):
        raise UsageError(f"module {module_name} has no PIPELINE (a harness.model.pipeline.Pipeline)")
    return pipeline


def needed_stage(pipeline: Pipeline, fixture_names: Sequence[Sequence[str]]) -> str | None:
    """The last stage any test needs, from each test's fixture names (None: no test needs a lab).

    A test that uses ``lab`` without a stage fixture needs the whole pipeline.
    """
    needed = -1
    for names in fixture_names:
        indexes = [pipeline.index(n) for n in names if n in pipeline.names]
        if not indexes and ("lab" in names or "harness_lab" in names):
            indexes = [len(pipeline.stages) - 1]
        needed = max([needed, *indexes])
    return pipeline.names[needed] if needed >= 0 else None
