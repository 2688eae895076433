"""What changed between two machine roots, carried as a small tar and applied elsewhere.

A kept failure differs from the stage snapshot its lab was restored from by a few files
(logs, leases, a database page): `diff` finds them by comparing the two trees entry by
entry (type, mode, owner, size, modification time, link target), `pack` writes them to a
tar with the list of what was removed, and `apply` replays that on a writable clone of the
same stage's snapshot in another store: built there or imported, it need not be the very
same subvolume (a btrfs incremental receive would insist on that). The same walk also
recovers what a machine wrote to its volatile overlay (a diskless machine), by comparing
its running root with the tree below the overlay.

Applied, the copy equals the newer tree entry by entry, as `diff` compares them, times to
the nanosecond included (tar's own are floats: each entry's exact time travels beside it,
`MTIME_NS`), and the directories it only wrote into keep theirs. Extended attributes are
not carried (tar as Python writes it has none); file capabilities of changed files are
lost, which a kept failure's logs and data do not have.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from harness.core.errors import HarnessError

REMOVED = ".harness-removed.json"  # the tar's last entry: paths to delete before extracting
MTIME_NS = "HARNESS.mtime_ns"  # a PAX header of each entry: its modification time, exactly


@dataclass
class Changes:
    """Entries new or different in the newer tree, and entries only the older one has."""

    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed)


def _signature(st: os.stat_result, path: Path) -> tuple[object, ...]:
    kind = stat.S_IFMT(st.st_mode)
    try:
        target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    except FileNotFoundError:  # a running machine removed it meanwhile
        target = None
    size = st.st_size if not stat.S_ISDIR(st.st_mode) else 0  # a directory's size is btrfs's affair
    return (kind, st.st_mode, st.st_uid, st.st_gid, size, st.st_mtime_ns, st.st_rdev, target)


def _walk(root: Path, skip: frozenset[str], rel: str = "") -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under ``root``, parents first, except the subtrees at ``skip`` (mount points:
    an overlay reports its files on the devices of its layers, so devices cannot tell)."""
    try:
        entries = sorted(os.scandir(root / rel if rel else root), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return
    for entry in entries:
        path = f"{rel}/{entry.name}" if rel else entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if path in skip:
            continue
        yield path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, skip, path)


def diff(old: Path, new: Path, skip: Iterable[str] = ()) -> Changes:
    """What `apply` must do to a copy of ``old`` to make it ``new`` (both trees on one host),
    leaving out the subtrees at relative paths ``skip`` in both."""
    changes = Changes()
    seen: set[str] = set()
    skipped = frozenset(skip)
    for rel, st in _walk(new, skipped):
        seen.add(rel)
        try:
            before = _signature((old / rel).lstat(), old / rel)
        except (FileNotFoundError, NotADirectoryError):
            before = None
        if before != _signature(st, new / rel):
            changes.changed.append(rel)
    gone = {rel for rel, _ in _walk(old, skipped)} - seen
    changes.removed = sorted(r for r in gone if os.path.dirname(r) not in gone)  # top-most only
    return changes


def mount_points(pid: int) -> list[str]:
    """The mount points inside the root of process ``pid`` (relative; its root itself left out):
    what a walk of ``/proc/PID/root`` must not enter (/proc, /sys, /dev, tmpfs, a FUSE home)."""
    points = []
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # \040 for a space...
        if point != "/":
            points.append(point.lstrip("/"))
    return points


def pack(changes: Changes, new: Path, target: Path) -> Path:
    """Write the ``changes`` of tree ``new`` to tar ``target`` (uncompressed: the bundle is)."""
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in changes.changed:
            info = tar.gettarinfo(str(new / rel), arcname=rel)
            info.pax_headers = {MTIME_NS: str((new / rel).lstat().st_mtime_ns)}
            if info.isreg():
                with open(new / rel, "rb") as content:
                    tar.addfile(info, content)
            else:
                tar.addfile(info)
        data = json.dumps(changes.removed).encode()
        info = tarfile.TarInfo(REMOVED)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return target


def inside(name: str) -> str:
    """``name`` if it is a relative path that stays inside the tree it is joined to; else a
    `HarnessError`: a bundle never writes or deletes anything outside its own machines."""
    parts = Path(name).parts
    if not name or Path(name).is_absolute() or ".." in parts:
        raise HarnessError(f"a bundle names {name!r}, outside the machine it belongs to: refused")
    return name


def apply(source: Path | IO[bytes], root: Path) -> None:
    """Replay a `pack`ed tar (a path or an open file) on the writable tree ``root``: remove,
    then write what changed. Any name leading outside ``root`` is refused first."""
    where = {"name": source} if isinstance(source, Path) else {"fileobj": source}
    with tarfile.open(**where) as tar:
        members = [m for m in tar.getmembers() if m.name != REMOVED]
        links = {m.name for m in members if m.issym()}
        for member in members:
            inside(member.name)
            if member.islnk():
                inside(member.linkname)  # a hard link's target is a path in the tree too
            # a real tree has nothing below a symbolic link: a name through one could lead out
            for parent in Path(member.name).parents:
                if str(parent) in links or (root / parent).is_symlink():
                    raise HarnessError(f"a bundle names {member.name!r}, below the symbolic link "
                                       f"{parent}: refused")
        try:
            removed = tar.extractfile(REMOVED)
        except KeyError:
            removed = None
        if removed is None:
            raise HarnessError(f"a changes tar without {REMOVED}: not written by the harness")
        gone = [inside(rel) for rel in json.loads(removed.read())]
        # removing or adding an entry moves its directory's time: put back those of the
        # directories that did not change themselves (the tar carries the others')
        names = {m.name for m in members}
        written = {os.path.dirname(rel) for rel in (*gone, *names)} - names
        times = {rel: (root / rel).lstat() for rel in written if (root / rel).is_dir()}
        for rel in gone:
            _remove(root / rel)
        for member in members:  # a changed file may replace a directory, or the reverse
            existing = root / member.name
            if existing.is_dir() and not existing.is_symlink() and not member.isdir():
                _remove(existing)
            elif existing.is_symlink() or (existing.exists() and not existing.is_dir()):
                existing.unlink()
        # names are checked above; modes (1777 on /tmp...) and owners are the machine's to keep.
        # Python before 3.11.4 (Debian 12's python3 may be 3.11.2) has no filter= and does the same.
        trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        tar.extractall(root, members=members, numeric_owner=True, **trusted)  # type: ignore[arg-type]
        for member in members:  # tar set them to the microsecond at best, and links' not at all
            exact = member.pax_headers.get(MTIME_NS)
            if exact is not None:
                os.utime(root / member.name, ns=(int(exact), int(exact)), follow_symlinks=False)
        for rel, st in times.items():
            os.utime(root / rel, ns=(st.st_atime_ns, st.st_mtime_ns))


def copy_changes(changes: Changes, new: Path, root: Path) -> None:
    """Apply ``changes`` read from tree ``new`` directly to ``root`` (no tar in between)."""
    for rel in changes.removed:
        _remove(root / rel)
    for rel in changes.changed:
        source, target = new / rel, root / rel
        try:
            st = source.lstat()
        except FileNotFoundError:  # a running machine removed it since `diff` saw it
            continue
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            target.unlink()
        elif target.is_dir() and not stat.S_ISDIR(st.st_mode):
            _remove(target)
        if stat.S_ISDIR(st.st_mode):
            target.mkdir(exist_ok=True)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(source), target)
        elif stat.S_ISREG(st.st_mode):
            try:
                shutil.copyfile(source, target, follow_symlinks=False)
            except FileNotFoundError:
                continue
        else:
            os.mknod(target, st.st_mode, st.st_rdev)
        os.lchown(target, st.st_uid, st.st_gid)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(target, stat.S_IMODE(st.st_mode))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    for rel in reversed(changes.changed):  # writing into a directory moved its time again
        try:
            st = (new / rel).lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode) and (root / rel).is_dir():
            os.utime(root / rel, ns=(st.st_atime_ns, st.st_mtime_ns))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
