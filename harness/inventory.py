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

A *room* is many identical machines declared once: it expands at load into ordinary
machines (and, if it names them, one user per machine), each with the next address and
MAC, so that everything generated from the inventory covers every seat:

    [rooms.r11]
    segment = "lan"
    machines = "pas-r11p{n}"     # n = 1 .. count
    count = 3                    # overridden for a run by --room-size (HARNESS_ROOM_SIZE)
    address = "192.168.0.1"      # the first seat's; the others follow
    mac = "02:c0:a8:00:00:01"
    users = "r11p{n}"            # optional: seat n's user
"""

from __future__ import annotations

import enum
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.network import Interface

_NAME = re.compile(r"[a-z][a-z0-9-]*")
_LOGIN = re.compile(r"[a-z][a-z0-9_]*")
ROOM_SIZE_ENV = "HARNESS_ROOM_SIZE"  # every room's count for a run (pytest --room-size sets it)


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


def room_size(text: str, where: str = "--room-size") -> int:
    """A room size given as text (an option, the environment): a whole number, 1 or more."""
    if not text.strip().isdigit() or int(text) < 1:
        raise UsageError(f"{where}={text!r}: give a whole number of machines per room, 1 or more")
    return int(text)


def room_size_from_env() -> int | None:
    """Every room's count for this run, if ``HARNESS_ROOM_SIZE`` sets one (front ends set it
    from ``--room-size``, so that every process of the run loads the same inventory)."""
    text = os.environ.get(ROOM_SIZE_ENV, "").strip()
    return room_size(text, ROOM_SIZE_ENV) if text else None


def load(path: Path, room_size: int | None = None) -> Inventory:
    """Read and validate the inventory at ``path``; `UsageError` naming file:line and the fix.

    ``room_size`` (default: ``HARNESS_ROOM_SIZE``, else each room's own count) sets the
    count of every room."""
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return parse(data, text, str(path), room_size if room_size is not None else room_size_from_env())


def expand_rooms(data: dict[str, Any], room_size: int | None, fail: Callable[[str, str, str], UsageError],
                 ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Room]]:
    """``data``'s machines and users with every room's seats added as ordinary entries, and
    the rooms."""
    machines = dict(data.get("machines", {}))
    users = dict(data.get("users", {}))
    rooms: dict[str, Room] = {}
    for name, entry in data.get("rooms", {}).items():
        count = room_size if room_size is not None else entry.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise fail("rooms", name, "count must be a whole number of machines, 1 or more")
        patterns = {key: entry.get(key) for key in ("machines", "users") if key in entry}
        for key, pattern in patterns.items():
            if not isinstance(pattern, str) or "{n}" not in pattern:
                raise fail("rooms", name, f"{key} must be a pattern with {{n}} (the seat's number, "
                                          f"from 1): {key} = \"pas-{name}p{{n}}\"")
        if "machines" not in patterns:
            raise fail("rooms", name, "a room needs machines = \"PATTERN{n}\" naming its seats")
        try:
            first = ipaddress.IPv4Address(entry["address"])
            mac = int(str(entry["mac"]).replace(":", ""), 16)
            segment = str(entry["segment"])
        except KeyError as exc:
            raise fail("rooms", name, f"a room lacks {exc}: give segment, machines, count, address, "
                                      "mac") from None
        except ValueError as exc:
            raise fail("rooms", name, f"bad first address or MAC ({exc})") from None
        cidr = ipaddress.IPv4Network(data.get("segments", {}).get(segment, {}).get("cidr", "0.0.0.0/0"))
        last = ipaddress.IPv4Address(min(int(first) + count - 1, 2**32 - 1))
        if first in cidr and (last not in cidr or last == cidr.broadcast_address):
            raise fail("rooms", name, f"{count} machines from {first} overflow segment {segment} "
                                      f"({cidr}): the last would be {last}"
                                      "; start lower or make the room smaller")
        seats, logins = [], []
        for n in range(1, count + 1):
            seat = str(patterns["machines"]).format(n=n)
            if seat in machines:
                raise fail("rooms", name, f"seat {seat} is already a machine of the inventory")
            octets = f"{mac + n - 1:012x}"
            machines[seat] = {
                "type": entry.get("type", Kind.USER.value), "room": name,
                "interfaces": [{"name": entry.get("interface", "lan0"), "segment": segment,
                                "mac": ":".join(octets[i:i + 2] for i in range(0, 12, 2)),
                                "address": str(first + (n - 1)),
                                "config": entry.get("config", Config.DHCP.value)}]}
            seats.append(seat)
            if "users" in patterns:
                login = str(patterns["users"]).format(n=n)
                if login in users:
                    raise fail("rooms", name, f"user {login} of seat {seat} is already a user")
                users[login] = {"name": f"{name} seat {n}", "type": entry.get("user_type", "contestant")}
                logins.append(login)
        rooms[name] = Room(name, segment, tuple(seats), tuple(logins))
    return machines, users, rooms


def parse(data: dict[str, Any], text: str = "", where: str = "inventory",
          room_size: int | None = None) -> Inventory:
    """Validate already-parsed inventory ``data`` (``text`` locates errors); ``room_size``
    overrides every room's count."""

    seat_room: dict[str, str] = {}  # each machine and user a room made -> the room

    def fail(table: str, name: str, message: str) -> UsageError:
        if table in ("machines", "users") and name in seat_room:
            table, name = "rooms", seat_room[name]  # a seat: the room's declaration is at fault
        if table == "rooms" and room_size is not None:
            message += f" (every room has {room_size} machines: --room-size / {ROOM_SIZE_ENV})"
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

    machines, user_entries, rooms = expand_rooms(data, room_size, fail)
    seat_room.update({seat: r.name for r in rooms.values() for seat in (*r.machines, *r.users)})
    hosts: dict[str, Host] = {}
    seen: dict[str, str] = {}
    for name, entry in machines.items():
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
            segment = segments[nic.segment]
            if nic.address not in segment.cidr:
                raise fail("machines", name, f"address {nic.address} is outside segment "
                                             f"{nic.segment} ({segment.cidr})")
            if segment.pool and segment.pool[0] <= nic.address <= segment.pool[1]:
                raise fail("machines", name, f"{name}'s address {nic.address} is inside the pool "
                                             f"of {nic.segment} ({segment.pool[0]} - {segment.pool[1]}), "
                                             "which DHCP hands to unknown machines")
            for key in (f"MAC {nic.mac}", f"address {nic.address}"):
                if key in seen:
                    raise fail("machines", name, f"{name}'s {key} is already used by {seen[key]}")
                seen[key] = name
            nics.append(nic)
        try:
            kind = Kind(entry.get("type", "service"))
        except ValueError:
            raise fail("machines", name, f"type must be one of {', '.join(Kind)}") from None
        aliases = tuple(entry.get("aliases", ()))
        for alias in aliases:
            if alias in seen or alias in machines:
                raise fail("machines", name, f"alias {alias} is already a machine or an alias")
            seen[alias] = name
        hosts[name] = Host(name, kind, entry.get("room", ""), tuple(nics), aliases,
                           bool(entry.get("router", False)))

    users = {}
    for login, entry in user_entries.items():
        if not _LOGIN.fullmatch(login):
            raise fail("users", login, "logins are lowercase [a-z0-9_], starting with a letter")
        users[login] = User(login, entry.get("name", login), entry.get("type", "user"))
    return Inventory(data.get("lab", {}).get("domain", "lab"), segments, hosts, users, rooms)
