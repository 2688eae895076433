"""The lab's machine database as frozen dataclasses: segments, machines and their
interfaces, users, rooms.

Stages read it and generate from it (DHCP reservations, DNS zones, network units); none
restates an address or a MAC. It is read from a TOML file and validated by
`harness.model.inventory_file`, whose docstring is the file's schema.
"""

from __future__ import annotations

import enum
import ipaddress
import json
from dataclasses import asdict, dataclass
from typing import Any

from harness.core.errors import UsageError
from harness.core.links import Family, Interface

__all__ = ["Config", "Config6", "Family", "Host", "IPAddress", "Inventory", "Kind", "Nic", "Room", "Segment",
           "User", "eui64"]


class Config(enum.StrEnum):
    """How an interface gets its address."""

    STATIC = "static"  # written into the machine's own network configuration
    DHCP = "dhcp"      # a reservation on the lab's DHCP server


class Config6(enum.StrEnum):
    """How an interface gets its IPv6 address."""

    STATIC = "static"  # written into the machine's own network configuration
    DHCP = "dhcp"      # DHCPv6 (the router advertises the managed flag): a reservation, or the pool
    SLAAC = "slaac"    # the router advertises the prefix; the address is the prefix and the MAC's EUI-64


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Kind(enum.StrEnum):
    """What a machine is for."""

    SERVICE = "service"
    USER = "user"
    UPLINK = "uplink"  # the simulated internet


@dataclass(frozen=True)
class Segment:
    """A lab network segment (one bridge)."""

    name: str
    cidr: ipaddress.IPv4Network | None
    pool: tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None = None
    cidr6: ipaddress.IPv6Network | None = None
    pool6: tuple[ipaddress.IPv6Address, ipaddress.IPv6Address] | None = None
    ipv6: Config6 = Config6.DHCP  # how its clients configure IPv6 (with cidr6)

    def families(self) -> tuple[Family, ...]:
        """The families this segment carries."""
        return tuple(f for f, net in ((Family.IPV4, self.cidr), (Family.IPV6, self.cidr6)) if net)

    def network(self, family: Family) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """Its network in ``family``; `UsageError` if it has none."""
        net = self.cidr if family is Family.IPV4 else self.cidr6
        if net is None:
            raise UsageError(f"segment {self.name} has no {family} network: give it "
                             f"{'cidr' if family is Family.IPV4 else 'cidr6'}")
        return net


@dataclass(frozen=True)
class Nic:
    """One interface of a machine, as the inventory describes it."""

    name: str
    segment: str
    mac: str
    address: ipaddress.IPv4Address | None  # None: IPv6 only (or, if pooled, a DHCP pool address)
    config: Config
    gateway: ipaddress.IPv4Address | None = None
    address6: ipaddress.IPv6Address | None = None  # None: IPv4 only (or a DHCPv6 pool address)
    config6: Config6 | None = None  # None: no IPv6 on this interface
    gateway6: ipaddress.IPv6Address | None = None
    pooled: bool = False  # a DHCP client without a reservation: its IPv4 address comes from the pool

    def families(self) -> tuple[Family, ...]:
        """The families this interface has an address of that the inventory knows."""
        return tuple(f for f, a in ((Family.IPV4, self.address), (Family.IPV6, self.address6)) if a)

    def takes(self, family: Family) -> bool:
        """Whether it has an address of ``family`` at all: a known one, or one from a pool."""
        return self.address is not None or self.pooled if family is Family.IPV4 else self.config6 is not None

    def address_of(self, family: Family) -> IPAddress:
        """Its address in ``family``; `UsageError` if it has none the inventory knows."""
        address = self.address if family is Family.IPV4 else self.address6
        if address is None:
            where = f"{self.name} on segment {self.segment}"
            if self.takes(family):
                raise UsageError(f"{where} takes its {family} address from the pool: the inventory does not "
                                 "know it")
            raise UsageError(f"interface {where} has no {family} address")
        return address


@dataclass(frozen=True)
class Host:
    """One machine of the lab."""

    name: str
    kind: Kind
    room: str
    nics: tuple[Nic, ...]
    aliases: tuple[str, ...] = ()
    router: bool = False

    def families(self) -> tuple[Family, ...]:
        """The families this machine has an address of, on any interface."""
        return tuple(f for f in Family if any(f in nic.families() for nic in self.nics))

    def nic(self, segment: str) -> Nic:
        """Its interface on ``segment``."""
        for nic in self.nics:
            if nic.segment == segment:
                return nic
        raise UsageError(f"machine {self.name} has no interface on segment {segment}")


@dataclass(frozen=True)
class User:
    """A user of the lab (a contestant, an organiser)."""

    login: str
    name: str
    kind: str


@dataclass(frozen=True)
class Room:
    """Identical machines declared once: its seats, in order, and each seat's user (if any)."""

    name: str
    segment: str
    machines: tuple[str, ...]
    users: tuple[str, ...] = ()

    def user_of(self, machine: str) -> str:
        """The login of the user whose seat ``machine`` is."""
        if not self.users:
            raise UsageError(f"room {self.name} names no users: give it users = \"PATTERN{{n}}\"")
        return self.users[self.machines.index(machine)]


@dataclass(frozen=True)
class Inventory:
    """Everything the lab is made of."""

    domain: str
    segments: dict[str, Segment]
    hosts: dict[str, Host]
    users: dict[str, User]
    rooms: dict[str, Room]

    def families(self) -> tuple[Family, ...]:
        """The families some segment of the lab carries: what scenarios are generated for."""
        return tuple(f for f in Family if any(f in s.families() for s in self.segments.values()))

    def seats(self) -> tuple[str, ...]:
        """Every machine of every room, room by room."""
        return tuple(m for room in self.rooms.values() for m in room.machines)

    def room_of(self, machine: str) -> Room:
        """The room whose seat ``machine`` is."""
        for room in self.rooms.values():
            if machine in room.machines:
                return room
        raise UsageError(f"machine {machine!r} is in no room; the rooms are: {', '.join(self.rooms)}")

    def fingerprint(self) -> str:
        """The whole plan, rooms expanded, as canonical text: for the keys of stages built from it."""
        return json.dumps(asdict(self), sort_keys=True, default=str)

    def plan(self) -> dict[str, Any]:
        """The whole plan as JSON-able data, what script stages read (``HARNESS_INVENTORY``):
        ``domain``; ``segments`` (name -> ``cidr``, ``pool`` [first, last], ``cidr6``,
        ``pool6``, ``ipv6``); ``machines`` (name -> ``kind``, ``room``, ``router``,
        ``aliases``, ``interfaces``: each one's ``name``, ``segment``, ``mac``, ``address``,
        ``config``, ``gateway``, ``address6``, ``config6``, ``gateway6``, ``pooled``);
        ``users`` (login -> ``name``, ``kind``); ``rooms`` (name -> ``segment``,
        ``machines``, ``users``). Addresses and networks are strings; what is absent is null."""

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value if value is None or isinstance(value, bool | int | str) else str(value)

        def drop(entry: Any, *keys: str) -> dict[str, Any]:
            return {k: v for k, v in asdict(entry).items() if k not in keys}

        plan: dict[str, Any] = plain({
            "domain": self.domain,
            "segments": {n: drop(s, "name") for n, s in self.segments.items()},
            "machines": {n: {**drop(h, "name", "nics"), "interfaces": [asdict(nic) for nic in h.nics]}
                         for n, h in self.hosts.items()},
            "users": {n: drop(u, "login") for n, u in self.users.items()},
            "rooms": {n: drop(r, "name") for n, r in self.rooms.items()},
        })
        return plan

    def __getitem__(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise UsageError(f"unknown machine {name!r}; the inventory has: "
                             f"{', '.join(self.hosts)}") from None

    def on(self, segment: str) -> list[Host]:
        """Machines with an interface on ``segment``, in inventory order."""
        return [h for h in self.hosts.values() if any(n.segment == segment for n in h.nics)]

    def router(self) -> Host:
        """The machine marked ``router = true``: the gateway of a lab that has one. A
        `UsageError` saying what to change if none is marked, or several are."""
        found = [h.name for h in self.hosts.values() if h.router]
        if len(found) != 1:
            raise UsageError(f"the inventory marks {', '.join(found) or 'no machine'} as router: "
                             "keep router = true on exactly one machine, the gateway")
        return self.hosts[found[0]]

    def interfaces(self, machine: str, *, static_addresses: bool = False) -> tuple[Interface, ...]:
        """The lab network's view of ``machine``: names, segments, MACs. Machines set their own
        addresses (the reference lab writes networkd units), unless ``static_addresses``: then
        the lab sets each ``static`` interface's addresses, and its ``gateway`` and ``gateway6``
        as default routes, from outside before boot, which is all a machine without a network
        configuration of its own needs."""

        def static(nic: Nic) -> list[tuple[IPAddress, ipaddress.IPv4Network | ipaddress.IPv6Network,
                                            IPAddress | None]]:
            segment = self.segments[nic.segment]
            return [(address, net, gateway) for address, net, config, gateway in (
                (nic.address, segment.cidr, nic.config, nic.gateway),
                (nic.address6, segment.cidr6, nic.config6, nic.gateway6))
                if static_addresses and address and net and config == "static"]

        return tuple(Interface(machine, n.name, n.segment, n.mac,
                               tuple(f"{address}/{net.prefixlen}" for address, net, _ in static(n)),
                               tuple(str(gateway) for _, _, gateway in static(n) if gateway))
                     for n in self[machine].nics)

    def sysctls(self, machine: str) -> dict[str, str]:
        """Kernel network settings of ``machine``'s namespace, which it cannot set from inside:
        the machine marked ``router`` forwards, in each family it has an address of. A
        `harness.model.pipeline.Pipeline` given the inventory applies them."""
        host = self[machine]
        if not host.router:
            return {}
        return self.forwarding(tuple(f for f in Family if any(nic.takes(f) for nic in host.nics)))

    def forwarding(self, families: tuple[Family, ...] | None = None) -> dict[str, str]:
        """The kernel settings that make a namespace forward, in ``families`` (default: each
        family of the lab)."""
        families = self.families() if families is None else families
        return {**({"net.ipv4.ip_forward": "1"} if Family.IPV4 in families else {}),
                **({"net.ipv6.conf.all.forwarding": "1"} if Family.IPV6 in families else {})}


def eui64(prefix: ipaddress.IPv6Network, mac: str) -> ipaddress.IPv6Address:
    """The SLAAC address of ``mac`` in ``prefix`` (a /64): the MAC's modified EUI-64."""
    octets = [int(o, 16) for o in mac.split(":")]
    octets[0] ^= 0x02
    interface_id = bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]])
    return prefix.network_address + int.from_bytes(interface_id, "big")
