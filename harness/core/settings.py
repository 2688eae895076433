"""A run's settings, declared once: `SETTINGS`, one row per setting, from which the ``harness``
command's options, the pytest plugin's options and ini keys, and docs/reference.md are made.

Each row names its flag (``--room-size``), its environment variable (``HARNESS_ROOM_SIZE``),
its ini key (``harness_room_size``), its default, its parser and the front ends that take it.
A run resolves them once, into a frozen `RunSettings`, in one order: the option, else the
environment, else the ini, else the default. A bad value is a one-line `UsageError` naming
where it came from (``HARNESS_ROOM_SIZE='many': give a whole number ...``).

The environment carries settings to the processes a run starts (pytest's xdist workers,
`harness mutate`'s pytest runs) and to the inventory, which a pipeline loads when it is
imported: `export` writes the rows marked ``inherited``, `inventory_shape` reads them back.
This module is the only one that reads or writes a ``HARNESS_*`` variable of a setting.

>>> run = resolve({"room_size": "3"}, {"harness_families": "ipv4"}.get, Front.PYTEST, environ={})
>>> (run.room_size, run.families, run.where["families"])
(3, (<Family.IPV4: 'ipv4'>,), 'ini harness_families')
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.core.errors import UsageError
from harness.core.links import Family

DEFAULT_BOOT_TIMEOUT = 60.0  # seconds a machine may take to boot
DEFAULT_IMAGE_SIZE = "32G"  # the store's image file when no btrfs is given: sparse
DEFAULT_CACHE = Path("/var/cache/harness")
DEFAULT_SPARE_LABS = 1
DEFAULT_WARM_LABS = 0


class Front(enum.StrEnum):
    """A front end that takes settings."""

    CLI = "harness"   # the command, harness/cli.py
    PYTEST = "pytest"  # the plugin, harness/plugin.py


# -- parsers: (text, where it came from) -> value; a bad value is one line naming where --------


def size_bytes(size: str) -> int:
    """``32G``, ``512M``, ``1T`` (or with ``iB``: powers of 1024) or a number of bytes, as
    ``truncate -s`` reads them."""
    units = "KMGTP"
    text = size.strip().upper().removesuffix("IB")
    try:
        if text and text[-1] in units:
            return int(text[:-1]) << (10 * (units.index(text[-1]) + 1))
        return int(text)
    except ValueError:
        raise UsageError(f"store size {size!r} is not a size: give one like 64G") from None


def _text(text: str, where: str) -> str:
    return text


def _store_size(text: str, where: str) -> str:
    try:
        size_bytes(text)
    except UsageError:
        raise UsageError(f"{where}={text!r}: give a size like 64G (K, M, G, T: powers of 1024)") from None
    return text


def _pipeline(text: str, where: str) -> str:
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", text):
        raise UsageError(f"{where}={text!r}: give a module name (a module importable from the "
                         "rootdir that defines PIPELINE)")
    return text


def room_size(text: str, where: str) -> int:
    """Machines per room: a whole number, 1 or more."""
    if not text.strip().isdigit() or int(text) < 1:
        raise UsageError(f"{where}={text!r}: give a whole number of machines per room, 1 or more")
    return int(text)


def families(text: str, where: str) -> tuple[Family, ...]:
    """The families a run keeps: ``ipv4``, ``ipv6`` or both, comma-separated, in `Family` order."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    try:
        kept = {Family(name) for name in names}
    except ValueError:
        kept = set()
    if not kept:
        raise UsageError(f"{where}={text!r}: give ipv4, ipv6 or ipv4,ipv6 (the families the lab keeps)")
    return tuple(f for f in Family if f in kept)


def _seconds(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise UsageError(f"{where}={text!r}: give a number of seconds, more than 0")
    return value


def _count(text: str, where: str) -> int:
    if not text.strip().isdigit():
        raise UsageError(f"{where}={text!r}: give a whole number, 0 to boot each private lab in its test")
    return int(text)


def _warm(text: str, where: str) -> int:
    if not text.strip().isdigit():
        raise UsageError(f"{where}={text!r}: give a whole number of labs to leave warm, 0 for none")
    return int(text)


# -- the table ---------------------------------------------------------------------------------

BOTH = frozenset(Front)


@dataclass(frozen=True)
class Setting:
    """One setting: ``name`` is `RunSettings`' field and the options' destination; the flag,
    the environment variable and the ini key follow from it. A row no front end takes is read
    from the environment alone (no flag, no ini key)."""

    name: str
    parse: Callable[[str, str], Any]
    default: Any
    help: str
    fronts: frozenset[Front] = BOTH
    metavar: str | None = None
    verbs: tuple[str, ...] = ()  # the `harness` verbs that take it; () = the command itself, every verb
    inherited: bool = False      # written into the environment for the processes a run starts
    flag_only: bool = False      # read from its flag alone: no environment variable, no ini key

    @property
    def flag(self) -> str | None:
        return f"--{self.name.replace('_', '-')}" if self.fronts else None

    @property
    def env(self) -> str | None:
        return None if self.flag_only else f"HARNESS_{self.name.upper()}"

    @property
    def ini(self) -> str | None:
        return f"harness_{self.name}" if self.fronts and not self.flag_only else None

    def full_help(self) -> str:
        """The help text with where else the setting is read from: the options' help."""
        if self.env is None:
            return f"{self.help}; this option only"
        return f"{self.help}; env {self.env}" + (f", ini {self.ini}" if self.ini else "")


SETTINGS: tuple[Setting, ...] = (
    Setting("store", _text, None, metavar="DIR",
            help="btrfs directory holding the snapshots; default: /var/lib/machines/harness if "
                 "btrfs, else the embedded image"),
    Setting("store_size", _store_size, DEFAULT_IMAGE_SIZE, metavar="SIZE",
            help=f"size of the embedded store image when it is first created (default "
                 f"{DEFAULT_IMAGE_SIZE}, sparse; `harness setup-host` grows it)"),
    Setting("pipeline", _pipeline, None, metavar="MODULE",
            help="module whose PIPELINE defines the stages (required to use labs)"),
    Setting("room_size", room_size, None, metavar="N", inherited=True,
            help="give every room of the inventory N machines for this run (default: each room's "
                 "own count); each size has its own snapshots"),
    Setting("families", families, None, metavar="LIST", inherited=True,
            help="the IP families the lab keeps for this run: ipv4, ipv6 or ipv4,ipv6 (default: all "
                 "the inventory plans); the inventory is loaded without the others' settings, so "
                 "each choice has its own snapshots"),
    Setting("boot_timeout", _seconds, DEFAULT_BOOT_TIMEOUT, metavar="S", verbs=("build", "up"),
            help=f"seconds a machine may take to boot (default {DEFAULT_BOOT_TIMEOUT:g})"),
    Setting("reports", _text, None, metavar="DIR", verbs=("mutate",),
            help="where allure results, junit.xml and evidence go, and `harness mutate`'s "
                 "mutants.json and each run's output (default: none for pytest, reports for "
                 "`harness mutate`); --alluredir/--junitxml still win"),
    # Its flag only: a mutant left in an exported variable or an ini file would make every run,
    # and `harness mutate`'s check of each kill without a mutant, a mutant run unawares.
    Setting("mutant", _text, None, metavar="NAME", fronts=frozenset({Front.PYTEST}), flag_only=True,
            help="run against labs with mutant NAME applied (a regression a stage declares; "
                 "`harness mutate --list` lists them): the run should fail"),
    Setting("spare_labs", _count, DEFAULT_SPARE_LABS, metavar="N", fronts=frozenset({Front.PYTEST}),
            help="private labs each process keeps booted ahead for fresh_lab tests (default "
                 f"{DEFAULT_SPARE_LABS}); 0 boots each in its test"),
    # Off unless asked: a run that leaves labs running would leave machines behind on a CI host
    # after the job, and in every test of a project that runs pytest in a loop.
    Setting("warm_labs", _warm, DEFAULT_WARM_LABS, metavar="N", fronts=frozenset({Front.PYTEST}),
            help="pristine labs of the target's snapshot kept running for the next run to adopt "
                 "instead of booting: once the shared lab is up, a process of its own boots each "
                 "missing one and leaves it running, the run not waiting for it (default "
                 f"{DEFAULT_WARM_LABS}: none); a run adopts a warm lab whatever this says; `harness "
                 "ls` lists them, `harness destroy` ends them"),
    Setting("cache", lambda text, where: Path(text), DEFAULT_CACHE, fronts=frozenset(),
            help=f"the host's package cache, every .deb fetched once (default {DEFAULT_CACHE})"),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True)
class RunSettings:
    """A run's settings, resolved (`resolve`) and parsed: what every part of the run reads."""

    store: str | None = None
    store_size: str = DEFAULT_IMAGE_SIZE
    pipeline: str | None = None
    room_size: int | None = None
    families: tuple[Family, ...] | None = None
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT
    reports: str | None = None
    mutant: str | None = None
    spare_labs: int = DEFAULT_SPARE_LABS
    warm_labs: int = DEFAULT_WARM_LABS
    cache: Path = DEFAULT_CACHE
    where: Mapping[str, str] = field(default_factory=dict, compare=False)  # name -> its source

    def given(self, name: str) -> str:
        """Setting ``name`` as its source said it, for messages: ``--families=ipv4``."""
        value = getattr(self, name)
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        where = self.where.get(name, "default")
        return f"{where}={text}" if where.startswith("-") else f"{text} ({where})"


assert {f.name for f in dataclasses.fields(RunSettings)} - {"where"} == set(BY_NAME), "a row per field"


def takes(setting: Setting, front: Front, verb: str | None = None) -> bool:
    """Whether ``front`` (for the command: its ``verb``) takes ``setting``'s flag and ini key."""
    if front not in setting.fronts:
        return False
    return front is not Front.CLI or not setting.verbs or verb is None or verb in setting.verbs


def resolve(options: Mapping[str, object], ini: Callable[[str], object], front: Front, *,
            verb: str | None = None, environ: Mapping[str, str] | None = None) -> RunSettings:
    """The settings of a run of ``front``: each the option (in ``options``, by name), else the
    environment, else the ini (``ini(key)``, "" when unset), else the default. A setting
    ``front`` does not take keeps its default; one no front end takes is read from the
    environment alone."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    where: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.fronts and not takes(setting, front, verb):
            continue
        given = options.get(setting.name) if setting.fronts else None
        sources = [(setting.flag or "", given),
                   (setting.env or "", env.get(setting.env) if setting.env else None),
                   (f"ini {setting.ini}", ini(setting.ini) if setting.ini else None)]
        found = next(((w, str(t).strip()) for w, t in sources if t is not None and str(t).strip()), None)
        if found is not None:
            values[setting.name] = setting.parse(found[1], found[0])
            where[setting.name] = found[0]
    return RunSettings(**values, where=where)  # type: ignore[arg-type]


def _as_text(value: object) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def export(run: RunSettings, environ: MutableMapping[str, str] | None = None) -> None:
    """Write ``run``'s inherited settings into the environment (``os.environ`` by default): the
    processes this one starts, and the inventory this one imports, see the same."""
    env = os.environ if environ is None else environ
    for setting in SETTINGS:
        value = getattr(run, setting.name)
        if setting.inherited and setting.env and value is not None:
            env[setting.env] = _as_text(value)


def inherited(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """Setting ``name`` as the environment carries it (`export`, a parent run's), parsed; None
    when it says nothing."""
    setting = BY_NAME[name]
    if setting.env is None:
        return None
    text = (os.environ if environ is None else environ).get(setting.env, "").strip()
    return setting.parse(text, setting.env) if text else None


def inventory_shape() -> tuple[int | None, tuple[Family, ...] | None]:
    """The room size and the families the run's inventory is loaded with (`export`)."""
    return inherited("room_size"), inherited("families")


def package_cache() -> Path:
    """The host's package cache: ``HARNESS_CACHE``, else `DEFAULT_CACHE`."""
    return inherited("cache") or DEFAULT_CACHE


# -- the front ends' options, made from the table ----------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, verb: str | None = None) -> None:
    """Add the command's options to ``parser``: with ``verb`` None, those of the command
    itself; else those only ``verb`` takes."""
    for setting in SETTINGS:
        if Front.CLI in setting.fronts and (setting.verbs == () if verb is None else verb in setting.verbs):
            assert setting.flag is not None
            parser.add_argument(setting.flag, metavar=setting.metavar, default=None,
                                help=setting.full_help())


class _Group(Protocol):
    def addoption(self, *opts: str, **attrs: Any) -> None: ...


def add_options(group: _Group, addini: Callable[..., None]) -> None:
    """Add the plugin's options to its ``group`` and their ini keys (``addini``: pytest's
    ``parser.addini``)."""
    for setting in SETTINGS:
        if takes(setting, Front.PYTEST):
            assert setting.flag is not None
            group.addoption(setting.flag, metavar=setting.metavar, default=None, help=setting.full_help())
            if setting.ini is not None:
                addini(setting.ini, f"{setting.help}; {setting.flag} and {setting.env} win over it",
                       default="")
