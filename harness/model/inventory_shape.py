"""An inventory's entries reshaped by a run before they are validated: every room's seats
written out as ordinary machines and users (at the run's room size, or each room's own
count), and the settings of the families a run leaves out (``--families``) taken out with
what they alone made, as if the file had never had them. `harness.model.inventory_file`
reads the file and validates what this returns."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from harness.core.errors import UsageError
from harness.core.links import Family
from harness.model.inventory import Config, Config6, Kind, Room

# What the file says about each family, wherever it says it (segments, interfaces, rooms).
FAMILY_KEYS = {Family.IPV4: ("cidr", "pool", "address", "gateway"),
                Family.IPV6: ("cidr6", "pool6", "ipv6", "address6", "gateway6", "config6")}


def takes_slaac(entry: dict[str, Any], segment: dict[str, Any], default_config: str) -> bool:
    """Whether interface (or room) ``entry`` on ``segment`` takes its IPv6 address by SLAAC,
    so has one without saying it: as `_nic` decides (static stays static unless config6)."""
    static = entry.get("config", default_config) == Config.STATIC
    mode = entry.get("config6") or (Config6.STATIC if static else segment.get("ipv6", Config6.DHCP))
    return "cidr6" in segment and mode == Config6.SLAAC


def only_families(data: dict[str, Any], kept: Iterable[Family]) -> dict[str, Any]:
    """``data`` with the settings of every family not ``kept`` taken out, and what they alone
    made: a segment whose only network was of such a family, an interface (or a room) on it
    or whose only addresses were, a machine all of whose interfaces were. Anything else,
    wrong as it may be, is left for validation to refuse."""
    kept = frozenset(kept)
    drop = {key for family in Family if family not in kept for key in FAMILY_KEYS[family]}

    def strip(entry: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in entry.items() if key not in drop}

    def emptied(entry: dict[str, Any], keys: tuple[str, ...]) -> bool:  # had some of keys, all dropped
        return any(k in entry for k in keys) and all(k in drop for k in keys if k in entry)

    segments, gone = {}, set()
    for name, entry in data.get("segments", {}).items():
        if emptied(entry, ("cidr", "cidr6")):
            gone.add(name)
        else:
            segments[name] = strip(entry)

    def dropped(entry: dict[str, Any], default_config: str) -> bool:
        segment = segments.get(str(entry.get("segment")), {})
        slaac = takes_slaac(strip(entry), segment, default_config)
        return entry.get("segment") in gone or (emptied(entry, ("address", "address6")) and not slaac)

    machines = {}
    for name, entry in data.get("machines", {}).items():
        nics = entry.get("interfaces", [])
        left = [strip(nic) for nic in nics if not dropped(nic, Config.STATIC)]
        if left or not nics:
            machines[name] = {**entry, "interfaces": left}
    rooms = {name: strip(entry) for name, entry in data.get("rooms", {}).items()
             if not dropped(entry, Config.DHCP)}
    return {**data, "segments": segments, "machines": machines, "rooms": rooms}


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
        declared = data.get("segments", {}).get(str(entry.get("segment")), {})
        slaac = takes_slaac(entry, declared, Config.DHCP)
        if "address" not in entry and "address6" not in entry and not slaac:
            raise fail("rooms", name, "a room needs its first seat's address (IPv4), address6 (IPv6), "
                                      "or both")
        try:
            mac = int(str(entry["mac"]).replace(":", ""), 16)
            segment = str(entry["segment"])
            firsts = {key: ipaddress.ip_address(entry[key])
                      for key in ("address", "address6") if key in entry}
        except KeyError as exc:
            raise fail("rooms", name, f"a room lacks {exc}: give segment, machines, count, address, "
                                      "mac") from None
        except ValueError as exc:
            raise fail("rooms", name, f"bad first address or MAC ({exc})") from None
        for key, first in firsts.items():
            try:
                anywhere = "::/0" if key == "address6" else "0.0.0.0/0"
                net = ipaddress.ip_network(declared.get(key.replace("address", "cidr"), anywhere))
                last = first + (count - 1)
            except (ValueError, ipaddress.AddressValueError):
                raise fail("rooms", name, f"{count} machines from {first} run past the last "
                                          "address") from None
            end = getattr(net, "broadcast_address", None) if net.version == 4 else None
            if first.version != net.version:
                raise fail("rooms", name, f"{key} {first} is not an IPv{net.version} address")
            if first in net and (last not in net or last == end):
                raise fail("rooms", name, f"{count} machines from {first} overflow segment {segment} "
                                          f"({net}): the last would be {last}"
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
                                **{key: str(first + (n - 1)) for key, first in firsts.items()},
                                "config": entry.get("config", Config.DHCP.value),
                                **({"config6": entry["config6"]} if "config6" in entry else {})}]}
            seats.append(seat)
            if "users" in patterns:
                login = str(patterns["users"]).format(n=n)
                if login in users:
                    raise fail("rooms", name, f"user {login} of seat {seat} is already a user")
                users[login] = {"name": f"{name} seat {n}", "type": entry.get("user_type", "contestant")}
                logins.append(login)
        rooms[name] = Room(name, segment, tuple(seats), tuple(logins))
    return machines, users, rooms
