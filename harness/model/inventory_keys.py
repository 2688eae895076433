"""The keys each table of the inventory file takes, declared once as data.

`check` refuses any other key, naming the file's line and the nearest valid name (a typo
is never accepted silently), and docs/reference.md lists these very tables with what each
key means (`harness.reference`), so that what is accepted and what is documented cannot
drift. The meaning of the values is checked by `harness.model.inventory_file`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from harness.core.errors import UsageError

TOP, LAB, SEGMENT, MACHINE, INTERFACE, ROOM, USER = \
    "", "lab", "segments", "machines", "interfaces", "rooms", "users"

# Each table's keys -> what the key says, one line each (a row of docs/reference.md).
KEYS: dict[str, dict[str, str]] = {
    TOP: {
        "lab": "the lab as a whole: `[lab]`",
        "segments": "the networks, one `[segments.NAME]` each",
        "machines": "the machines, one `[machines.NAME]` each",
        "rooms": "identical machines declared once, one `[rooms.NAME]` each",
        "users": "the lab's users, one `[users.LOGIN]` each",
    },
    LAB: {
        "domain": 'the DNS domain the machines are named in: NAME.DOMAIN (default "lab")',
    },
    SEGMENT: {
        "cidr": 'its IPv4 network, e.g. "192.168.0.0/23" (a segment has cidr, cidr6 or both)',
        "pool": 'the IPv4 addresses DHCP lends to machines without a reservation: ["FIRST", "LAST"], '
                "inside cidr",
        "cidr6": 'its IPv6 network, e.g. "2001:db8:1::/64"',
        "pool6": 'the IPv6 addresses DHCPv6 lends to machines without a reservation: ["FIRST", "LAST"], '
                 "inside cidr6",
        "ipv6": 'how its clients configure IPv6: "dhcp" (DHCPv6, the default), "slaac" (a /64), "static"',
    },
    MACHINE: {
        "type": 'what it is for: "service" (the default), "user", "uplink" (the simulated internet)',
        "room": "where it stands, a label (a room's seats have the room's name)",
        "aliases": "other names of it in DNS, unique in the lab: a list",
        "router": "true for the lab's router: it forwards between segments, in each family it has, in a "
                  "pipeline given the inventory (Pipeline(..., inventory=INVENTORY)) (default false)",
        "interfaces": "its network interfaces: a list of inline tables, one per interface (keys below)",
    },
    INTERFACE: {
        "name": 'its name in the machine, e.g. "lan0" (required)',
        "segment": "the segment it is plugged into (required)",
        "mac": 'its MAC address, unique, e.g. "02:00:00:00:00:01" (required)',
        "address": "its IPv4 address, in the segment's cidr and outside its pool; with config "
                   '"dhcp", a reservation',
        "address6": "its IPv6 address, in cidr6 and outside pool6; under SLAAC the inventory computes it",
        "config": 'how it gets its addresses: "static" (the default: the machine sets them) or "dhcp" '
                  "(a reservation of address and address6 on the lab's DHCP server; with neither, "
                  "whatever the segment's pools lend)",
        "config6": 'how it gets its IPv6 address: "static", "dhcp" or "slaac" (default: "static" if '
                   "config is, else the segment's ipv6)",
        "gateway": "the default route of its static IPv4 address: an address of its segment (a DHCP "
                   "lease brings its own)",
        "gateway6": "the default route of its static IPv6 address: an address of its segment (a router "
                    "advertisement brings its own)",
    },
    ROOM: {
        "segment": "the segment its seats are on (required)",
        "machines": 'the seats\' names: a pattern with {n}, the seat\'s number from 1, e.g. "pas-r11p{n}" '
                    "(required)",
        "count": "how many seats (required; --room-size sets every room's for a run)",
        "mac": "the first seat's MAC; seat n's is the first's plus n - 1 (required)",
        "address": "the first seat's IPv4 address; seat n's is the first's plus n - 1",
        "address6": "the first seat's IPv6 address, likewise",
        "config": 'how the seats get their addresses, as an interface\'s (default "dhcp": reservations)',
        "config6": "how the seats get their IPv6 addresses, as an interface's",
        "interface": 'the seats\' interface name (default "lan0")',
        "type": 'the seats\' type, as a machine\'s (default "user")',
        "users": 'seat n\'s user: a pattern with {n}, e.g. "r11p{n}" (optional)',
        "user_type": 'those users\' type (default "contestant")',
    },
    USER: {
        "name": "the user's full name (default: the login)",
        "type": 'what the user is, free text: "contestant", "orga"... (default "user")',
    },
}

# How a message and docs/reference.md name each table.
TITLES = {TOP: "the top level", LAB: "[lab]", SEGMENT: "[segments.NAME]", MACHINE: "[machines.NAME]",
          INTERFACE: "an interface of [machines.NAME]", ROOM: "[rooms.NAME]", USER: "[users.LOGIN]"}
_ENTRIES = (SEGMENT, MACHINE, ROOM, USER)  # the tables of named entries


def check(data: Mapping[str, Any], text: str = "", where: str = "inventory") -> None:
    """Refuse a key that ``data`` (the parsed file; ``text`` locates lines) holds where its
    table takes no such key, or a table that is not one: `UsageError`, one line."""
    _keys(data, TOP, (), text, where)
    if LAB in data:
        _keys(_table(data[LAB], (LAB,), text, where), LAB, (LAB,), text, where)
    for table in _ENTRIES:
        for name, entry in _table(data.get(table, {}), (table,), text, where).items():
            entry = _table(entry, (table, name), text, where)
            _keys(entry, table, (table, name), text, where)
            if table != MACHINE:
                continue
            nics = entry.get("interfaces", [])
            if not isinstance(nics, list):
                raise _error(text, where, (table, name), None, "interfaces must be a list of inline tables: "
                             'interfaces = [{ name = "lan0", segment = "lan", mac = "..." }]')
            for nic in nics:
                _keys(_table(nic, (table, name), text, where, "each interface"), INTERFACE, (table, name),
                      text, where, nic)


def _table(value: Any, path: tuple[str, ...], text: str, where: str, what: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _error(text, where, path, None, f"{what or 'it'} must be a table, not {value!r}")
    return value


def _keys(entry: Mapping[str, Any], table: str, path: tuple[str, ...], text: str, where: str,
          nic: Mapping[str, Any] | None = None) -> None:
    known = KEYS[table]
    for key in entry:
        if key not in known:
            label = f"interface {nic.get('name', '?')}: " if nic is not None else ""
            raise _error(text, where, path, key, f"{label}unknown key {key!r}: {_hint(key, table)} "
                                                 f"(keys: {', '.join(known)})", inline=nic is not None)


def _hint(key: str, table: str) -> str:
    """Where ``key`` belongs if another table takes it, else the nearest name."""
    def tables(name: str) -> str:
        return " or ".join(TITLES[t] for t, keys in KEYS.items() if name in keys)

    if any(key in keys for keys in KEYS.values()):
        return f"it belongs in {tables(key)}"
    close = difflib.get_close_matches(key, KEYS[table], n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    close = difflib.get_close_matches(key, {k for t, keys in KEYS.items() if t != table for k in keys}, n=1)
    if close:
        return f"did you mean {close[0]!r}, which belongs in {tables(close[0])}?"
    return "no key is named like it"


def _error(text: str, where: str, path: tuple[str, ...], key: str | None, message: str,
           inline: bool = False) -> UsageError:
    title = f"[{'.'.join(path)}]" if path else TITLES[TOP]
    line = _line(text, path, key, inline)
    return UsageError(f"{where}:{line}: {title}: {message}" if line else f"{where}: {title}: {message}")


_HEADER = re.compile(r"^[ \t]*\[\[?([^\]\n]*)\]", re.MULTILINE)


def _line(text: str, path: tuple[str, ...], key: str | None, inline: bool) -> int:
    """The line of ``key`` in the entry at ``path`` (the top level if empty), or in one of its
    interfaces if ``inline``; else the line of the entry's header; 0 if the text has neither (an
    entry written as an inline table, say)."""
    headers = [(m.start(), m.end(), tuple(p.strip().strip("\"'") for p in m.group(1).split(".")))
               for m in _HEADER.finditer(text)]
    if path:
        own = next(((start, end) for start, end, name in headers if name == path), None)
        if own is None:
            return 0
        header, body = own
    else:
        header = body = 0
    later = [(start, name) for start, _, name in headers if start >= body]
    end = later[0][0] if later else len(text)  # its own keys, up to the next header
    # then its sub-tables, up to the next header of another entry: [[machines.gw.interfaces]]
    beyond = next((start for start, name in later if not path or name[:len(path)] != path), len(text))
    found = None
    if key is not None:
        assignment = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*[=.]", re.MULTILINE)
        if inline:
            found = re.compile(rf"[{{,][ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=").search(text, body, end) \
                or assignment.search(text, end, beyond)
        else:
            found = assignment.search(text, body, end)
        if found is None and not path:  # a table of the top level: [KEY] or [KEY.NAME]
            found = next((m for m in _HEADER.finditer(text) if m.group(1).split(".")[0].strip() == key), None)
    if found is not None:
        return text.count("\n", 0, found.start()) + 1
    return text.count("\n", 0, header) + 1 if path else 0
