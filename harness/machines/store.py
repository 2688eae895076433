"""btrfs subvolumes and the published snapshots built from them.

Layout of a store root (any directory on btrfs)::

    snapshots/<name>/           a published snapshot: a plain directory holding one read-only
        manifest.json           subvolume per member (machine root) and a manifest
        <member>/
    work/<owner>/<member>       writable subvolumes: machine roots of running labs and builds
    .tmp/<name>.<pid>.<rand>/   snapshots being published

Publishing is atomic: the snapshot is assembled under ``.tmp/`` and renamed into
``snapshots/`` only when complete (btrfs refuses to move a read-only subvolume between
directories, but a plain directory holding them renames in one step). Replacing a
published snapshot (a rebuild) swaps the new one in with one ``renameat2(RENAME_EXCHANGE)``
and only then deletes the old one: at every instant the name holds a whole snapshot,
the old or the new. A crash leaves at most a ``.tmp`` entry (unfinished, or the replaced
snapshot), which the next `Store.sweep()` removes once its owner is dead.
A snapshot is named by a `SnapshotRef` (``bootstrap/3f2a...``, ``failed/test_x``), parsed from
the directory listing (`Store.snapshots`) and nowhere else in the store; its parts are of
``[a-z0-9._-]``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.core import proc
from harness.core.errors import HarnessError, UsageError, present
from harness.core.log import logger
from harness.core.names import SnapshotRef, WorkOwner, check_name
from harness.core.settings import DEFAULT_IMAGE_SIZE
from harness.machines.volumes import (
    DEFAULT_IMAGE,
    exchange,
    filesystem_of,
    is_btrfs,
    is_subvolume,
    locked,
    mountinfo,
    require_btrfs_progs,
    require_root,
    resolve_root,
)

MANIFEST = "manifest.json"
EVIDENCE = "evidence"  # a plain directory beside the members: files, not a machine


@dataclass(frozen=True)
class Usage:
    """Disk use of a subvolume or snapshot in bytes: all it references, what only it holds."""

    total: int
    exclusive: int


@dataclass(frozen=True)
class Snapshot:
    """A published, read-only snapshot: what it is (`ref`), its directory, members and manifest."""

    ref: SnapshotRef
    path: Path
    members: tuple[str, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Its name as text (``gw/1a2b...``): for messages, manifests and command lines."""
        return str(self.ref)

    @property
    def created(self) -> float:
        """When it was published (seconds since the epoch)."""
        return float(self.meta.get("created", 0.0))

    def member(self, name: str) -> Path:
        """The read-only subvolume of member ``name`` (a machine root)."""
        if name not in self.members:
            raise UsageError(f"snapshot {self.name} has no member {name!r}; it has: "
                             f"{', '.join(self.members) or 'none'}")
        return self.path / name


class Store:
    """A btrfs directory holding published snapshots and working subvolumes.

    The constructor only checks; nothing is created until a method needs it.

    >>> store = Store(Path("/var/lib/harness/store"))
    >>> base = store.get(SnapshotRef.parse("bootstrap/1a2b"))
    >>> root = store.clone(base.member("base"), store.work_path("lab1", "gw"))
    """

    def __init__(self, root: Path) -> None:
        require_root()
        require_btrfs_progs()
        if not root.is_dir():
            raise HarnessError(f"store {root} does not exist: create it on a btrfs filesystem, "
                               "or leave --store unset to use the embedded image")
        if not is_btrfs(root):
            kind = filesystem_of(root.resolve(), mountinfo())[1] or "unknown"
            raise HarnessError(f"store {root} is on {kind}, not btrfs: give a btrfs directory "
                               "with --store/HARNESS_STORE, or unset it to use the embedded image")
        self.root = root.resolve()

    # -- subvolumes -------------------------------------------------------------------------

    def _btrfs(self, *args: str) -> proc.Result:
        return proc.run(["btrfs", *args])

    def create(self, path: Path) -> Path:
        """Create an empty writable subvolume at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._btrfs("subvolume", "create", str(path))
        return path

    def clone(self, source: Path, path: Path) -> Path:
        """A writable snapshot of ``source`` at ``path`` (copy-on-write: milliseconds)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._btrfs("subvolume", "snapshot", str(source), str(path))
        return path

    def freeze(self, source: Path, path: Path) -> Path:
        """A read-only snapshot of ``source`` at ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._btrfs("subvolume", "snapshot", "-r", str(source), str(path))
        return path

    def delete(self, path: Path) -> None:
        """Delete subvolume ``path`` and any subvolume nested in it; a missing path is not an error.

        Nested ones exist because systemd-tmpfiles inside a machine may create subvolumes."""
        self.delete_all([path])

    def delete_all(self, paths: Sequence[Path]) -> None:
        """Delete subvolumes ``paths`` (plain directories too), nested subvolumes included.

        One ``btrfs subvolume delete`` for all of them first; btrfs refuses a subvolume that
        holds another, and only those are then searched for what they hold (a walk of a whole
        root costs a tenth of a second, the common case none)."""
        present = [p for p in paths if p.exists()]
        subvolumes = [p for p in present if is_subvolume(p)]
        if subvolumes:
            proc.run(["btrfs", "subvolume", "delete", *map(str, subvolumes)], check=False)
        for path in present:
            if not path.exists():
                continue
            nested = [Path(d) / n for d, names, _ in os.walk(path) for n in names
                      if is_subvolume(Path(d) / n)]
            for sub in sorted(nested, key=lambda p: len(p.parts), reverse=True):
                self._btrfs("subvolume", "delete", str(sub))
            if is_subvolume(path):
                self._btrfs("subvolume", "delete", str(path))
            else:
                shutil.rmtree(path)

    def usage(self, path: Path) -> Usage:
        """Bytes ``path`` references and bytes only it holds (``btrfs filesystem du``)."""
        out = self._btrfs("filesystem", "du", "-s", "--raw", str(path)).stdout.splitlines()
        total, exclusive, *_ = out[-1].split()
        return Usage(int(total), int(exclusive))

    def full(self, error: BaseException) -> HarnessError | None:
        """If ``error`` came from this store running out of space, the error to raise instead:
        one that says so and what to do; else None."""
        nospace = "No space left on device" in str(error) or (
            isinstance(error, OSError) and error.errno == errno.ENOSPC)
        usage = shutil.disk_usage(self.root)
        if not nospace and usage.free > usage.total // 50:
            return None
        return HarnessError(
            f"store {self.root} is full ({usage.free // 2**20} MiB free of {usage.total // 2**20} MiB): "
            "the published snapshots are intact; free space with `harness gc` (old stage keys) "
            "or `harness gc --failed`, or give a bigger store (`harness --store-size SIZE "
            "setup-host` grows the embedded image, or --store on a larger btrfs)")

    # -- working subvolumes -------------------------------------------------------------------

    def work_path(self, owner: str, member: str) -> Path:
        """Where ``owner`` (a lab or a build) keeps its writable copy of ``member``."""
        return self.root / "work" / owner / member

    def release(self, owner: str) -> None:
        """Delete every working subvolume of ``owner``."""
        top = self.root / "work" / owner
        if top.exists():
            entries = sorted(top.iterdir())
            self.delete_all([e for e in entries if e.is_dir() and not e.is_symlink()])
            for entry in entries:  # e.g. the image lock ".#<member>.lck" nspawn keeps beside a root
                if not entry.is_dir() or entry.is_symlink():
                    entry.unlink(missing_ok=True)  # an exiting nspawn may remove its lock first
            top.rmdir()

    def owners(self) -> list[str]:
        """Owners (labs, builds) that hold working subvolumes now."""
        top = self.root / "work"
        return sorted(p.name for p in top.iterdir()) if top.exists() else []

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the store-wide lock ``name`` (e.g. a stage): concurrent builders take turns, and
        one that has to wait says for what and for whom."""
        with locked(self.root / ".locks" / f"{check_name(name).replace('/', '+')}.lock", name):
            yield

    # -- published snapshots --------------------------------------------------------------------

    def log_of(self, ref: SnapshotRef) -> Path:
        """Where the build of snapshot ``ref`` writes its lines: ``logs/<stage>/<key>.log``."""
        return self.root / "logs" / ref.group / f"{ref.key}.log"

    def path_of(self, ref: SnapshotRef) -> Path:
        """Directory where snapshot ``ref`` is or would be published."""
        return self.root / "snapshots" / check_name(str(ref))

    def get(self, ref: SnapshotRef) -> Snapshot | None:
        """The published snapshot ``ref``, or None."""
        path = self.path_of(ref)
        try:
            meta = json.loads((path / MANIFEST).read_text())
        except FileNotFoundError:
            return None
        return Snapshot(ref, path, tuple(meta.get("members", ())), meta)

    def exists(self, ref: SnapshotRef) -> bool:
        """Whether snapshot ``ref`` is published."""
        return self.get(ref) is not None

    def snapshots(self) -> list[Snapshot]:
        """Every published snapshot, sorted by name."""
        top = self.root / "snapshots"
        found = []
        # names are <group>/<key>: never walk into the machine roots below them
        for manifest in sorted(top.glob(f"*/*/{MANIFEST}")) if top.exists() else []:
            snap = self.get(SnapshotRef.parse(manifest.parent.relative_to(top).as_posix()))
            if snap is not None:
                found.append(snap)
        return found

    def staging(self, label: str) -> Path:
        """A fresh directory under ``.tmp/`` to assemble a snapshot in (`sweep` removes it if
        this process dies before `install`)."""
        tmp = self.root / ".tmp" / f"{label.replace('/', '+')}.{os.getpid()}.{secrets.token_hex(3)}"
        tmp.mkdir(parents=True)
        return tmp

    def install(self, staged: Path, ref: SnapshotRef, meta: Mapping[str, Any], *,
                replace: bool = False) -> Snapshot:
        """Publish the assembled directory ``staged`` (read-only members, maybe evidence) as
        snapshot ``ref`` with manifest ``meta``: one rename. On failure ``staged`` is discarded.

        With ``replace``, a snapshot already published as ``ref`` is swapped out in the same
        step and deleted afterwards (the caller holds the name's lock)."""
        name = str(ref)
        final = self.path_of(ref)
        try:
            members = sorted(p.name for p in staged.iterdir() if is_subvolume(p))
            manifest = {**meta, "name": name, "members": members,
                        "created": meta.get("created", time.time())}
            (staged / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                if replace and final.exists():
                    exchange(staged, final)  # staged now holds the old snapshot
                else:
                    os.rename(staged, final)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                raise HarnessError(f"snapshot {name} is already published: "
                                   f"remove it first (`harness rm {name}`)") from exc
        except BaseException:
            self._discard(staged)
            raise
        if staged.exists():  # the replaced snapshot: published over already, so best effort
            try:
                self._discard(staged)
            except (OSError, HarnessError) as exc:
                logger.warning("could not delete the snapshot %s replaced (%s): the next run's "
                               "sweep will", name, exc)
        return present(self.get(ref), f"snapshot {name}, just published")

    def publish(self, ref: SnapshotRef, members: Mapping[str, Path], meta: Mapping[str, Any],
                evidence: Path | None = None, *, replace: bool = False) -> Snapshot:
        """Publish read-only snapshots of ``members`` (name → subvolume) as snapshot ``ref``.

        ``evidence``: a directory of files copied along (a failed test's journals, pcaps...).
        Atomic: readers see the whole snapshot or none of it. Raises `HarnessError` if
        ``ref`` is already published (a concurrent builder won), unless ``replace``: then
        the new snapshot takes the old one's place in one step, and the old one is deleted.
        """
        tmp = self.staging(check_name(str(ref)))
        try:
            for member, source in members.items():
                self.freeze(source, tmp / member)
            if evidence is not None:
                shutil.copytree(evidence, tmp / EVIDENCE)
        except BaseException:
            self._discard(tmp)
            raise
        # Published now: a "created" copied along from another snapshot's manifest is dropped.
        return self.install(tmp, ref, {k: v for k, v in meta.items() if k != "created"},
                            replace=replace)

    # -- moving snapshots between stores (btrfs send / receive) ------------------------------------

    def send(self, member: Path, out: IO[bytes], parent: Path | None = None) -> None:
        """Write the btrfs send stream of read-only subvolume ``member`` to ``out``; with
        ``parent`` (present on the receiving side first), only what differs from it."""
        argv = ["btrfs", "send", "-q", *(["-p", str(parent)] if parent else []), str(member)]
        done = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, env=proc.host_env())
        if done.returncode != 0:
            raise HarnessError(proc.describe_failure(argv, done.returncode, done.stderr.decode()))

    def receive(self, stream: IO[bytes], directory: Path) -> None:
        """Receive one btrfs send stream into ``directory`` (a staging directory)."""
        argv = ["btrfs", "receive", "-q", str(directory)]
        done = subprocess.run(argv, stdin=stream, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=proc.host_env())
        if done.returncode != 0:
            raise HarnessError(proc.describe_failure(argv, done.returncode, done.stderr.decode()))

    def remove(self, ref: SnapshotRef) -> None:
        """Delete published snapshot ``ref`` and its build log: first unpublish it (rename),
        then free its space."""
        path = self.path_of(ref)
        self.log_of(ref).unlink(missing_ok=True)
        if not path.exists():
            return
        doomed = self.root / ".tmp" / f"deleting.{os.getpid()}.{secrets.token_hex(3)}"
        doomed.parent.mkdir(parents=True, exist_ok=True)
        os.rename(path, doomed)
        self._discard(doomed)
        if path.parent != self.root / "snapshots":
            with contextlib.suppress(OSError):  # still holds other snapshots (other keys)
                path.parent.rmdir()

    def remove_staging(self, directory: Path) -> None:
        """Delete a staging directory and every subvolume in it."""
        self._discard(directory)

    def _discard(self, directory: Path) -> None:
        if directory.is_file() or directory.is_symlink():  # a stray file (a spool) in .tmp
            directory.unlink()
            return
        if not directory.exists():
            return
        entries = list(directory.iterdir())
        self.delete_all([e for e in entries if e.is_dir() and not e.is_symlink()])
        for entry in entries:
            if entry.exists() or entry.is_symlink():
                entry.unlink()
        directory.rmdir()

    def sweep(self) -> list[str]:
        """Remove unfinished publishes, imports and base builds whose process is gone; return
        what was removed."""
        removed = []
        for owner in self.owners():
            held = WorkOwner.parse(owner)  # a build, an import, a kept failure: not a lab
            if held is not None and not proc.alive(held.pid):
                self.release(owner)
                removed.append(f"work/{owner}")
        top = self.root / ".tmp"
        for entry in sorted(top.iterdir()) if top.exists() else []:
            parts = entry.name.rsplit(".", 2)
            pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0
            if pid and proc.alive(pid):
                continue
            self._discard(entry)
            removed.append(entry.name)
        return removed


def open_store(given: str | None = None, *, image: Path = DEFAULT_IMAGE,
               size: str = DEFAULT_IMAGE_SIZE) -> Store:
    """The store to use, checked (root, btrfs-progs, btrfs) and swept of dead publishes."""
    require_root()
    require_btrfs_progs()
    root = resolve_root(given, image, size)
    if not given:
        root.mkdir(exist_ok=True)
    store = Store(root)
    store.sweep()
    return store
