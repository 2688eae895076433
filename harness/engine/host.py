"""What the host needs before any lab runs, set up by one command (``harness setup-host``).

The host packages (each for a reason given beside it), the host limits a lab of some size
needs (`harness.machines.limits`, raised now and kept in ``/etc/sysctl.d`` so that a reboot does not
undo them), the package cache and the store (btrfs; the embedded image is created and mounted
on first use). ``make setup`` calls it; a CI runner or a new team member can too. It changes
only what is missing and says what it changed, so a second run changes nothing; ``check=True``
changes nothing and lists what is missing.

Chromium is a report package: only reading the HTML report back (tests/test_report.py)
needs it, so only ``--report`` installs it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.core import proc
from harness.core.errors import HarnessError, UsageError
from harness.core.settings import DEFAULT_IMAGE_SIZE, size_bytes
from harness.machines import containers, limits, rootfs
from harness.machines.store import open_store
from harness.machines.volumes import DEFAULT_IMAGE, image_lock, require_root

# Package -> what the harness or its tests run from it.
HOST_PACKAGES: Mapping[str, str] = {
    "btrfs-progs": "btrfs, mkfs.btrfs: the store's subvolumes and snapshots",
    "systemd-container": "systemd-nspawn: the machines",
    "debootstrap": "the Debian base image",
    "iproute2": "ip, ss: networks by hand and in evidence",
    "nftables": "nft: fault injection and rulesets in evidence",
    "tcpdump": "packet capture in evidence",
    "util-linux": "nsenter, mount, setpriv",
    "python3-venv": "the virtualenv of the harness",
    "graphviz": "dot: the lab's topology drawing in evidence",
    "zstd": "bundles (harness export and import)",
}
REPORT_PACKAGES: Mapping[str, str] = {
    "chromium": "reads the HTML report back (tests/test_report.py)",
}
SYSCTL_FILE = Path("/etc/sysctl.d/60-harness.conf")
LOW_SPACE = 0.1  # of the store's size: under it, a warning
DEFAULT_MACHINES = 100  # the host limits are set for a lab this large (bench: rooms at scale)


@dataclass
class Outcome:
    """What `setup` found: lines of what it changed, what was fine, what is missing, and
    what will go wrong soon (a store nearly full)."""

    changed: list[str] = field(default_factory=list)
    fine: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def missing_packages(packages: Mapping[str, str]) -> list[str]:
    """The packages of ``packages`` that dpkg does not have installed."""
    result = proc.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n", *packages], check=False)
    installed = {line.split()[0] for line in result.stdout.splitlines()
                 if line.endswith(" install ok installed")}
    return [p for p in packages if p not in installed]


def _packages(packages: Mapping[str, str], what: str, outcome: Outcome, check: bool) -> None:
    missing = missing_packages(packages)
    if not missing:
        outcome.fine.append(f"{what}: {len(packages)} present")
        return
    if check:
        outcome.missing += [f"{what}: {p} ({packages[p]})" for p in missing]
        return
    env = proc.host_env({"DEBIAN_FRONTEND": "noninteractive"})
    proc.run(["apt-get", "update", "-q"], env=env, capture=False)
    proc.run(["apt-get", "install", "-y", "-q", *missing], env=env, capture=False)
    outcome.changed.append(f"{what}: installed {' '.join(missing)}")


def _limits(machines: int, outcome: Outcome, check: bool) -> None:
    if check:
        short = [f"{limit.key} is {value}, {machines} machines need {limit.needed(machines)}"
                 for limit in limits.LIMITS if (value := limit.current()) is not None
                 and value < limit.needed(machines)]
        outcome.missing += [f"limits: {s}" for s in short]
        if not short:
            outcome.fine.append(f"limits: fit {machines} machines")
        return
    raised = limits.ensure(machines, limits=limits.LIMITS)
    outcome.changed += [f"limits: raised {key} from {before} to {after}"
                        for key, (before, after) in raised.items()]
    if not raised:
        outcome.fine.append(f"limits: fit {machines} machines")
    # What fits now is kept for the next boot, whoever raised it (a lab raises what it needs
    # as it starts): the values now, never lower than those the file already keeps.
    kept = _read_sysctl_file()
    now = dict(kept)
    for limit in limits.LIMITS:
        value = limit.current()
        if value is not None and value > kept.get(limit.key, -1):
            now[limit.key] = value
    if now != kept:
        SYSCTL_FILE.parent.mkdir(parents=True, exist_ok=True)
        SYSCTL_FILE.write_text("# written by `harness setup-host`: the limits a lab of many machines "
                               "needs, kept across reboots\n"
                               + "".join(f"{key} = {value}\n" for key, value in sorted(now.items())))
        outcome.changed.append(f"limits: kept {', '.join(k for k in now if now[k] != kept.get(k))} "
                               f"in {SYSCTL_FILE}")


def _read_sysctl_file() -> dict[str, int]:
    """The keys the file keeps with a single integer value (anything else: not the harness's)."""
    if not SYSCTL_FILE.exists():
        return {}
    kept = {}
    for line in SYSCTL_FILE.read_text().splitlines():
        key, _, value = line.partition("=")
        if value.strip().isdigit() and not key.lstrip().startswith(("#", ";")):
            kept[key.strip()] = int(value)
    return kept


def _containers(outcome: Outcome, check: bool) -> None:
    """What machines with rootless containers need of the host (`harness.machines.containers`): a
    warning, not a failure, since only the labs whose stages declare containers need it."""
    for node, _ in containers.NODES:
        path = Path("/dev") / node
        if not check and path.is_char_device() and containers.node_mode_problem(node, path.stat().st_mode):
            before = path.stat().st_mode & 0o777
            try:
                path.chmod(before | containers.NODE_MODE)  # a host without udev leaves it 0600
            except OSError as refused:  # a /dev this host may not change (a container's)
                outcome.warnings.append(f"containers: {path} is mode {before:04o} and could not be made "
                                        f"{containers.NODE_MODE:04o} ({refused.strerror}): a machine's "
                                        "users cannot open it; run where /dev can be changed")
                continue
            outcome.changed.append(f"containers: {path} made {containers.NODE_MODE:04o} (was {before:04o}), "
                                   "as udev's default rules make it, until the next boot: a machine's "
                                   "users open it")
    problems = containers.host_problems()
    said = " ".join(outcome.warnings)
    outcome.warnings += [f"containers: {p}" for p in problems  # a refused chmod is said already
                         if f"containers: {p.split()[0]} is mode" not in said]
    if not problems:
        outcome.fine.append("containers: /dev/fuse, /dev/net/tun and user namespaces present")


def grow_image(image: Path, size: str) -> int | None:
    """Grow the embedded, mounted image to ``size`` if it is smaller, while mounted (the
    snapshots in it stay); return its size before, or None when it was already that big."""
    wanted = size_bytes(size)
    with image_lock(image):
        before = image.stat().st_size
        if before >= wanted:
            return None
        proc.run(["truncate", "-s", str(wanted), str(image)])  # sparse: no disk used until written
        loops = proc.run(["losetup", "--associated", str(image), "--noheadings",
                          "--output", "NAME", "--list"]).stdout.split()
        for device in loops:
            proc.run(["losetup", "--set-capacity", device])
        proc.run(["btrfs", "filesystem", "resize", "max", str(image.with_suffix(""))])
    return before


def _store(given: str | None, size: str, outcome: Outcome, check: bool) -> None:
    if check:
        return  # opening the store may create and mount it: not a check
    store = open_store(given, size=size)
    if not given and store.root == DEFAULT_IMAGE.with_suffix(""):
        before = grow_image(DEFAULT_IMAGE, size)
        if before is not None:
            outcome.changed.append(f"store: grew {DEFAULT_IMAGE} from {before / 2**30:.0f} GiB to {size}")
    usage = shutil.disk_usage(store.root)
    free, total = usage.free / 2**30, usage.total / 2**30
    outcome.fine.append(f"store: {store.root} on btrfs, {free:.1f} GiB free of {total:.0f}")
    if usage.free < usage.total * LOW_SPACE:
        outcome.warnings.append(
            f"store: only {free:.1f} GiB free: a cold build may not fit; `harness gc` deletes this "
            "project's old snapshots, or grow the embedded image: `harness --store-size 64G setup-host`")
    cache = rootfs.DEFAULT_CACHE
    if not cache.is_dir():
        cache.mkdir(parents=True)
        outcome.changed.append(f"package cache: created {cache}")
    else:
        outcome.fine.append(f"package cache: {cache}")


def setup(*, report: bool = False, check: bool = False, machines: int = DEFAULT_MACHINES,
          store: str | None = None, store_size: str = DEFAULT_IMAGE_SIZE) -> Outcome:
    """Install and check what the host needs (with ``report``, the report packages too);
    with ``check``, change nothing (and need no root)."""
    if machines < 1:
        raise UsageError(f"--machines {machines}: give how many machines the limits are for (1 or more)")
    if not check:
        require_root()
    if shutil.which("apt-get", path=proc.PATH) is None or shutil.which("dpkg-query", path=proc.PATH) is None:
        raise HarnessError(f"this host has no apt: install by hand the packages {' '.join(HOST_PACKAGES)} "
                           "(Debian's names), then run `harness setup-host --check`")
    outcome = Outcome()
    _packages(HOST_PACKAGES, "host packages", outcome, check)
    if report:
        _packages(REPORT_PACKAGES, "report packages", outcome, check)
    _limits(machines, outcome, check)
    _containers(outcome, check)
    if not outcome.missing:
        _store(store, store_size, outcome, check)
    return outcome
