"""A lean lab: units and generators a machine does not need in a lab, masked in its root.

A lab's resume is bound by the CPU its machines burn while they boot (bench/README.md, "Boot
CPU by unit"), and a third of a machine's boot is its PID 1: the generators it runs, the units
it loads and starts. Many of them serve hardware or a long life the lab's machines never
have: timers for jobs days away (apt, fstrim, e2scrub), generators for encrypted disks,
hibernation and the kernel command line, password agents for a console no one types into.
A stage names them in its ``lean`` field; the build masks each one in the root it builds,
before the root first boots, so every boot from the snapshot skips them, as does the build's
own lab. The masks are part of the stage's key (a stage's definition), and a machine that
needs a masked unit back unmasks it in a later stage (a drop-in cannot: a mask wins).

A unit is masked as ``systemctl mask`` does it, ``/etc/systemd/system/<unit>`` -> /dev/null;
a generator (a name ending in ``-generator``) by the same link in
``/etc/systemd/system-generators/``, which systemd reads before ``/lib``'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from harness.core.errors import HarnessError

UNIT = re.compile(r"[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|path|mount|automount|swap|target|slice)")
GENERATOR = re.compile(r"[A-Za-z0-9_.-]+-generator")


def invalid(names: Iterable[str]) -> list[str]:
    """The entries of ``names`` that are neither a unit name (``fstrim.timer``) nor a
    generator's (``systemd-gpt-auto-generator``)."""
    return [n for n in names if not (UNIT.fullmatch(n) or GENERATOR.fullmatch(n))]


def link(root: Path, name: str) -> Path:
    """Where the mask of unit or generator ``name`` lives in ``root``."""
    folder = "system-generators" if GENERATOR.fullmatch(name) else "system"
    return root / "etc/systemd" / folder / name


def mask(root: Path, names: Iterable[str]) -> None:
    """Mask every unit and generator of ``names`` in the (unbooted) root ``root``. A unit the
    root defines in /etc itself (a file, not a link) is refused: masking it would erase it."""
    for name in names:
        path = link(root, name)
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            raise HarnessError(f"{path} is a unit of the stage's own: `lean` would erase it; "
                               f"drop {name} from `lean`, or stop writing that file")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/dev/null", path)


def masked(root: Path) -> list[str]:
    """The units and generators masked in ``root`` (links to /dev/null under /etc)."""
    found = []
    for folder in ("system", "system-generators"):
        directory = root / "etc/systemd" / folder
        if directory.is_dir():
            found += [p.name for p in directory.iterdir()
                      if p.is_symlink() and os.readlink(p) == "/dev/null"]
    return sorted(found)
