"""Shared helpers for the reference lab's scenarios (fixtures come from the harness plugin).

Each helper returns what a client saw, and each assertion's first line says what was
expected and what was seen: that line is what a mutation run reports as the kill reason.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from harness.console import CONSOLE_TIMEOUT, ConsoleSession
from harness.errors import CheckFailed
from harness.inventory import Family, Host
from harness.lab import Lab
from harness.machine import Machine
from stages.inventory import INVENTORY

# In the per-machine tables (DNS rows, DHCP options), the first seat stands for every seat:
# they boot one tree. test_rooms.py checks every seat of every room, all at once.
OTHER_SEATS = frozenset(INVENTORY.seats()[1:])


# Scenarios of addressing, DNS, routing, firewall and services run once per family the lab
# carries (test ids say ipv4 or ipv6): an IPv4-only lab generates no IPv6 test at all.
FAMILIES = INVENTORY.families()
by_family = pytest.mark.parametrize("family", FAMILIES, ids=str)


def address(machine: str, family: Family, segment: str = "lan") -> str:
    """``machine``'s address in ``family`` on ``segment``, as the inventory gives it."""
    return str(INVENTORY[machine].nic(segment).address_of(family))


def gw_address(family: Family, segment: str = "lan") -> str:
    """The router's address in ``family`` on ``segment``: the LAN's DNS server and gateway."""
    return address(INVENTORY.router().name, family, segment)


def in_url(address: str) -> str:
    """``address`` as the host part of a URL: ``[2001:db8::1]`` for IPv6."""
    return f"[{address}]" if Family.of(address) is Family.IPV6 else address


def one_seat_for_all(hosts: list[Host]) -> list[Host]:
    """``hosts`` less every seat but the first (see `OTHER_SEATS`)."""
    return [h for h in hosts if h.name not in OTHER_SEATS]


@dataclass(frozen=True)
class Answer:
    """A DNS answer as a client saw it; ``raw`` is dig's output, shown when an assertion fails."""

    status: str
    records: list[str]
    raw: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.status} {self.records}"

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.records})\n--- dig said ---\n{self.raw}"


def dig(client: Machine, *query: str, server: str) -> Answer:
    """The answer ``client`` gets from DNS ``server`` to ``query`` (dig arguments); status
    ``NO ANSWER`` when none came (dig's complaint is in ``raw``)."""
    status, out = client.execute(f"dig +time=2 +tries=2 +noall +comments +answer @{server} "
                                 f"{' '.join(query)} 2>&1")
    found = next((line.split("status: ")[1].split(",")[0] for line in out.splitlines()
                  if "status: " in line), None)
    if status != 0 or found is None:
        return Answer("NO ANSWER", [], out)
    records = [line.split()[-1] for line in out.splitlines() if line and not line.startswith(";")]
    return Answer(found, records, out)


def expect(seen: Answer, wanted: Answer, what: str) -> None:
    """Assert that ``what`` was answered ``wanted``; the message leads with both answers."""
    __tracebackhide__ = True
    assert seen == wanted, f"{what}: expected {wanted}, the client got {seen}\n{seen!r}"


def lease(client: Machine, ifname: str) -> dict[str, str]:
    """The DHCP lease ``client``'s systemd-networkd holds on ``ifname``: its options as
    received (ADDRESS, ROUTER, DNS, DOMAINNAME, LIFETIME, HOSTNAME...).

    A seat's HOSTNAME is the name it took (its transient hostname): a seat has no name of its
    own, and once it has taken the qualified one, it asks for it again in the FQDN option,
    whose answer networkd does not write to the lease file (a renewal would lose it)."""
    [link] = json.loads(client.succeed(f"ip -j link show dev {ifname}"))
    text = client.succeed(f"cat /run/systemd/netif/leases/{link['ifindex']}")
    held = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    if client.name in INVENTORY.seats():
        held["HOSTNAME"] = client.succeed("hostnamectl --transient").strip()
    return held


def _address(raw: list[int]) -> str:
    """networkctl's JSON writes an address as a list of bytes."""
    return str(ipaddress.ip_address(bytes(raw)))


def lease6(client: Machine, ifname: str) -> dict[str, str]:
    """What ``client``'s systemd-networkd took on ``ifname`` from DHCPv6 and from router
    advertisements, keyed like `lease`: ADDRESS, DNS and DOMAIN_SEARCH_LIST as DHCPv6 gave
    them, ROUTER (the advertised default route's gateway), and LIFETIME and PREFERRED, the
    address's lifetimes as granted."""
    link = json.loads(client.succeed(f"networkctl status {ifname} --json=short"))

    def from_dhcp6(key: str) -> list[dict[str, Any]]:
        return [entry for entry in link.get(key) or [] if entry.get("ConfigSource") == "DHCPv6"]

    held = {
        "ADDRESS": " ".join(_address(a["Address"]) for a in from_dhcp6("Addresses")),
        "DNS": " ".join(_address(a["Address"]) for a in from_dhcp6("DNS")),
        "DOMAIN_SEARCH_LIST": " ".join(sorted({a["Domain"] for a in from_dhcp6("SearchDomains")})),
        "ROUTER": " ".join(_address(r["Gateway"]) for r in link.get("Routes") or []
                           if r.get("Family") == socket.AF_INET6 and r.get("DestinationPrefixLength") == 0
                           and str(r.get("ConfigSource")).lower() == "ndisc" and r.get("Gateway")),
    }
    # networkd logs the lifetimes of each lease as it takes it (a second or so already gone);
    # `ip addr` shows only what is left of them
    logged = client.succeed(f"journalctl -q -o cat -u systemd-networkd | grep '{ifname}: DHCPv6 address' "
                            "| tail -1").strip()
    found = re.search(r"\(valid for (.+), preferred for (.+)\)", logged)
    if found:
        held["LIFETIME"], held["PREFERRED"] = (str(seconds(span)) for span in found.groups())
    return held


def granted(held: str | None, lifetime: int) -> bool:
    """Whether a lifetime `lease6` read from networkd's log (``held``) is ``lifetime`` as the
    server granted it: the log is written up to two seconds later."""
    return held is not None and lifetime - 2 <= int(held) <= lifetime


def seconds(span: str) -> int:
    """A systemd time span (``59min 59s``, ``1h 2min``) in seconds."""
    units = {"d": 86400, "h": 3600, "min": 60, "s": 1, "ms": 0}
    return sum(int(n) * units[unit] for n, unit in re.findall(r"(\d+)\s*(d|h|min|ms|s)\b", span))


@contextlib.contextmanager
def console_login(machine: Machine, user: str, timeout: float = CONSOLE_TIMEOUT) -> Iterator[ConsoleSession]:
    """``user`` logged in on ``machine``'s console (their password is their login), each step
    of the login awaited up to ``timeout``."""
    with machine.console() as tty:
        try:
            tty.login(user, user, timeout)
        except CheckFailed as exc:
            raise AssertionError(f"{user} could not log in on {machine.name}'s console: {exc}") from None
        yield tty


def ping(source: Machine, address: str) -> str | None:
    """None if ``address`` answered ``source``'s ping, else what ping said."""
    status, out = source.execute(f"ping -n -c1 -W2 {address} 2>&1")
    return None if status == 0 else " ".join(out.split())[-200:] or f"exit status {status}"


def no_failed_unit(machine: Machine) -> None:
    """A failed unit is a service the machine was meant to run and does not."""
    failed = machine.succeed("systemctl list-units --failed --plain --no-legend").split("\n")
    units = [line.split()[0] for line in failed if line.strip()]
    why = {u: machine.succeed(f"systemctl status --no-pager --lines=8 {u} || true") for u in units}
    assert not units, f"{machine.name}: expected no failed unit, found {', '.join(units)}: {why}"


def seen_by_the_internet(client: Machine, lab: Lab, family: Family) -> str:
    """The source address the internet's web server logged for a request from ``client``
    over ``family`` (after asserting that the request was answered)."""
    marker = f"nat-check-from-{client.name}-{secrets.token_hex(3)}"
    uplink = address("internet", family, "uplink")
    status = client.execute(f"curl -s -{family.version} --max-time 5 -o /dev/null -w '%{{http_code}}' "
                            f"'http://{in_url(uplink)}/generate_204?{marker}'")[1]
    assert status == "204", f"{client.name} asked the uplink ({uplink}) for /generate_204 through gw: " \
                            f"expected HTTP 204, got {status} (000: no answer)"
    # nginx logs a request after sending its answer: the line may come a moment after the 204.
    try:
        seen = lab["internet"].wait_until_succeeds(f"grep -F '{marker}' /var/log/nginx/clients.log",
                                                   timeout=5).split()
    except CheckFailed:
        seen = []
    return seen[0] if seen else "nowhere (not logged)"


def source_seen_outside(machine: str, family: Family) -> str:
    """The source address the internet sees for ``machine``'s connections over ``family``:
    gw's (IPv4 is masqueraded), or the machine's own (the IPv6 prefix is routed)."""
    return gw_address(family, "uplink") if family is Family.IPV4 else address(machine, family)
