"""The lab's machine database: one TOML file, validated into frozen dataclasses before anything runs.

Stages read it and generate from it (DHCP reservations, DNS zones, network units); none
restates an address or a MAC. A bad entry is refused with the file, the line of the entry
at fault and what to write instead.

    [segments.lan]
    cidr = "192.168.0.0/23"

    [machines.gw]
    type = "service"
    room = "pasteur"
    aliases = ["mdb", "ns"]
    router = true
    interfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:01:fe",
                    address = "192.168.1.254", config = "static" }]

    [users.alice]
    name = "Alice Liddell"
    type = "contestant"
"""

from __future__ import annotations

import enum
import ipaddress
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.network import Interface

_NAME = re.compile(r"[a-z][a-z0-9-]*")
_LOGIN = re.compile(r"[a-z][a-z0-9_]*")


class Config(enum.StrEnum):
    """How an interface gets its address."""

    STATIC = "static"  # written into the machine's own network configuration
    DHCP = "dhcp"      # a reservation on the lab's DHCP server


class Kind(enum.StrEnum):
    """What a machine is for."""

    SERVICE = "service"
    USER = "user"
    UPLINK = "uplink"  # the simulated internet


@dataclass(frozen=True)
class Segment:
    """A lab network segment (one bridge)."""

    name: str
    cidr: ipaddress.IPv4Network
    pool: tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None = None


@dataclass(frozen=True)
class Nic:
    """One interface of a machine, as the inventory describes it."""

    name: str
    segment: str
    mac: str
    address: ipaddress.IPv4Address
    config: Config
    gateway: ipaddress.IPv4Address | None = None


@dataclass(frozen=True)
class Host:
    """One machine of the lab."""

    name: str
    kind: Kind
    room: str
    nics: tuple[Nic, ...]
    aliases: tuple[str, ...] = ()
    router: bool = False

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
class Inventory:
    """Everything the lab is made of."""

    domain: str
    segments: dict[str, Segment]
    hosts: dict[str, Host]
    users: dict[str, User]

    def __getitem__(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise UsageError(f"unknown machine {name!r}; the inventory has: "
                             f"{', '.join(self.hosts)}") from None

    def on(self, segment: str) -> list[Host]:
        """Machines with an interface on ``segment``, in inventory order."""
        return [h for h in self.hosts.values() if any(n.segment == segment for n in h.nics)]

    def interfaces(self, machine: str) -> tuple[Interface, ...]:
        """The lab network's view of ``machine``: names, segments, MACs (machines set their own addresses)."""
        return tuple(Interface(machine, n.name, n.segment, n.mac) for n in self[machine].nics)

    def sysctls(self, machine: str) -> dict[str, str]:
        """Kernel network settings of ``machine``'s namespace, which it cannot set from inside."""
        return {"net.ipv4.ip_forward": "1"} if self[machine].router else {}


def _line_of(text: str, table: str, name: str) -> int:
    pattern = re.compile(rf"^[ \t]*\[{re.escape(table)}\.\"?{re.escape(name)}\"?\]", re.MULTILINE)
    found = pattern.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else 0


def load(path: Path) -> Inventory:
    """Read and validate the inventory at ``path``; `UsageError` naming file:line and the fix."""
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return parse(data, text, str(path))


def parse(data: dict[str, Any], text: str = "", where: str = "inventory") -> Inventory:
    """Validate already-parsed inventory ``data`` (``text`` locates errors)."""

    def fail(table: str, name: str, message: str) -> UsageError:
        line = _line_of(text, table, name)
        return UsageError(f"{where}:{line}: [{table}.{name}]: {message}" if line
                          else f"{where}: [{table}.{name}]: {message}")

    segments: dict[str, Segment] = {}
    for name, entry in data.get("segments", {}).items():
        try:
            cidr = ipaddress.IPv4Network(entry["cidr"])
        except (KeyError, ValueError, TypeError) as exc:
            raise fail("segments", name, f"bad cidr ({exc}): write e.g. cidr = \"10.0.0.0/24\"") from None
        pool = None
        if "pool" in entry:
            try:
                first, last = (ipaddress.IPv4Address(a) for a in entry["pool"])
            except (ValueError, TypeError):
                raise fail("segments", name, "pool must be two addresses: pool = [\"FIRST\", "
                                             "\"LAST\"]") from None
            if first not in cidr or last not in cidr or first > last:
                raise fail("segments", name, f"pool {first} - {last} must be an ascending range "
                                             f"inside {cidr}")
            pool = (first, last)
        segments[name] = Segment(name, cidr, pool)

    hosts: dict[str, Host] = {}
    seen: dict[str, str] = {}
    for name, entry in data.get("machines", {}).items():
        if not _NAME.fullmatch(name):
            raise fail("machines", name, "machine names are lowercase [a-z0-9-], starting with a letter")
        nics = []
        for raw in entry.get("interfaces", []):
            try:
                nic = Nic(raw["name"], raw["segment"], raw["mac"].lower(),
                          ipaddress.IPv4Address(raw["address"]), Config(raw.get("config", "static")),
                          ipaddress.IPv4Address(raw["gateway"]) if raw.get("gateway") else None)
                Interface(name, nic.name, nic.segment, nic.mac)  # names and MAC syntax
            except KeyError as exc:
                raise fail("machines", name, f"an interface lacks {exc}: give name, segment, mac, "
                                             "address") from None
            except (ValueError, UsageError) as exc:
                raise fail("machines", name, str(exc)) from None
            if nic.segment not in segments:
                raise fail("machines", name, f"unknown segment {nic.segment!r}; segments: "
                                             f"{', '.join(segments)}")
            if nic.address not in segments[nic.segment].cidr:
                raise fail("machines", name, f"address {nic.address} is outside segment "
                                             f"{nic.segment} ({segments[nic.segment].cidr})")
            for key in (f"MAC {nic.mac}", f"address {nic.address}"):
                if key in seen:
                    raise fail("machines", name, f"{key} is already used by {seen[key]}")
                seen[key] = name
            nics.append(nic)
        try:
            kind = Kind(entry.get("type", "service"))
        except ValueError:
            raise fail("machines", name, f"type must be one of {', '.join(Kind)}") from None
        aliases = tuple(entry.get("aliases", ()))
        for alias in aliases:
            if alias in seen or alias in data.get("machines", {}):
                raise fail("machines", name, f"alias {alias} is already a machine or an alias")
            seen[alias] = name
        hosts[name] = Host(name, kind, entry.get("room", ""), tuple(nics), aliases,
                           bool(entry.get("router", False)))

    users = {}
    for login, entry in data.get("users", {}).items():
        if not _LOGIN.fullmatch(login):
            raise fail("users", login, "logins are lowercase [a-z0-9_], starting with a letter")
        users[login] = User(login, entry.get("name", login), entry.get("type", "user"))
    return Inventory(data.get("lab", {}).get("domain", "lab"), segments, hosts, users)
