"""The inventory file: the lab's machine database in TOML, read and validated into
`harness.model.inventory`'s dataclasses before anything runs.

A bad entry is refused with the file, the line of the entry at fault and what to write
instead; so is a key its table does not take (a typo, or a key in the wrong table), with
the nearest valid name. Each table's keys and what they say are declared once, in
`harness.model.inventory_keys.KEYS`, which both that check and docs/reference.md's tables of keys
read.

    [lab]
    domain = "prolo"             # the machines are NAME.prolo (default "lab")

    [segments.lan]
    cidr = "192.168.0.0/23"
    pool = ["192.168.1.200", "192.168.1.250"]  # optional: what DHCP lends machines it does not know
    cidr6 = "2001:db8:1::/64"    # optional: the segment is dual-stack (or IPv6-only, without cidr)
    pool6 = ["2001:db8:1::1:c8", "2001:db8:1::1:fa"]  # optional: the same for DHCPv6
    ipv6 = "dhcp"                # how its clients configure IPv6: "dhcp" (DHCPv6), "slaac", "static"

    [machines.gw]
    type = "service"
    room = "pasteur"
    aliases = ["mdb", "ns"]
    router = true
    interfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:01:fe",
                    address = "192.168.1.254", address6 = "2001:db8:1::1:fe" }]  # one line in TOML

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
    address6 = "2001:db8:1::1"   # optional: the first seat's IPv6 address (a DHCPv6 reservation)

An interface has an IPv4 ``address``, an IPv6 ``address6``, or both (an IPv6-only machine
has no ``address``). ``config`` says how it gets them: ``static`` (both written into the
machine) or ``dhcp`` (reservations); for IPv6, a ``dhcp`` interface follows its segment's
``ipv6`` mode unless it says ``config6``. Under SLAAC the address is the prefix and the
MAC's EUI-64, so the inventory computes it. A ``dhcp`` interface that names neither address
is a plain DHCP client: it takes an address of each family its segment has, IPv4 from
``pool``, IPv6 from ``pool6`` or by SLAAC, and has no reservation nor name in DNS:

    interfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:02:01", config = "dhcp" }]

A run may take fewer families than the file plans: ``--families=ipv4`` (HARNESS_FAMILIES)
loads it without its IPv6 settings, and without the machines, interfaces and segments that
had only IPv6, as if the plan had never had any: the same lab before IPv6 was deployed.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.core import settings
from harness.core.errors import UsageError
from harness.core.links import Family, Interface
from harness.model import inventory_keys
from harness.model.inventory import (
    Config,
    Config6,
    Host,
    Inventory,
    IPAddress,
    Kind,
    Nic,
    Segment,
    User,
    eui64,
)
from harness.model.inventory_shape import FAMILY_KEYS, expand_rooms, only_families

_NAME = re.compile(r"[a-z][a-z0-9-]*")
_LOGIN = re.compile(r"[a-z][a-z0-9_]*")
ROOM_SIZE_ENV = settings.BY_NAME["room_size"].env  # for messages; harness.core.settings reads and writes it
FAMILIES_ENV = settings.BY_NAME["families"].env


def _line_of(text: str, table: str, name: str) -> int:
    pattern = re.compile(rf"^[ \t]*\[{re.escape(table)}\.\"?{re.escape(name)}\"?\]", re.MULTILINE)
    found = pattern.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else 0


def load(path: Path, room_size: int | None = None, families: Iterable[Family] | None = None) -> Inventory:
    """Read and validate the inventory at ``path``; `UsageError` naming file:line and the fix.

    ``room_size`` (default: the run's, `harness.core.settings.inventory_shape`, else each room's own
    count) sets the count of every room; ``families`` (default: the run's, else all) the
    families it keeps."""
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}") from None
    run_size, run_families = settings.inventory_shape()
    kept = families if families is not None else run_families
    return parse(data, text, str(path), room_size if room_size is not None else run_size,
                 tuple(kept) if kept is not None else None)


def parse(data: dict[str, Any], text: str = "", where: str = "inventory",
          room_size: int | None = None, families: tuple[Family, ...] | None = None) -> Inventory:
    """Validate already-parsed inventory ``data`` (``text`` locates errors); ``room_size``
    overrides every room's count, ``families`` keeps only those families (`only_families`)."""

    inventory_keys.check(data, text, where)  # a typo, whatever the run keeps
    seat_room: dict[str, str] = {}  # each machine and user a room made -> the room

    def fail(table: str, name: str, message: str) -> UsageError:
        if table in ("machines", "users") and name in seat_room:
            table, name = "rooms", seat_room[name]  # a seat: the room's declaration is at fault
        if table == "rooms" and room_size is not None:
            message += f" (every room has {room_size} machines: --room-size / {ROOM_SIZE_ENV})"
        line = _line_of(text, table, name)
        return UsageError(f"{where}:{line}: [{table}.{name}]: {message}" if line
                          else f"{where}: [{table}.{name}]: {message}")

    if families is not None:
        planned = {f for f in Family for entry in data.get("segments", {}).values()
                   if FAMILY_KEYS[f][0] in entry}
        if planned and not planned & set(families):
            raise UsageError(f"{where}: the run keeps {','.join(families)} ({FAMILIES_ENV}, from --families "
                             f"or ini harness_families), which no segment plans: keep "
                             f"{','.join(f for f in Family if f in planned)}")
        data = only_families(data, families)
    segments = {name: _segment(name, entry, fail) for name, entry in data.get("segments", {}).items()}
    machines, user_entries, rooms = expand_rooms(data, room_size, fail)
    seat_room.update({seat: r.name for r in rooms.values() for seat in (*r.machines, *r.users)})
    hosts: dict[str, Host] = {}
    seen: dict[str, str] = {}
    for name, entry in machines.items():
        if not _NAME.fullmatch(name):
            raise fail("machines", name, "machine names are lowercase [a-z0-9-], starting with a letter")
        nics = []
        for raw in entry.get("interfaces", []):
            nic = _nic(name, raw, segments, fail, seat=name in seat_room)
            for key in (f"MAC {nic.mac}", *(f"address {a}" for a in (nic.address, nic.address6) if a)):
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


def _pool(name: str, entry: dict[str, Any], key: str, net: ipaddress.IPv4Network | ipaddress.IPv6Network,
          fail: Callable[[str, str, str], UsageError]) -> Any:
    """The ``(first, last)`` pool ``entry[key]`` of segment ``name``, inside ``net``."""
    try:
        first, last = (ipaddress.ip_address(a) for a in entry[key])
    except (ValueError, TypeError):
        raise fail("segments", name, f"{key} must be two addresses: {key} = [\"FIRST\", \"LAST\"]") from None
    if first.version != net.version or first not in net or last not in net or int(first) > int(last):
        raise fail("segments", name, f"{key} {first} - {last} must be an ascending range inside {net}")
    return first, last


def _segment(name: str, entry: dict[str, Any], fail: Callable[[str, str, str], UsageError]) -> Segment:
    if "cidr" not in entry and "cidr6" not in entry:
        raise fail("segments", name, "a segment needs a network: cidr = \"10.0.0.0/24\" (IPv4), "
                                     "cidr6 = \"2001:db8::/64\" (IPv6), or both")
    cidr = cidr6 = None
    try:
        if "cidr" in entry:
            cidr = ipaddress.IPv4Network(entry["cidr"])
    except (ValueError, TypeError) as exc:
        raise fail("segments", name, f"bad cidr ({exc}): write e.g. cidr = \"10.0.0.0/24\"") from None
    try:
        if "cidr6" in entry:
            cidr6 = ipaddress.IPv6Network(entry["cidr6"])
    except (ValueError, TypeError) as exc:
        raise fail("segments", name, f"bad cidr6 ({exc}): write e.g. cidr6 = \"2001:db8:1::/64\"") from None
    try:
        mode = Config6(entry.get("ipv6", Config6.DHCP.value))
    except ValueError:
        raise fail("segments", name, f"ipv6 must be one of {', '.join(Config6)}") from None
    if mode is Config6.SLAAC and cidr6 is not None and cidr6.prefixlen != 64:
        raise fail("segments", name, f"SLAAC needs a /64, not {cidr6}: give cidr6 a /64 or ipv6 = \"dhcp\"")
    for key, net in (("pool", cidr), ("pool6", cidr6)):
        if key in entry and net is None:
            raise fail("segments", name, f"{key} without {key.replace('pool', 'cidr')}: give the network too")
    return Segment(name, cidr, _pool(name, entry, "pool", cidr, fail) if cidr and "pool" in entry else None,
                   cidr6, _pool(name, entry, "pool6", cidr6, fail) if cidr6 and "pool6" in entry else None,
                   mode)


def _in_pool(address: IPAddress, pool: tuple[IPAddress, IPAddress] | None) -> bool:
    return (pool is not None and pool[0].version == address.version
            and int(pool[0]) <= int(address) <= int(pool[1]))


def _nic(machine: str, raw: dict[str, Any], segments: dict[str, Segment],
         fail: Callable[[str, str, str], UsageError], seat: bool = False) -> Nic:
    """One interface of ``machine``, checked against its segment. A DHCP interface without
    any address takes them from the segment's pools, unless ``machine`` is a room's ``seat``
    (its room plans its addresses)."""
    try:
        config = Config(raw.get("config", "static"))
        address = ipaddress.IPv4Address(raw["address"]) if "address" in raw else None
        address6 = ipaddress.IPv6Address(raw["address6"]) if "address6" in raw else None
        nic = Nic(raw["name"], raw["segment"], raw["mac"].lower(), address, config,
                  ipaddress.IPv4Address(raw["gateway"]) if raw.get("gateway") else None, address6,
                  Config6(raw["config6"]) if "config6" in raw else None,
                  ipaddress.IPv6Address(raw["gateway6"]) if raw.get("gateway6") else None)
        Interface(machine, nic.name, nic.segment, nic.mac)  # names and MAC syntax
    except KeyError as exc:
        raise fail("machines", machine, f"an interface lacks {exc}: give name, segment, mac, "
                                        "address (and/or address6)") from None
    except (ValueError, UsageError) as exc:
        raise fail("machines", machine, str(exc)) from None
    if nic.segment not in segments:
        raise fail("machines", machine, f"unknown segment {nic.segment!r}; segments: {', '.join(segments)}")
    segment = segments[nic.segment]
    if segment.cidr6 is not None:  # its own config6, else static if it is static, else the segment's
        config6 = nic.config6 or (Config6.STATIC if config is Config.STATIC else segment.ipv6)
        if config6 is Config6.SLAAC:
            derived = eui64(segment.cidr6, nic.mac)
            if address6 not in (None, derived):
                raise fail("machines", machine, f"{nic.name} takes its IPv6 address by SLAAC, which makes "
                                                f"it {derived}, not {address6}: drop address6 or write that")
            address6 = derived
        elif config6 is Config6.STATIC and address6 is None:
            raise fail("machines", machine, f"{nic.name} is static on {nic.segment}, which has IPv6 "
                                            f"({segment.cidr6}): give it address6")
        nic = dataclasses.replace(nic, address6=address6, config6=config6)
    elif address6 is not None or nic.config6 is not None:
        raise fail("machines", machine, f"{nic.name} has IPv6 settings but segment {nic.segment} has no "
                                        "IPv6: give the segment cidr6")
    if not seat and config is Config.DHCP and "address" not in raw and "address6" not in raw:
        nic = _pooled(machine, nic, segment, fail)
    elif address is None and address6 is None:
        raise fail("machines", machine, f"{nic.name} has no address: give address (IPv4), address6 "
                                        "(IPv6), or both")
    for family, held, pool in ((Family.IPV4, address, segment.pool), (Family.IPV6, address6, segment.pool6)):
        if held is None:
            continue
        net = segment.cidr if family is Family.IPV4 else segment.cidr6
        if net is None:
            raise fail("machines", machine, f"{nic.name} has an {family} address but segment "
                                            f"{nic.segment} has no {family} network")
        if held not in net:
            raise fail("machines", machine, f"address {held} is outside segment {nic.segment} ({net})")
        if pool and _in_pool(held, pool):
            raise fail("machines", machine, f"{machine}'s address {held} is inside the pool of "
                                            f"{nic.segment} ({pool[0]} - {pool[1]}), which DHCP hands "
                                            "to unknown machines")
    _gateways(machine, nic, segment, fail)
    return nic


def _pooled(machine: str, nic: Nic, segment: Segment, fail: Callable[[str, str, str], UsageError]) -> Nic:
    """``nic``, a DHCP client that names no address, lent one by each family of its segment:
    IPv4 from the pool, IPv6 by DHCPv6 from pool6 or by SLAAC."""
    lacking = [key for key, lacks in (("pool", segment.cidr and not segment.pool),
                                      ("pool6", nic.config6 is Config6.DHCP and not segment.pool6)) if lacks]
    if lacking:
        raise fail("machines", machine, f"{nic.name} takes its addresses from segment {nic.segment}'s pools "
                                        f"(config dhcp, no address), but {nic.segment} has no {lacking[0]}: "
                                        f"give {nic.segment} {lacking[0]} = [\"FIRST\", \"LAST\"], or "
                                        f"{nic.name} an address (address6 alone: IPv6 only)")
    return dataclasses.replace(nic, pooled=segment.cidr is not None)


def _gateways(machine: str, nic: Nic, segment: Segment, fail: Callable[[str, str, str], UsageError]) -> None:
    """A gateway is the default route of a static address, on its segment: a lease or a router
    advertisement brings its own, and the generators would ignore it there."""
    if nic.gateway is not None:
        if nic.config is Config.DHCP:
            raise fail("machines", machine, f"{nic.name} takes its IPv4 address by DHCP, whose lease brings "
                                            "the default route: drop gateway")
        if nic.address is None:
            raise fail("machines", machine, f"{nic.name} has no IPv4 address for gateway {nic.gateway} to "
                                            "route: give it address, or drop gateway")
        if segment.cidr is None or nic.gateway not in segment.cidr:
            raise fail("machines", machine, f"gateway {nic.gateway} is not on segment {nic.segment} "
                                            f"({segment.cidr})")
    if nic.gateway6 is not None:
        if nic.config6 in (Config6.DHCP, Config6.SLAAC):
            by = "DHCPv6" if nic.config6 is Config6.DHCP else "SLAAC"
            raise fail("machines", machine, f"{nic.name} takes its IPv6 address by {by}, whose router "
                                            "advertisement brings the default route: drop gateway6")
        if segment.cidr6 is None or nic.gateway6 not in segment.cidr6:
            raise fail("machines", machine, f"gateway6 {nic.gateway6} is not on segment {nic.segment}")
