"""Shared helpers for the harness's own tests."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyroute2 import netns

from harness.core.links import Family, Interface
from harness.engine.build import debian
from harness.engine.build.builder import Builder
from harness.machines import network
from harness.machines.network import LabNetwork
from harness.machines.store import Snapshot, Store
from harness.model.inventory import Inventory
from harness.model.inventory_file import load
from harness.model.pipeline import Pipeline


@dataclass(frozen=True)
class Traces:
    """What a lab can leave on the host: nspawn processes, namespaces, mounts, clones."""

    nspawn: tuple[str, ...]
    namespaces: tuple[str, ...]
    mounts: tuple[str, ...]
    clones: tuple[str, ...]
    nspawn_state: tuple[str, ...]
    cgroups: tuple[str, ...]
    inside: tuple[str, ...] = ()  # any other process in the lab's namespaces (a capture...)


NOTHING = Traces((), (), (), (), (), ())


def traces_of(lab_id: str, work: Path) -> Traces:
    """Everything on this host that still belongs to lab ``lab_id``."""
    marker = f"harness-{lab_id}-"
    nspawn = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if args[0].endswith("systemd-nspawn") and any(marker in a for a in args):
            nspawn.append(" ".join(args))
    mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if marker in line or f"/work/{lab_id}/" in line]
    namespaces = [n for n in network.lab_namespaces() if n.startswith(marker)]
    clones = sorted(p.name for p in work.iterdir() if p.is_dir()) if work.exists() else []
    state = sorted(p.name for p in Path("/run/systemd/nspawn/propagate").glob(f"{marker}*"))
    cgroups = sorted(str(p) for h in ("unified", "systemd", ".")
                     for p in Path("/sys/fs/cgroup", h, "harness").glob(f"{marker}*"))
    inside = [name for pid in network.processes_in(namespaces) if (name := command_name(pid))]
    return Traces(tuple(nspawn), tuple(namespaces), tuple(mounts), tuple(clones), tuple(state),
                  tuple(cgroups), tuple(inside))


def command_name(pid: int) -> str | None:
    """Process ``pid``'s name, or None if it is gone (one dying as a lab is taken down)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def lan(*names: str, prefix: str = "10.77.0", prefix6: str | None = None) -> list[Interface]:
    """One ``host0`` per machine on segment ``lan``, addresses .1, .2, ... in ``prefix``.0/24
    (and ::1, ::2, ... in ``prefix6``::/64 if given)."""
    return [Interface(name, "host0", "lan", f"02:00:00:00:00:{i:02x}",
                      (f"{prefix}.{i}/24", *([f"{prefix6}::{i}/64"] if prefix6 else [])))
            for i, name in enumerate(names, start=1)]


OFFICE = """\
[lab]
domain = "office"

[segments.lan]
cidr = "10.81.1.0/24"
cidr6 = "fd81:1::/64"
ipv6 = "static"

[segments.dmz]
cidr = "10.81.2.0/24"

[machines.router]
router = {router}
[[machines.router.interfaces]]
name = "host0"
segment = "lan"
mac = "02:00:0a:51:01:01"
address = "10.81.1.1"
address6 = "fd81:1::1"
config = "static"
[[machines.router.interfaces]]
name = "dmz0"
segment = "dmz"
mac = "02:00:0a:51:02:01"
address = "10.81.2.1"
config = "static"

[[machines.laptop.interfaces]]
name = "host0"
segment = "lan"
mac = "02:00:0a:51:01:02"
address = "10.81.1.2"
address6 = "fd81:1::2"
config = "static"
gateway = "10.81.1.1"
gateway6 = "fd81:1::1"

[[machines.printer.interfaces]]
name = "host0"
segment = "dmz"
mac = "02:00:0a:51:02:02"
address = "10.81.2.2"
config = "static"

[users.ann]
name = "Ann Office"
type = "organiser"
"""


def office_inventory(directory: Path, *, router: bool = True) -> Inventory:
    """A small office's inventory, written to ``directory``/inventory.toml: ``router`` (marked
    router unless not ``router``) between ``lan`` (dual-stack, ``laptop``, whose gateways are
    the router's) and ``dmz`` (IPv4, ``printer``); the domain ``office``; one user."""
    path = directory / "inventory.toml"
    path.write_text(OFFICE.format(router=str(router).lower()))
    return load(path, families=list(Family))


@pytest.fixture(scope="session")
def base_bootstrap(harness_store: Store) -> Snapshot:
    """The plain Debian base, ``debian.base_stage()``: what `harness init`'s projects and the
    tests' own pipelines build on. The reference lab's ``bootstrap`` is another snapshot (its
    base masks more, stages/bootstrap.py): a scratch store seeded with that one would
    debootstrap this one again, in every test that seeds one."""
    return Builder(harness_store, Pipeline([debian.base_stage()])).ensure("bootstrap")


@pytest.fixture
def base(bootstrap):  # type: ignore[no-untyped-def]
    """The bootstrap snapshot's read-only Debian root."""
    return bootstrap.member("base")


def as_nobody() -> list[str]:
    """Command prefix that drops root for the rest of the command."""
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


pytest_plugins = ["pytester", "tests.toy"]


def udp_ends(net: LabNetwork, family: Family, *, prefix6: str,
             timeout: float) -> tuple[socket.socket, socket.socket]:
    """A UDP socket in machine a's namespace and one in b's (``lan("a", "b", prefix6=...)``),
    bound to their ``family`` address (the host has no ping; sockets keep the namespace they
    were made in), each waiting ``timeout`` seconds for a datagram."""
    ends = []
    for iface in lan("a", "b", prefix6=prefix6):
        netns.pushns(net.namespace(iface.machine))
        try:
            end = socket.socket(socket.AF_INET if family is Family.IPV4 else socket.AF_INET6,
                                socket.SOCK_DGRAM)
        finally:
            netns.popns()
        [address] = [a.split("/")[0] for a in iface.addresses if Family.of(a) is family]
        end.bind((address, 7000))
        end.settimeout(timeout)
        ends.append(end)
    return ends[0], ends[1]
