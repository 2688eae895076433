"""What every systemd-nspawn run of the harness shares: its base flags and its cleanup.

The host's PID 1 need not be systemd (a container's, a CI runner's), and without it a plain
``systemd-nspawn --boot`` fails ("Failed to open system bus"), so nspawn runs with
``--register=no --keep-unit``: no machined, no scope. With --keep-unit nspawn makes its ``payload`` and
``supervisor`` cgroups inside the cgroup it was started in, so machines started by one
process would share them (and each machine's systemd would see, and at shutdown kill,
the others' processes). Each nspawn process therefore first joins a cgroup of its own,
``harness/<unit>``, in every hierarchy nspawn uses (`join_cgroup`).

nspawn also keeps per-machine state under ``/run/systemd/nspawn`` that it cannot remove
when /run is not a tmpfs ("Attempted to remove disk file system under .../propagate/NAME");
`forget()` removes that, and the machine's cgroups, after the run.

The host limits many machines run into (inotify instances...) are `harness.machines.limits`'.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.wait import retry

STATE = Path("/run/systemd/nspawn")


CGROUPS = Path("/sys/fs/cgroup")


def cgroups(unit: str) -> list[Path]:
    """The cgroups of machine ``unit``: in the unified hierarchy, and in the named systemd one
    on a hybrid host."""
    if (CGROUPS / "cgroup.controllers").exists():  # unified only
        return [CGROUPS / "harness" / unit]
    return [h / "harness" / unit for h in (CGROUPS / "unified", CGROUPS / "systemd") if h.is_dir()]


def join_cgroup(unit: str, nice: int = 0) -> Callable[[], None]:
    """Create ``unit``'s cgroups; return the function that moves the calling process into them,
    at CPU niceness ``nice`` (to run in the child between fork and exec)."""
    paths = cgroups(unit)
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)

    def join() -> None:
        for path in paths:
            (path / "cgroup.procs").write_text("0")
        if nice:
            os.nice(nice)

    return join


def _remove_cgroup(path: Path) -> None:
    def gone(last_try: bool) -> bool:
        try:
            for directory, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
                os.rmdir(directory)
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            return False  # its last processes are still exiting
        return True

    retry(gone, 5, f"cgroup {path} to empty")


def kill(unit: str) -> None:
    """Kill every process of machine ``unit``, its nspawn gone or not (``cgroup.kill``)."""
    for path in cgroups(unit):
        switch = path / "cgroup.kill"  # unified hierarchy only (kernel 5.14+)
        if switch.exists():
            switch.write_text("1")


def units_with_cgroups(prefix: str) -> list[str]:
    """Machines (nspawn units starting with ``prefix``) that still have cgroups on this host."""
    return sorted({p.name for h in (CGROUPS / "unified", CGROUPS / "systemd", CGROUPS)
                   for p in (h / "harness").glob(f"{prefix}*") if p.is_dir()})


def base_argv(unit: str, root: Path) -> list[str]:
    """``systemd-nspawn`` with the flags every run needs: quiet, unregistered, no host journal."""
    return ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
            f"--machine={unit}", f"--directory={root}", "--link-journal=no", "--timezone=off"]


def enter(leader: int, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside the booted machine whose PID 1 is host pid ``leader``: every one of
    its namespaces (machines are unregistered, so this, not ``machinectl shell``)."""
    return ["nsenter", f"--target={leader}", "--all", "--", *argv]


def boots_read_only(args: tuple[str, ...] | list[str]) -> bool:
    """Whether nspawn flags ``args`` leave the machine's tree untouched: ``--read-only``, or
    ``--volatile`` in any mode but ``no`` (nspawn then mounts the tree read-only and the
    machine writes to a tmpfs). Such machines can boot one tree together: nspawn takes a
    shared lock on a tree it mounts read-only."""
    volatile = [a.partition("=")[2] or "yes" for a in args if a.split("=")[0] == "--volatile"]
    return "--read-only" in args or any(mode != "no" for mode in volatile)


def lock_file(root: Path) -> Path:
    """The image lock nspawn takes on ``root`` (named after its device and inode)."""
    st = os.stat(root)
    return STATE / "locks" / f"inode-{st.st_dev}:{st.st_ino}"


def forget(unit: str, root: Path | None = None) -> None:
    """Remove what nspawn left of machine ``unit`` (and its lock on ``root``), once it exited."""
    with contextlib.suppress(FileNotFoundError):
        (STATE / "propagate" / unit).rmdir()
    if root is not None:
        _unlink_unless_held(lock_file(root))
    for path in cgroups(unit):
        _remove_cgroup(path)


def _unlink_unless_held(lock: Path) -> None:
    """Remove nspawn's image lock ``lock`` unless a machine still holds it: machines booting
    one tree read-only share the lock, and one of them exiting must not free it under the
    others (the last one's exit, or the lab's teardown, removes it)."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.unlink(missing_ok=True)
    except BlockingIOError:
        pass  # held
    finally:
        os.close(fd)


@dataclass(frozen=True)
class MachineSpec:
    """How to boot one machine: its name, root, network namespace and extra nspawn flags.

    Without ``netns`` the machine gets a private network of its own (loopback only).

    ``unit`` is the nspawn machine name, unique on the host (it names nspawn's
    runtime directories); ``name`` is the hostname the machine sees.
    """

    name: str
    root: Path
    unit: str
    netns: Path | None = None
    extra_args: tuple[str, ...] = field(default=())
    nice: int = 0  # CPU niceness of everything in it (see harness.machines.lab, boot order)
    machine_id: str = ""  # given to its systemd (systemd.machine_id=): a machine sharing a tree
    env: Mapping[str, str] = field(default_factory=dict)  # nspawn's own settings (SYSTEMD_NSPAWN_*)

    def nspawn_argv(self) -> list[str]:
        """The systemd-nspawn command line that boots this machine."""
        argv = [*base_argv(self.unit, self.root), "--boot", f"--hostname={self.name}",
                "--console=interactive", "--resolv-conf=off"]
        if self.netns is None:
            argv.append("--private-network")  # never the host's network (traffic rule)
        else:
            # a prepared namespace gets no CAP_NET_ADMIN by default: networkd and DHCP servers need it
            argv += [f"--network-namespace-path={self.netns}",
                     "--capability=CAP_NET_ADMIN,CAP_NET_RAW"]
        # after every option: the arguments of its init, which reads them as its command line
        init = [f"systemd.machine_id={self.machine_id}"] if self.machine_id else []
        return argv + list(self.extra_args) + init


def find_leader(nspawn_pid: int) -> int | None:
    """PID of the container's PID 1: the child of nspawn that is PID 1 in its own namespace."""
    for children in Path(f"/proc/{nspawn_pid}/task").glob("*/children"):
        try:
            pids = children.read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            nspid = next((line.split()[1:] for line in status.splitlines()
                          if line.startswith("NSpid:")), [])
            if len(nspid) > 1 and nspid[-1] == "1":
                return int(pid)
    return None
