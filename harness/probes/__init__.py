"""Probes: what a lab machine sees, asked with its own tools (dig, systemd-networkd,
resolvectl, Kea's lease file, curl, ping, systemctl, its console), as plain values.

Each probe runs its command on a `Machine` (any `Shell`) and hands the output to a pure parser
(``parse_*``), so that what a tool prints is read in one place and checked on sample texts
(tests/test_probes.py). A scenario compares the values to what its plan says; an assertion
helper (`expect`, `no_failed_unit`) hides its own frame from the traceback and leads with
what was expected and what was seen, the line a mutation run reports as the kill reason::

    def test_www_resolves(web):
        expect(dig(web, "www.example.org", "A", server="192.168.1.254"),
               Answer("NOERROR", ["10.0.0.1"]), "web asked gw for www.example.org A")

    def test_pas_takes_gw_as_its_dns(pas):
        assert networkd_lease(pas, "lan0")["DNS"] == "192.168.1.254"
        assert dns_servers(pas, "lan0") == ["192.168.1.254", "2001:db8:1::1:fe"]
"""

from __future__ import annotations

import contextlib
import csv
import ipaddress
import json
import re
import shlex
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from harness.core.errors import CheckFailed
from harness.core.links import Family
from harness.machines.console import CONSOLE_TIMEOUT, ConsoleSession

if TYPE_CHECKING:
    from harness.machines.machine import Machine

__all__ = ["Answer", "Shell", "console_login", "dig", "dns_servers", "expect", "granted", "http_status",
           "in_url", "kea_leases", "networkd_lease", "networkd_lease6", "no_failed_unit",
           "parse_dhcp6_lifetimes", "parse_dig", "parse_kea_leases", "parse_networkd_lease",
           "parse_networkd_link6", "parse_resolvectl", "ping", "search_domains", "seconds"]


class Shell(Protocol):
    """What a probe needs of a machine (a `Machine` has it): its name, a command's exit status
    and output, and a command's output when it must succeed."""

    @property
    def name(self) -> str: ...

    def execute(self, command: str) -> tuple[int, str]: ...

    def succeed(self, command: str) -> str: ...


# -- DNS ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A DNS answer as a client saw it: the status (``NOERROR``, ``NXDOMAIN``, ``REFUSED``...,
    or ``NO ANSWER`` when none came) and the answer section's data, in order (a CNAME's
    target, then the address). ``raw`` is dig's output, shown when an assertion fails and
    ignored by ``==``."""

    status: str
    records: list[str]
    raw: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.status} {self.records}"

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.records})\n--- dig said ---\n{self.raw}"


def dig(client: Shell, *query: str, server: str) -> Answer:
    """The answer ``client`` gets from DNS ``server`` to ``query`` (dig's arguments: a name, a
    type, ``-x ADDRESS``, ``+tcp``...), two tries of two seconds.

        >>> dig(web, "-x", "192.168.1.100", server="192.168.1.254")
        Answer(NOERROR, ['web.prolo.'])
    """
    status, out = client.execute(f"dig +time=2 +tries=2 +noall +comments +answer @{server} "
                                 f"{' '.join(query)} 2>&1")
    return parse_dig(out, status)


def parse_dig(out: str, status: int = 0) -> Answer:
    """dig's output with ``+noall +comments +answer`` (and its exit ``status``) as an `Answer`:
    the header's status, and the last field of each record of the answer section."""
    found = next((line.split("status: ")[1].split(",")[0] for line in out.splitlines()
                  if "status: " in line), None)
    if status != 0 or found is None:
        return Answer("NO ANSWER", [], out)
    records = [line.split()[-1] for line in out.splitlines() if line.strip() and not line.startswith(";")]
    return Answer(found, records, out)


def expect(seen: Answer, wanted: Answer, what: str) -> None:
    """Assert that ``what`` (who asked whom for what) was answered ``wanted``; the message
    leads with both answers, then dig's whole output."""
    __tracebackhide__ = True
    if seen != wanted:
        raise CheckFailed(f"{what}: expected {wanted}, the client got {seen}\n{seen!r}")


# -- DHCP and addresses, as systemd-networkd took them ----------------------------------------------


def networkd_lease(client: Shell, ifname: str) -> dict[str, str]:
    """The DHCPv4 lease ``client``'s systemd-networkd holds on ``ifname``, as it wrote it in
    /run/systemd/netif/leases: the options as received (ADDRESS, ROUTER, DNS, DOMAINNAME,
    LIFETIME, T1, T2, HOSTNAME...). A HOSTNAME the client asked for in the FQDN option is not
    written there: its transient hostname (``hostnamectl --transient``) shows it."""
    [link] = json.loads(client.succeed(f"ip -j link show dev {ifname}"))
    return parse_networkd_lease(client.succeed(f"cat /run/systemd/netif/leases/{link['ifindex']}"))


def parse_networkd_lease(text: str) -> dict[str, str]:
    """A networkd lease file (``KEY=value`` lines, ``#`` comments) as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")


def networkd_lease6(client: Shell, ifname: str) -> dict[str, str]:
    """What ``client``'s systemd-networkd took on ``ifname`` from DHCPv6 and from router
    advertisements, keyed like `networkd_lease` (`parse_networkd_link6`), with LIFETIME and
    PREFERRED, the address's lifetimes in seconds as the server granted them
    (`parse_dhcp6_lifetimes`: networkd logs them as it takes the lease; ``ip addr`` shows only
    what is left of them)."""
    held = parse_networkd_link6(json.loads(client.succeed(f"networkctl status {ifname} --json=short")))
    logged = client.succeed(f"journalctl -q -o cat -u systemd-networkd | grep '{ifname}: DHCPv6 address' "
                            "| tail -1")
    return {**held, **parse_dhcp6_lifetimes(logged)}


def _address(raw: list[int]) -> str:
    """networkctl's JSON writes an address as a list of bytes."""
    return str(ipaddress.ip_address(bytes(raw)))


def parse_networkd_link6(link: dict[str, Any]) -> dict[str, str]:
    """From ``networkctl status IFNAME --json=short``: ADDRESS, DNS and DOMAIN_SEARCH_LIST as
    DHCPv6 gave them, and ROUTER, the gateway of the default route a router advertisement gave
    (space-separated when several, empty when none)."""
    def from_dhcp6(key: str) -> list[dict[str, Any]]:
        return [entry for entry in link.get(key) or [] if entry.get("ConfigSource") == "DHCPv6"]

    return {
        "ADDRESS": " ".join(_address(a["Address"]) for a in from_dhcp6("Addresses")),
        "DNS": " ".join(_address(a["Address"]) for a in from_dhcp6("DNS")),
        "DOMAIN_SEARCH_LIST": " ".join(sorted({a["Domain"] for a in from_dhcp6("SearchDomains")})),
        "ROUTER": " ".join(_address(r["Gateway"]) for r in link.get("Routes") or []
                           if r.get("Family") == socket.AF_INET6 and r.get("DestinationPrefixLength") == 0
                           and str(r.get("ConfigSource")).lower() == "ndisc" and r.get("Gateway")),
    }


def parse_dhcp6_lifetimes(logged: str) -> dict[str, str]:
    """LIFETIME and PREFERRED, in seconds, from networkd's last ``IFNAME: DHCPv6 address ...
    (valid for SPAN, preferred for SPAN)`` line in ``logged``; neither if there is none."""
    found = re.findall(r"\(valid for (.+?), preferred for (.+?)\)", logged)
    if not found:
        return {}
    valid, preferred = found[-1]
    return {"LIFETIME": str(seconds(valid)), "PREFERRED": str(seconds(preferred))}


def granted(held: str | None, lifetime: int, late: int = 2) -> bool:
    """Whether a lifetime read from networkd's log (``held``, `networkd_lease6`) is ``lifetime``
    as the server granted it: the log is written up to ``late`` seconds after the grant."""
    return held is not None and lifetime - late <= int(held) <= lifetime


def seconds(span: str) -> int:
    """A systemd time span (``59min 59s``, ``1h 2min``, ``1d 2h``) in whole seconds."""
    units = {"d": 86400, "h": 3600, "min": 60, "s": 1, "ms": 0}
    return sum(int(n) * units[unit] for n, unit in re.findall(r"(\d+)\s*(d|h|min|ms|s)\b", span))


# -- the resolver, as systemd-resolved holds it -----------------------------------------------------


def dns_servers(client: Shell, ifname: str) -> list[str]:
    """The DNS servers ``client``'s systemd-resolved uses on ``ifname``, in order."""
    return parse_resolvectl(client.succeed(f"resolvectl dns {ifname}"))


def search_domains(client: Shell, ifname: str) -> list[str]:
    """The search domains ``client``'s systemd-resolved uses on ``ifname``, in order."""
    return parse_resolvectl(client.succeed(f"resolvectl domain {ifname}"))


def parse_resolvectl(text: str) -> list[str]:
    """The values of ``resolvectl dns|domain IFNAME``: ``Link 2 (lan0): A B`` gives ``[A, B]``."""
    return text.partition("):")[2].split()


# -- DHCP, as Kea recorded it -------------------------------------------------------------------------

KEA_LEASES = "/var/lib/kea/kea-leases{version}.csv"  # Debian's default memfile, per family


def kea_leases(server: Shell, family: Family, path: str | None = None) -> list[dict[str, str]]:
    """The leases Kea's memfile on ``server`` holds for ``family`` (by default Debian's
    `KEA_LEASES`), oldest first: a lease renewed appears once per renewal, the last one
    current (`parse_kea_leases`)."""
    return parse_kea_leases(server.succeed(f"cat {path or KEA_LEASES.format(version=family.version)}"))


def parse_kea_leases(text: str) -> list[dict[str, str]]:
    """A Kea memfile (CSV, its first line the header: ``address``, ``hwaddr``, ``hostname``,
    ``valid_lifetime``, ``expire``, ``state``..., DHCPv6's with ``duid`` and ``iaid`` too), one
    dict per lease line, keyed by the header. Header lines met again further on (files
    concatenated) are skipped."""
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return []
    header = rows[0]
    return [dict(zip(header, row, strict=False)) for row in rows[1:] if row and row != header]


# -- reachability ------------------------------------------------------------------------------------


def ping(source: Shell, address: str) -> str | None:
    """None if ``address`` answered one ping from ``source`` within two seconds, else what
    ping said (its last 200 characters)."""
    status, out = source.execute(f"ping -n -c1 -W2 {address} 2>&1")
    return None if status == 0 else " ".join(out.split())[-200:] or f"exit status {status}"


def in_url(address: str) -> str:
    """``address`` as the host part of a URL: ``[2001:db8::1]`` for IPv6."""
    return f"[{address}]" if Family.of(address) is Family.IPV6 else address


def http_status(client: Shell, url: str, family: Family | None = None, timeout: float = 5) -> str:
    """The HTTP status ``client`` gets for ``url`` (over ``family`` only, if given), within
    ``timeout`` seconds: ``"204"``, ``"404"``..., or ``"000"`` when no answer came."""
    only = f" -{family.version}" if family else ""
    return client.execute(f"curl -s{only} --max-time {timeout:g} -o /dev/null -w '%{{http_code}}' "
                          f"{shlex.quote(url)}")[1]


# -- the machine itself ------------------------------------------------------------------------------


def no_failed_unit(machine: Shell) -> None:
    """Assert that no unit of ``machine`` failed (a failed unit is a service the machine was
    meant to run and does not); the message names each one, with its status."""
    __tracebackhide__ = True
    failed = machine.succeed("systemctl list-units --failed --plain --no-legend").split("\n")
    units = [line.split()[0] for line in failed if line.strip()]
    why = {u: machine.succeed(f"systemctl status --no-pager --lines=8 {u} || true") for u in units}
    if units:
        raise CheckFailed(f"{machine.name}: expected no failed unit, found {', '.join(units)}: {why}")


@contextlib.contextmanager
def console_login(machine: Machine, user: str, timeout: float = CONSOLE_TIMEOUT) -> Iterator[ConsoleSession]:
    """``user`` logged in on ``machine``'s console, their password being their login, each step
    of the login awaited up to ``timeout``; a login that fails is a `CheckFailed` naming both."""
    __tracebackhide__ = True
    with machine.console() as tty:
        try:
            tty.login(user, user, timeout)
        except CheckFailed as exc:
            raise CheckFailed(f"{user} could not log in on {machine.name}'s console: {exc}") from None
        yield tty
        tty.to_login(timeout)  # the console as it was found: the next test's login needs its prompt
