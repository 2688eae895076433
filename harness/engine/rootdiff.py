"""What a stage's steps changed in a machine's root, in words: ``~ var/www/html/index.html``.

`harness.machines.treediff` finds the entries that differ between two roots by their
signature (type, mode, owner, size, modification time, link target); this keeps what a step
did: an entry added or removed, or one whose type, mode, owner, content or link target
differs. A file written again with the same content is no change, nor is a directory's
modification time, and the files every running machine writes on its own (logs, caches,
systemd's state, byte code, temporary files) are left out (`NOISE`). `harness apply` says
this of a running machine before and after its steps ran again (`harness.engine.apply`), and
of a machine's root in a stage's snapshot against the same stage built again
(`harness.engine.swap`).
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from harness.machines import treediff

# Paths (relative to a root) that a running machine changes on its own: not a step's doing.
NOISE = ("var/log/", "var/cache/", "var/lib/systemd/", "var/tmp/", "tmp/", "root/.ansible/",
         "var/lib/apt/", "var/lib/dhcp/")


def is_noise(path: str) -> bool:
    return path.endswith(".pyc") or "/__pycache__" in f"/{path}" or \
        any(f"{path}/".startswith(prefix) for prefix in NOISE)


def real_changes(before: Path, after: Path, found: treediff.Changes) -> list[str]:
    """The entries of ``found`` a step made (see the module's documentation), each with a
    ``+`` (new), ``-`` (removed) or ``~`` (different)."""
    said = [f"- {p}" for p in found.removed if not is_noise(p)]
    for path in found.changed:
        if is_noise(path):
            continue
        try:
            old = (before / path).lstat()
        except (FileNotFoundError, NotADirectoryError):
            said.append(f"+ {path}")
            continue
        with contextlib.suppress(FileNotFoundError):
            new = (after / path).lstat()
            same = (stat.S_IFMT(old.st_mode), old.st_mode, old.st_uid, old.st_gid) == \
                (stat.S_IFMT(new.st_mode), new.st_mode, new.st_uid, new.st_gid)
            if same and stat.S_ISDIR(new.st_mode):
                continue  # entries added or removed in it are listed themselves
            if same and stat.S_ISLNK(new.st_mode) and os.readlink(before / path) == os.readlink(after / path):
                continue
            if same and stat.S_ISREG(new.st_mode) and filecmp.cmp(before / path, after / path, shallow=False):
                continue
            said.append(f"~ {path}")
    return sorted(said, key=lambda line: line[2:])




def between(before: Path, after: Path, skip: Iterable[str] = ()) -> list[str]:
    """What changed from root ``before`` to root ``after`` (`real_changes` of their
    `treediff.diff`), leaving out the subtrees at ``skip`` (a running machine's mount points)."""
    return real_changes(before, after, treediff.diff(before, after, skip))
