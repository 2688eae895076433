"""Stages: what each builds, in which order, and the key its snapshot is stored under.

A stage is data: the machines it adds, the packages installed into each before boot, a
host-side ``prepare`` hook (unbooted roots: write configuration) and ``steps`` run in the
booted lab. `harness.model.pipeline` orders stages and keys them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError
from harness.machines import containers, lean
from harness.model.keys import sources_used

BASE_MEMBER = "base"

# A hook gets the stage's `harness.engine.build.builder.Build` (machines, roots, the plan):
# named by its use here, since the build is what runs stages, above them.
Hook = Callable[[Any], None]
BaseBuilder = Callable[[Path], Mapping[str, Any]]


@dataclass(frozen=True)
class Stage:
    """One stage of a pipeline. Declare it at module level as ``STAGE = Stage(...)``.

    ``steps`` run once, when the stage is built; ``ready`` hooks wait for what must hold
    every time a lab holding its machines has booted (a service bound to its address...):
    after the steps at build time, and after each boot from a snapshot.

    ``base`` is for the first stage only: it fills an empty root (the base image) and
    returns facts for the manifest. Every other stage adds ``machines`` cloned from it,
    or from a tree named in ``sources`` (machine -> tree); a machine that boots its tree
    read-only (``boot_args``: ``--read-only`` or ``--volatile``) boots the tree itself,
    shared with the others, and no snapshot stores a root for it. ``trees`` are roots a stage
    prepares but never boots (a diskless machine's root filesystem): they are cloned from
    the base image, get their ``packages``, and are carried in every later snapshot.

    ``files`` are files and directories the stage reads (templates, scripts, a playbook's
    tree): every file in them is part of the key, so editing one rebuilds the stage. Relative
    paths are the declaring module's (`Stage.here`). A hook that reads files of its own
    declares them as its ``files`` attribute (`harness.engine.build.scripts.Scripts` does).

    ``evidence`` names what to gather from a machine when a test fails, beyond its journal,
    addresses, routes and ruleset: ``{"gw": {"dhcp-leases": "cat /var/lib/kea/..."}}``.
    It is not part of the key: changing it rebuilds nothing.

    ``lean`` names units (``fstrim.timer``) and generators (``systemd-gpt-auto-generator``)
    the machines of a lab do not need: the build masks them in every root the stage adds
    (the base stage: the base image, so every machine), before it first boots
    (`harness.machines.lean`). They are part of the key. Lean only what no scenario observes: a
    boot costs less CPU, and nothing else may change.

    ``containers`` names, per machine it adds, the unprivileged users that run rootless podman
    and buildah there (``{"box": ("alice",)}``): `harness.machines.containers` installs the tools,
    makes the users with subordinate id ranges and lingering, writes their configuration and
    boots the machine with the nspawn flags the tools need (docs/containers.md).

    A stage's mutants (regressions of its behaviour that a mutation run applies, see
    `harness.model.mutant`) are not among its fields: they live in modules no stage imports, and the
    pipeline attaches them (`Pipeline`'s ``mutants``), so that neither they nor their code
    are part of any key.
    """

    name: str
    machines: tuple[str, ...] = ()
    trees: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    packages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    prepare: Hook | None = None
    steps: tuple[Hook, ...] = ()
    ready: tuple[Hook, ...] = ()
    boot_args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    base: BaseBuilder | None = None
    definition: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    modules: Mapping[str, str] = field(default_factory=dict)  # module name -> source (Stage.here)
    evidence: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    containers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    lean: tuple[str, ...] = ()
    origin: str = field(default="", compare=False)  # file:line of its declaration, for errors

    def __post_init__(self) -> None:
        where = f"{self.origin}: " if self.origin else ""
        unknown = (set(self.packages) | set(self.boot_args) | set(self.sources)) - set(self.members)
        unknown |= set(self.containers) - set(self.machines)
        if unknown:
            raise UsageError(f"{where}stage {self.name}: packages, boot_args, sources or containers name "
                             f"machines it does not add: {', '.join(sorted(unknown))}; it adds: "
                             f"{', '.join(self.members) or 'none'}")
        containers.validate(self.containers, where)
        bad = lean.invalid(self.lean)
        if bad:
            raise UsageError(f"{where}stage {self.name}: lean= takes unit names (fstrim.timer) and "
                             f"generator names (systemd-gpt-auto-generator), not: {', '.join(bad)}")
        if self.base is not None and self.machines:
            raise UsageError(f"{where}stage {self.name}: a base stage adds no machines")
        missing = [str(f) for f in self.inputs if not f.exists()]
        if missing:
            raise UsageError(f"{where}stage {self.name} reads files that do not exist: "
                             f"{', '.join(missing)}")

    @classmethod
    def here(cls, name: str, **fields: Any) -> Stage:
        """A stage whose key includes the source of the module that calls this, and of every
        module of the same package it uses (its configuration generators, its helpers)."""
        caller = sys._getframe(1)  # inspect.stack() reads the source of every frame: slow
        module = sys.modules[caller.f_globals["__name__"]]
        origin = f"{caller.f_code.co_filename}:{caller.f_lineno}"
        here = Path(caller.f_code.co_filename).parent
        fields["files"] = tuple(here / f for f in fields.get("files", ()))  # an absolute one stays
        return cls(name=name, modules=sources_used(module), origin=origin, **fields)

    @property
    def inputs(self) -> tuple[Path, ...]:
        """The files and directories its build reads: its ``files`` and its hooks'."""
        hooks = (self.prepare, *self.steps, *self.ready)
        return (*self.files, *(Path(f) for h in hooks for f in getattr(h, "files", ())))

    @property
    def members(self) -> tuple[str, ...]:
        """Machines and trees this stage adds."""
        return (*self.machines, *self.trees)

    @property
    def handle(self) -> str | None:
        """The machine its fixture returns: the first it adds (None for the base stage)."""
        return self.machines[0] if self.machines else None
