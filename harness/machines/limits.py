"""Host limits that many machines run into, checked before a lab starts anything.

Each nspawn machine costs the host a share of limits that default to a few dozen
machines' worth: inotify instances and watches (every systemd, journald, logind, networkd
holds some, all counted against root), processes, the kernel keyring, the neighbour table
(global to the host: ``net.ipv4.neigh.default.gc_thresh3`` counts the entries of every
namespace), and this process's open files (a console per machine). Past them a machine
hangs half-booted or packets vanish, with no error that points here.

`ensure()` computes what a lab of N machines needs on top of the labs already running on
the host, raises each limit that is too low (as root, once, and says so), and stops
before anything starts with one line naming the limit and how to raise it when it cannot.
A bridge takes at most 1024 ports: that one cannot be raised, only split across segments.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import UsageError
from harness.core.log import logger

SYSCTL = Path("/proc/sys")
BRIDGE_PORTS = 1024  # BR_MAX_PORTS: a bridge's port numbers are 10 bits


@dataclass(frozen=True)
class Limit:
    """A host sysctl, what one machine costs of it (measured on the reference lab's Debian 12
    machines, see bench/README.md, "Rooms at scale", with headroom), and the value it is
    raised to at least when it must be raised, so that it is raised once, not per lab."""

    key: str
    per_machine: int
    raise_to: int

    @property
    def path(self) -> Path:
        return SYSCTL / self.key.replace(".", "/")

    def needed(self, machines: int) -> int:
        return self.per_machine * machines

    def current(self) -> int | None:
        """Its value on this host now; None where this kernel has no such setting."""
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


# Measured per machine of the reference lab (a seat; gw is the largest): 11 inotify instances
# and 37 watches, 11 processes and 24 threads, 2 keys, 3 neighbour entries (its own, gw's).
LIMITS = (
    Limit("fs.inotify.max_user_instances", 16, 8192),
    Limit("fs.inotify.max_user_watches", 256, 65536),
    Limit("kernel.keys.root_maxkeys", 8, 200000),
    Limit("kernel.pid_max", 64, 32768),
    Limit("kernel.threads-max", 64, 32768),
    Limit("net.ipv4.neigh.default.gc_thresh3", 8, 4096),
    Limit("net.ipv6.neigh.default.gc_thresh3", 8, 4096),
)
OPEN_FILES_PER_MACHINE = 8  # its console pty, pexpect's pipes, a tap thread's...


def ensure(machines: int, ports: Mapping[str, int] | None = None, *,
           limits: tuple[Limit, ...] = LIMITS) -> dict[str, tuple[int, int]]:
    """Make the host fit ``machines`` running machines (this lab's and every other lab's) with
    ``ports`` bridge ports per segment; `UsageError` naming a limit that cannot be met.
    Returns what it raised: sysctl key -> (value before, value now)."""
    raised: dict[str, tuple[int, int]] = {}
    for segment, count in (ports or {}).items():
        if count > BRIDGE_PORTS:
            raise UsageError(f"segment {segment} would have {count} machines on one bridge; a Linux "
                             f"bridge takes at most {BRIDGE_PORTS}: split them across segments")
    for limit in limits:
        current = limit.current()
        if current is None:
            continue  # not on this kernel: nothing to check
        needed = limit.needed(machines)
        if current >= needed:
            continue
        try:
            limit.path.write_text(f"{max(needed, limit.raise_to)}\n")
        except OSError as exc:
            raise UsageError(f"{limit.key} is {current}; {machines} machines need {needed} and it "
                             f"cannot be raised from here ({exc.strerror}): run `sysctl -w "
                             f"{limit.key}={needed}` on the host") from None
        raised[limit.key] = (current, max(needed, limit.raise_to))
        logger.info("raised %s from %d to %d: %d machine(s) need %d", limit.key, current,
                    max(needed, limit.raise_to), machines, needed)
    _ensure_open_files(machines)
    return raised


def _ensure_open_files(machines: int) -> None:
    needed = 256 + OPEN_FILES_PER_MACHINE * machines
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed or soft == resource.RLIM_INFINITY:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise UsageError(f"this process may open {hard} files at most; {machines} machines need "
                         f"{needed}: run `ulimit -n {needed}` (as root) before the run")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
