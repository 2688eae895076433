"""Snapshots as files: export one to a portable bundle, import it into another store.

A bundle is a zstd-compressed tar stream::

    bundle.json              format, harness version, snapshot name, stage, key, members,
                             and each member's base in the stage snapshot (``bases``)
    members/<member>.btrfs   one btrfs send stream per member; all but the first are sent
                             relative to the first (siblings cloned from one base share most
                             of their blocks, so this roughly halves the bundle)
    changes/<member>.tar     or, in an incremental bundle, what each member changed since
                             the stage snapshot it was restored from (`harness.machines.treediff`):
                             since its own root there, or, for a machine that booted a tree
                             it shared (a seat of a room), since that tree
    evidence/...             a failed test's evidence, when the snapshot carries it
    checksums.json           sha256 of every entry above: written last, so a truncated
                             bundle has none and is refused

A kept failure (whose manifest names the snapshot its lab came ``from``, and the tree each
machine that booted one ``shares``) is exported incrementally: a few MB instead of a whole
lab. Importing it needs a snapshot of the same stage and key in the receiving store, built
there or imported (`MissingParent` says which).

`load()` reads the whole file and checks every checksum *before* anything is received:
a corrupt or truncated bundle leaves the store untouched. The snapshot then appears
in one rename, like a built one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness import __version__
from harness.core import proc
from harness.core.errors import HarnessError, present
from harness.core.log import logger, step
from harness.core.names import SnapshotRef, WorkOwner, check_name
from harness.machines import treediff
from harness.machines.store import EVIDENCE, Snapshot, Store

FORMAT = 3  # 3: ``bases`` (a seat's changes are to its tree); 2: incremental; 1: whole only
READS = (1, 2, 3)
HEADER = "bundle.json"
CHECKSUMS = "checksums.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Header:
    """What a bundle holds, as read from its first entry."""

    ref: SnapshotRef
    members: tuple[str, ...]
    meta: dict[str, Any]
    harness: str
    parent: SnapshotRef | None = None  # incremental: the stage snapshot its members changed from
    bases: Mapping[str, str] = field(default_factory=dict)  # member -> the parent's, if another


class MissingParent(HarnessError):
    """An incremental bundle's stage snapshot is not in the receiving store."""

    def __init__(self, path: Path, parent: SnapshotRef) -> None:
        stage = parent.group
        super().__init__(f"{path} holds changes to snapshot {parent}, which this store lacks: "
                         f"build that stage first (`harness build --until {stage}` from a checkout "
                         "of the same stages), import it, or ask for a whole bundle "
                         "(`harness export --full`)")
        self.parent = parent


def _sha256(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def bases(snapshot: Snapshot) -> dict[str, str]:
    """Each member of kept failure ``snapshot`` and the member of its stage snapshot it began
    as: itself, or, for a machine that booted a tree it shared (a seat of a room: the stage
    snapshot stores no root for it), that tree, which the manifest names in ``shares``."""
    shares = snapshot.meta.get("shares") or {}
    return {member: str(shares.get(member, member)) for member in snapshot.members}


def parent_of(store: Store, snapshot: Snapshot) -> tuple[Snapshot | None, str]:
    """The stage snapshot ``snapshot`` was restored from, if the store still has it and it holds
    every member's base (`bases`): what an incremental bundle is relative to. Else None, and
    for a kept failure, why not (it is exported whole)."""
    name = snapshot.meta.get("from")
    if not name:
        return None, ""
    parent = store.get(SnapshotRef.parse(str(name)))
    if parent is None:
        return None, f"its stage snapshot {name} is not in {store.root}"
    missing = sorted({base for base in bases(snapshot).values() if base not in parent.members})
    if missing:
        return None, f"its stage snapshot {name} has no {', '.join(missing)}"
    return parent, ""


def save(store: Store, snapshot: Snapshot, target: Path, *, full: bool = False) -> Path:
    """Write ``snapshot`` as a bundle at ``target`` (first as ``target.partial``, renamed when
    complete: a bundle that exists is whole). A kept failure whose parent is in the store is
    written incrementally, unless ``full``."""
    partial = target.with_name(target.name + ".partial")
    parent, why = (None, "") if full else parent_of(store, snapshot)
    if why:
        logger.warning("export %s: whole, not as changes (%s)", snapshot.name, why)
    based = {m: b for m, b in bases(snapshot).items() if m != b} if parent else {}
    scratch = store.staging("export")  # send streams land on the store's disk, one at a time
    header = {"format": FORMAT, "harness": __version__, "name": snapshot.name,
              "members": list(snapshot.members), "meta": dict(snapshot.meta), "exported": time.time(),
              "parent": parent.name if parent else None, "bases": based}
    sums: dict[str, str] = {}
    try:
        with open(partial, "wb") as out, proc.spawn(["zstd", "-q", "-T0", "-3", "-c"],
                                                    stdin=subprocess.PIPE, stdout=out.fileno()) as zstd:
            with tarfile.open(fileobj=present(zstd.stdin, "zstd's input"), mode="w|") as tar:
                _add_bytes(tar, HEADER, json.dumps(header, indent=2).encode(), sums)
                first = snapshot.members[0] if snapshot.members else None
                for member in snapshot.members:
                    if parent is not None:
                        base = based.get(member, member)
                        with step(f"export {snapshot.name}: changes of {member} since "
                                  f"{parent.name}:{base}"):
                            changes = treediff.diff(parent.member(base), snapshot.member(member))
                            packed = treediff.pack(changes, snapshot.member(member),
                                                   scratch / f"{member}.tar")
                            _add_file(tar, f"changes/{member}.tar", packed, sums)
                            packed.unlink()
                        continue
                    with step(f"export {snapshot.name}: send {member}"):
                        stream = scratch / f"{member}.btrfs"
                        with open(stream, "wb") as handle:
                            sibling = snapshot.member(first) if first and member != first else None
                            store.send(snapshot.member(member), handle, sibling)
                        _add_file(tar, f"members/{member}.btrfs", stream, sums)
                        stream.unlink()
                evidence = snapshot.path / EVIDENCE
                for file in sorted(evidence.rglob("*")) if evidence.is_dir() else []:
                    if file.is_file():
                        _add_file(tar, f"{EVIDENCE}/{file.relative_to(evidence)}", file, sums)
                _add_bytes(tar, CHECKSUMS, json.dumps(sums, indent=2).encode(), {})
            present(zstd.stdin, "zstd's input").close()
            if zstd.wait() != 0:
                raise HarnessError(f"zstd failed writing {partial}")
        os.rename(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        store.remove_staging(scratch)
    return target


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, sums: dict[str, str]) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))
    sums[name] = hashlib.sha256(data).hexdigest()


def _add_file(tar: tarfile.TarFile, name: str, path: Path, sums: dict[str, str]) -> None:
    with open(path, "rb") as handle:
        sums[name] = _sha256(handle)
    info = tar.gettarinfo(str(path), arcname=name)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    with open(path, "rb") as handle:
        tar.addfile(info, handle)


@contextlib.contextmanager
def _entries(path: Path) -> Iterator[Iterator[tuple[tarfile.TarInfo, IO[bytes]]]]:
    """The entries of bundle ``path``, streamed; any damage raises a `HarnessError` naming the file."""
    if not path.is_file():
        raise HarnessError(f"no bundle at {path}: give the file `harness export` wrote")
    with open(path, "rb") as raw, proc.spawn(["zstd", "-q", "-d", "-c"], stdin=raw.fileno()) as unzstd:
        output = present(unzstd.stdout, "zstd's output")

        def walk() -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
            with tarfile.open(fileobj=output, mode="r|") as tar:
                for info in tar:
                    handle = tar.extractfile(info) if info.isfile() else None
                    if handle is not None:
                        yield info, handle
            if unzstd.wait() != 0:
                said = present(unzstd.stderr, "zstd's errors").read().decode(errors="replace")
                detail = said.strip().splitlines()
                raise HarnessError(f"{path} is truncated or corrupt (zstd: "
                                   f"{detail[-1] if detail else 'failed'}): nothing was imported; "
                                   "export it again or copy it whole")

        try:
            yield walk()
        except (tarfile.TarError, OSError, EOFError) as exc:  # raised while an entry is read
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise  # writing, not reading, failed: the caller says the store is full
            raise HarnessError(f"{path} is truncated or corrupt ({exc}): nothing was imported; "
                               "export it again or copy it whole") from None


def verify(path: Path) -> Header:
    """Read all of bundle ``path`` and check it: format, header, every checksum, nothing missing."""
    header: Header | None = None
    sums: dict[str, str] = {}
    listed: dict[str, str] | None = None
    with _entries(path) as entries:
        for info, handle in entries:
            if info.name == CHECKSUMS:
                listed = json.loads(handle.read())
                continue
            if header is None:
                header = _header(path, info, handle.read(), sums)
                continue
            sums[info.name] = _sha256(handle)
    if header is None or listed is None:
        raise HarnessError(f"{path} is truncated or corrupt (it ends before its checksums): "
                           "nothing was imported; export it again or copy it whole")
    wrong = sorted(n for n in set(sums) | set(listed) if sums.get(n) != listed.get(n))
    if wrong:
        raise HarnessError(f"{path} is corrupt: checksum mismatch or missing entry for "
                           f"{', '.join(wrong[:5])}: nothing was imported; export it again")
    kind = "changes/{}.tar" if header.parent else "members/{}.btrfs"
    missing = [m for m in header.members if kind.format(m) not in sums]
    if missing:
        raise HarnessError(f"{path} lacks members {', '.join(missing)}: nothing was imported")
    return header


def _header(path: Path, info: tarfile.TarInfo, data: bytes, sums: dict[str, str]) -> Header:
    if info.name != HEADER:
        raise HarnessError(f"{path} is not a harness bundle (first entry {info.name!r}, "
                           f"not {HEADER}): give a file written by `harness export`")
    try:
        raw = json.loads(data)
        fmt = raw["format"]
        if fmt not in READS:
            raise HarnessError(f"{path} has bundle format {fmt}; this harness ({__version__}) reads "
                               f"formats {', '.join(map(str, READS))}: import it with the harness "
                               f"version that exported it ({raw.get('harness')})")
        parent = raw.get("parent")
        header = Header(SnapshotRef.parse(check_name(raw["name"])), tuple(raw["members"]),
                        dict(raw["meta"]), str(raw["harness"]),
                        SnapshotRef.parse(check_name(parent)) if parent else None,
                        {str(m): str(b) for m, b in (raw.get("bases") or {}).items()})
    except (ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"{path} has a malformed {HEADER} ({exc}): export it again") from None
    sums[HEADER] = hashlib.sha256(data).hexdigest()
    return header


def load(store: Store, path: Path) -> Snapshot:
    """Import bundle ``path`` into ``store``: verified whole first, received, then published."""
    with step(f"import {path.name}: verify"):
        header = verify(path)
    if store.exists(header.ref):
        raise HarnessError(f"snapshot {header.ref} is already in {store.root}: nothing to import "
                           f"(remove it first with `harness gc` or `harness rm {header.ref}`)")
    parent = store.get(header.parent) if header.parent else None
    if header.parent and parent is None:
        raise MissingParent(path, header.parent)
    staged = store.staging("import")
    try:
        with _entries(path) as entries:
            for info, handle in entries:
                if info.name.startswith("changes/") and parent is not None:
                    member = Path(info.name).stem
                    base = header.bases.get(member, member)
                    with step(f"import {header.ref}: {member} from {parent.name}:{base} and its changes"):
                        _rebuild(store, parent.member(base), handle, staged / member)
                elif info.name.startswith("members/"):
                    with step(f"import {header.ref}: receive {Path(info.name).stem}"):
                        _receive(store, handle, staged)
                elif info.name.startswith(f"{EVIDENCE}/"):
                    target = staged / treediff.inside(info.name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with open(target, "wb") as out:
                        while chunk := handle.read(_CHUNK):
                            out.write(chunk)
    except BaseException as exc:
        store.remove_staging(staged)
        full = store.full(exc) if isinstance(exc, OSError) else None
        if full is not None:
            raise full from exc
        raise
    meta = {**header.meta, "imported": time.time(), "imported_from": str(path),
            "imported_on": str(header.parent) if header.parent else None}
    return store.install(staged, header.ref, meta)


def _rebuild(store: Store, base: Path, changes: IO[bytes], target: Path) -> None:
    """``target`` (read-only): a clone of ``base`` with a changes tar applied."""
    owner = str(WorkOwner("import", target.name, os.getpid(), secrets.token_hex(2)))
    work = store.clone(base, store.work_path(owner, target.name))
    try:
        with tempfile.TemporaryFile(dir=target.parent) as spool:  # in the staging directory
            shutil.copyfileobj(changes, spool, _CHUNK)
            spool.seek(0)
            treediff.apply(spool, work)
        store.freeze(work, target)
    finally:
        store.release(owner)


def _receive(store: Store, handle: IO[bytes], staged: Path) -> None:
    # btrfs receive wants a file descriptor: spool through an unnamed temporary file on the
    # store's filesystem (streams are hundreds of MB; memory is not the place).
    with tempfile.TemporaryFile(dir=staged.parent) as spool:
        while chunk := handle.read(_CHUNK):
            spool.write(chunk)
        spool.seek(0)
        store.receive(spool, staged)
