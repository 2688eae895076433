"""Mutants: small, realistic regressions of a lab, each declared against the stage it breaks.

A green suite proves little until it is seen to fail on a broken lab. A mutant is one such
breakage (a DHCP option dropped, a firewall rule too open, a home directory world-readable)
with one sentence saying what regression it stands for. ``pytest --mutant=NAME`` runs the
scenarios on a lab with the mutant applied; `harness mutate` runs every mutant and reports
which scenario killed it, or that it SURVIVED: no scenario watches that behaviour.

Most mutants act on a booted lab, after its ``ready`` hooks (edit a file and restart a unit,
add a rule, stop a service)::

    @mutant("clients get no default route from DHCP")
    def dhcp_no_router(lab: Lab) -> None:
        edit(lab["gw"], "/etc/kea/kea-dhcp4.conf", '"name": "routers"', '"name": "time-servers"')
        ...

A regression that can only be made at build time replaces fields of its stage instead
(``prepare``, ``steps``, ``boot_args``...): the stage is built as a variant under a key of its
own, cached like any snapshot, and later stages are built on top of it::

    @mutant.at_build("pas boots with a writable root")
    def writable_root(stage: Stage) -> Stage:
        return dataclasses.replace(stage, boot_args={...})

Mutants live in modules of their own, which no stage imports (the reference lab's in
``stages/mutants/<stage>.py``), and the pipeline attaches each module's to its stage::

    PIPELINE = Pipeline([...], interfaces, mutants={"gw": declared(stages.mutants.gw)})

So they are not part of any stage's key (a key hashes the modules its stage uses, see
`harness.model.keys.sources_used`): adding or editing one rebuilds nothing, and an ordinary run
neither builds nor restores anything different. A stage module that declares one is refused.
"""

from __future__ import annotations

import inspect
import re
import shlex
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.core.errors import CheckFailed, HarnessError

if TYPE_CHECKING:
    from harness.machines.lab import Lab
    from harness.machines.machine import Machine
    from harness.model.stage import Stage

Apply = Callable[["Lab"], None]
Variant = Callable[["Stage"], "Stage"]


@dataclass(frozen=True)
class Mutant:
    """One regression: ``name`` (unique in the pipeline), ``regression`` (one sentence), and
    either ``apply`` (to a booted, ready lab that holds its stage's machines) or ``variant``
    (the stage's definition with the regression built in).

    ``equivalent`` says why no scenario can tell the mutant apart from the intact lab: such
    a mutant is listed but not counted in the kill ratio.
    """

    name: str
    regression: str
    apply: Apply | None = None
    variant: Variant | None = None
    equivalent: str = ""
    origin: str = ""  # file:line of its declaration, for errors

    def __post_init__(self) -> None:
        if (self.apply is None) == (self.variant is None):
            raise HarnessError(f"{self.origin or self.name}: mutant {self.name} needs exactly one "
                               "of apply= (a booted lab) or variant= (a build-time stage)")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.name):
            raise HarnessError(f"{self.origin or 'a mutant'}: mutant name {self.name!r}: use lowercase "
                               "letters, digits and dashes (it goes into command lines and file names)")

    @property
    def at_build(self) -> bool:
        """Whether it is made at build time (a stage variant) rather than on a booted lab."""
        return self.variant is not None

    @property
    def module(self) -> str:
        """The name of the module that declares it."""
        return str(getattr(self.variant or self.apply, "__module__", ""))

    @property
    def source(self) -> str:
        """The code of the mutant, part of a variant stage's key."""
        func = self.variant or self.apply
        try:
            return inspect.getsource(func) if func is not None else ""
        except (OSError, TypeError):
            return repr(func)


def _origin(func: Callable[..., Any]) -> str:
    code = getattr(func, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else ""


class _Declare:
    """The ``@mutant`` decorator (a booted-lab mutant) and ``@mutant.at_build`` (a variant)."""

    def __call__(self, regression: str, *, name: str | None = None,
                 equivalent: str = "") -> Callable[[Apply], Mutant]:
        """``@mutant("what regression this is")`` on ``def some_name(lab): ...``; the mutant is
        called ``some-name`` unless ``name`` is given."""

        def declare(func: Apply) -> Mutant:
            return Mutant(name or func.__name__.replace("_", "-"), regression, apply=func,
                          equivalent=equivalent, origin=_origin(func))

        return declare

    def at_build(self, regression: str, *, name: str | None = None,
                 equivalent: str = "") -> Callable[[Variant], Mutant]:
        """``@mutant.at_build("...")`` on ``def some_name(stage) -> Stage``."""

        def declare(func: Variant) -> Mutant:
            return Mutant(name or func.__name__.replace("_", "-"), regression, variant=func,
                          equivalent=equivalent, origin=_origin(func))

        return declare


mutant = _Declare()


def declared(module: types.ModuleType) -> tuple[Mutant, ...]:
    """Every mutant ``module`` defines, in the order it defines them: what a pipeline attaches
    to a stage (``Pipeline(..., mutants={"gw": declared(stages.mutants.gw)})``)."""
    return tuple(v for v in vars(module).values() if isinstance(v, Mutant))


# -- what mutants do to machines --------------------------------------------------------------------


def edit(machine: Machine, path: str, old: str, new: str, *, count: int = 1) -> None:
    """Replace ``old`` by ``new`` in file ``path`` of ``machine`` (the first ``count`` times, 0
    for all). A mutant that no longer finds its text is an error of the mutant, not a kill:
    it says so, so that a configuration change cannot turn it into a silent no-op."""
    text = read(machine, path)
    if old not in text:
        raise HarnessError(f"{machine.name}:{path} does not contain {old!r}: the mutant no longer "
                           "applies to this configuration; update it")
    write(machine, path, text.replace(old, new, count if count > 0 else -1))


def read(machine: Machine, path: str) -> str:
    """The text of ``path`` in ``machine``."""
    return run(machine, f"cat {shlex.quote(path)}")


def write(machine: Machine, path: str, text: str) -> None:
    """Replace the content of ``path`` in ``machine`` (its owner and mode are kept)."""
    run(machine, f"cat > {shlex.quote(path)}", input=text)


def run(machine: Machine, command: str, input: str | None = None) -> str:
    """`Machine.succeed` for a mutant: its failure is the mutant's, a harness error (broken),
    never an assertion that could be counted as a kill."""
    try:
        return machine.succeed(command, input=input)
    except CheckFailed as exc:
        raise HarnessError(f"mutant command failed: {exc}") from None
