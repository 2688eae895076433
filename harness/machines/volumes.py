"""btrfs and the mounts a store lives on: which filesystem holds a path, whether a directory
is a subvolume, the embedded image file mounted when the host has no btrfs, the locks that
make creating and mounting it safe against concurrent runs, and an atomic swap of two paths.
What `harness.machines.store` builds on; nothing here knows about snapshots."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from harness.core import proc
from harness.core.errors import HarnessError
from harness.core.log import logger
from harness.core.settings import DEFAULT_IMAGE_SIZE

BTRFS_INSTALL = "apt-get install -y btrfs-progs"
DEFAULT_IMAGE = Path("/var/lib/harness/store.img")
_SUBVOLUME_ROOT_INODE = 256  # every btrfs subvolume's top directory has this inode number
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # <fcntl.h>, <linux/fs.h>


def exchange(a: Path, b: Path) -> None:
    """Swap paths ``a`` and ``b`` in one step (``renameat2(RENAME_EXCHANGE)``): no moment when
    either name is missing. Python's os module has no renameat2; glibc (>= 2.28) has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"renameat2 exchange: {os.strerror(code)}", str(a), None, str(b))


def require_root() -> None:
    """Raise unless running as root: btrfs, namespaces and nspawn all need it."""
    if os.geteuid() != 0:
        raise HarnessError("harness needs root (btrfs, network namespaces, systemd-nspawn): "
                           "run it as root, e.g. `sudo make test`")


def require_btrfs_progs() -> None:
    """Raise with the install command when btrfs-progs is missing."""
    if shutil.which("btrfs", path=proc.PATH) is None:
        raise HarnessError(f"btrfs-progs is not installed: run `{BTRFS_INSTALL}` (or `harness setup-host`)")


def _unescape(field_: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field_)


def filesystem_of(path: Path, mountinfo: str) -> tuple[str, str]:
    """(mount point, filesystem type) of the mount holding ``path``, from /proc/self/mountinfo text.

    The last, longest matching mount point wins: later mounts hide earlier ones.
    """
    target = str(path)
    best = ("", "")
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        point = _unescape(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, right.split()[0])
    return best


def mountinfo() -> str:
    """This process's /proc/self/mountinfo, as `filesystem_of` reads it."""
    return Path("/proc/self/mountinfo").read_text()


def is_btrfs(path: Path) -> bool:
    """Whether ``path`` (which must exist) lies on a btrfs filesystem."""
    return filesystem_of(path.resolve(), mountinfo())[1] == "btrfs"


def is_mountpoint(path: Path) -> bool:
    """Whether something is mounted exactly at ``path``."""
    return filesystem_of(path.resolve(), mountinfo())[0] == str(path.resolve())


def is_subvolume(path: Path) -> bool:
    """Whether ``path`` is the top directory of a btrfs subvolume."""
    try:
        return path.lstat().st_ino == _SUBVOLUME_ROOT_INODE and path.is_dir()
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def locked(path: Path, what: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) while the block runs; a wait
    for another process's lock is logged, naming ``what`` and the holder's pid."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if what is not None:
                logger.info("waiting for the lock on %s, held by %s (another run is building it)",
                            what, holder)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield


def image_lock(image: Path) -> contextlib.AbstractContextManager[None]:
    """The lock every change to the embedded ``image`` (creating, mounting, growing) holds."""
    return locked(image.with_suffix(".lock"))


def mount_image(image: Path, size: str) -> Path:
    """Create (sparse, ``size``) and loop-mount the embedded btrfs image; return its mount point.

    Idempotent and safe against concurrent callers: the image is created and mounted
    under a lock, once. The mount point is the image path without its suffix.
    """
    mountpoint = image.with_suffix("")
    with image_lock(image):
        if is_mountpoint(mountpoint):
            return mountpoint
        if not image.exists():
            partial = image.with_suffix(".partial")
            proc.run(["truncate", "-s", size, str(partial)])
            proc.run(["mkfs.btrfs", "-q", "-L", "harness", str(partial)])
            os.rename(partial, image)
        mountpoint.mkdir(parents=True, exist_ok=True)
        proc.run(["mount", "-o", "loop", str(image), str(mountpoint)])
    return mountpoint


def resolve_root(given: str | None, image: Path = DEFAULT_IMAGE, size: str = DEFAULT_IMAGE_SIZE,
                 machines: Path = Path("/var/lib/machines")) -> Path:
    """Which directory the store lives in.

    ``given`` (``--store``/``HARNESS_STORE``) if set; else ``/var/lib/machines`` when it is
    btrfs; else the embedded image, created and mounted on first use.
    """
    if given:
        return Path(given)
    if machines.is_dir() and is_btrfs(machines):
        return machines / "harness"
    return mount_image(image, size)
