"""The lab's connection policy: the ports each machine serves, and from which segments a
client may open a connection to them. It is the one statement of that policy, read twice:
`stages.generate.nftables_router` turns it into gw's firewall, and scenarios/test_policy.py
tries every row from a client standing on each segment. Adding a service here (or a machine
to the inventory) adds its rules and its rows. Its openings from a segment gw does not route
(`INGRESS`: the internet to apps's routed container) are read the same two ways: a forward rule
each, and scenarios/test_routed6.py tries each, and what it leaves closed, from the internet.

A row's outcome, as the client sees it: *accepted* (the TCP handshake completes, the DNS
query is answered, the ping comes back, the DHCP renewal is answered) or *refused*, which
here always means dropped: nothing comes back, because gw's firewall swallowed the packet.
A TCP reset or an ICMP error is neither: it proves the packet got through to a machine that
does not serve that port, so no row expects one.

Rows that no machine of the lab can try are not made: a segment needs a client other than
the router and the server itself (nothing on the uplink but ``internet`` can ask ``internet``),
and a DHCP renewal needs a DHCP client on the segment (the uplink has none).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from harness import Family, Inventory, UsageError
from harness.model.inventory import Config, Config6, Host, Kind, Nic
from stages import spec
from stages.inventory import INVENTORY


class Proto(enum.StrEnum):
    """How a service is reached (``icmp``: echo, for ping)."""

    TCP = "tcp"
    UDP = "udp"
    ICMP = "icmp"


@dataclass(frozen=True)
class Service:
    """Port ``port``/``proto`` of ``machine``, and the segments whose clients it accepts, in
    ``families`` (both, unless the protocol is one family's, as DHCP is)."""

    machine: str
    name: str
    proto: Proto
    port: int | None
    allowed: frozenset[str]
    families: tuple[Family, ...] = tuple(Family)


def _on(machine: str, name: str, proto: Proto, port: int | None, *segments: str,
        families: tuple[Family, ...] = tuple(Family)) -> Service:
    return Service(machine, name, proto, port, frozenset(segments), families)


LAN, UPLINK = "lan", "uplink"
SERVICES = (
    # gw: the LAN's resolver, DHCP server and admin entry; the uplink may ask it about the
    # lab's own zones (BIND answers REFUSED to its recursive queries) but not log in.
    _on("gw", "dns", Proto.UDP, 53, LAN, UPLINK),
    _on("gw", "dns", Proto.TCP, 53, LAN, UPLINK),
    _on("gw", "dhcp", Proto.UDP, 67, LAN, families=(Family.IPV4,)),
    _on("gw", "dhcpv6", Proto.UDP, 547, LAN, families=(Family.IPV6,)),
    _on("gw", "ssh", Proto.TCP, 22, LAN),
    _on("gw", "ping", Proto.ICMP, None, LAN, UPLINK),
    _on("rhfs0", "ssh", Proto.TCP, 22, LAN),
    _on("web", "http", Proto.TCP, 80, LAN),
    _on("web", "postgresql", Proto.TCP, 5432, LAN),
    _on("paste", "http", Proto.TCP, 80, LAN, families=(Family.IPV6,)),
    _on("apps", "http", Proto.TCP, 80, LAN),
    _on("internet", "http", Proto.TCP, 80, LAN, UPLINK),
    _on("internet", "dns", Proto.UDP, 53, LAN, UPLINK),
    _on("internet", "dns", Proto.TCP, 53, LAN, UPLINK),
)
# gw forwards new connections from the first segment into the second, on any port; the
# other way, only replies: nothing from the uplink opens a connection into the LAN, but for
# the openings below.
ROUTED = ((LAN, UPLINK),)


@dataclass(frozen=True)
class Opening:
    """An exception to `ROUTED`: gw forwards new connections from clients on ``segment`` to
    ``address`` (the family is the address's), on ``port``/``proto`` alone. ``name`` says what
    answers there (not a machine of the inventory: a container with an address of its own)."""

    segment: str
    name: str
    address: str
    proto: Proto
    port: int

    @property
    def family(self) -> Family:
        return Family.IPV4 if ipaddress.ip_address(self.address).version == 4 else Family.IPV6


# Ingress from the internet (seed 002's routed containers): the uplink may open TCP connections
# to apps's container at its own IPv6 address, on its port, and to nothing else in its /80 or
# the LAN. There is no IPv4 ingress: the container has no IPv4 address.
INGRESS = (Opening(UPLINK, spec.APPS_CONTAINER, spec.APPS_CONTAINER_ADDRESS, Proto.TCP,
                   spec.APPS_CONTAINER_PORT),)


@dataclass(frozen=True)
class Row:
    """One cell of the matrix: ``client``, standing on ``segment``, tries ``service`` at
    ``address`` (of ``family``). ``route_via`` is set when the client has no route there of
    its own: it adds one through that router address first, as an attacker next door would."""

    segment: str
    service: Service
    client: str
    address: str
    accepted: bool
    family: Family = Family.IPV4
    route_via: str | None = None

    @property
    def id(self) -> str:
        return f"{self.segment}-{self.service.machine}-{self.service.name}-{self.service.proto}-{self.family}"

    @property
    def machines(self) -> tuple[str, str]:
        return self.client, self.service.machine


def router(inv: Inventory) -> Host:
    """The LAN's gateway (gw), which this table's routing is about: the machine the inventory
    marks ``router`` (`Inventory.router`: an inventory that marks none, or two, is refused in
    one line saying what to change)."""
    return inv.router()


def home(inv: Inventory, machine: str) -> str:
    """The segment of a machine that is not the router (its first interface's)."""
    return inv[machine].nics[0].segment


def served(inv: Inventory, services: tuple[Service, ...] = SERVICES) -> tuple[Service, ...]:
    """The services of a lab that keeps ``inv.families()``: a run without IPv6
    (``--families=ipv4``) has no IPv6-only service, nor the IPv6-only machine serving it."""
    return tuple(s for s in services if set(s.families) & set(inv.families()))


def ingress(inv: Inventory, openings: tuple[Opening, ...] = INGRESS) -> tuple[Opening, ...]:
    """The openings of a lab that keeps their family (``--families=ipv4`` keeps none of the
    reference lab's) and a segment holding their address (the routed /80 is in the LAN's /64)."""
    return tuple(o for o in openings if o.family in inv.families() and inside(inv, o) is not None)


def inside(inv: Inventory, opening: Opening) -> str | None:
    """The segment whose network holds ``opening``'s address, if any."""
    ip = ipaddress.ip_address(opening.address)
    return next((s.name for s in inv.segments.values()
                 if (net := s.cidr if opening.family is Family.IPV4 else s.cidr6) is not None and ip in net),
                None)


def check(inv: Inventory, services: tuple[Service, ...] = SERVICES,
          routed: tuple[tuple[str, str], ...] = ROUTED, openings: tuple[Opening, ...] = INGRESS) -> None:
    """Refuse a table that names what the inventory lacks or contradicts itself: a service
    open to a foreign segment gw does not route from, or closed to one it routes (gw forwards
    a routed segment's connections on every port); an opening from an unknown segment, or into
    its own segment or one gw already routes it to whole."""
    gw = router(inv)
    for opening in ingress(inv, openings):
        where = f"policy: ingress to {opening.name} {opening.address} {opening.proto}/{opening.port}"
        if opening.segment not in inv.segments:
            raise UsageError(f"{where}: unknown segment {opening.segment!r}")
        into = inside(inv, opening)
        if into == opening.segment or (opening.segment, into) in routed:
            raise UsageError(f"{where}: {opening.segment} reaches {into} already: an opening is an "
                             f"exception to what gw drops")
    for service in served(inv, services):
        where = f"policy: {service.machine} {service.name}/{service.proto}"
        if service.machine not in inv.hosts:
            raise UsageError(f"{where}: no machine {service.machine!r} in the inventory")
        if unknown := service.allowed - set(inv.segments):
            raise UsageError(f"{where}: unknown segments {sorted(unknown)}")
        if service.machine == gw.name:
            continue
        mine = home(inv, service.machine)
        for segment in set(inv.segments) - {mine}:
            if (segment in service.allowed) != ((segment, mine) in routed):
                raise UsageError(f"{where}: allowed from {segment} must say what gw does: "
                                 f"{'forward' if (segment, mine) in routed else 'drop'} all of it")


def _dhcp_client(nic: Nic, family: Family) -> bool:
    return nic.config is Config.DHCP if family is Family.IPV4 else nic.config6 is Config6.DHCP


def _client(inv: Inventory, segment: str, service: Service, family: Family) -> Host | None:
    """Who tries ``service`` from ``segment`` over ``family``: a user's machine if there is
    one, else the first other machine there with an address of ``family``; for DHCP, only a
    DHCP client of that family."""
    hosts = [h for h in inv.on(segment) if not h.router and h.name != service.machine
             and family in h.nic(segment).families()
             and (not service.name.startswith("dhcp") or _dhcp_client(h.nic(segment), family))]
    hosts.sort(key=lambda h: h.kind is not Kind.USER)
    return hosts[0] if hosts else None


def _has_route(client: Host, nic: Nic, family: Family) -> bool:
    """Whether ``client`` routes beyond its segment on its own: a DHCP lease or a router
    advertisement gives a default route, a static interface may name a gateway, and the
    uplink routes the lab's IPv6 prefixes to gw (they are routed, not NATed)."""
    if family is Family.IPV4:
        return nic.config is Config.DHCP or nic.gateway is not None
    return nic.config6 is not Config6.STATIC or nic.gateway6 is not None or client.kind is Kind.UPLINK


def rows(inv: Inventory, services: tuple[Service, ...] = SERVICES) -> list[Row]:
    """Every (segment, service, family) some machine of the lab can try, with its expected outcome."""
    found = []
    gw = router(inv)
    for service in served(inv, services):
        server = inv[service.machine]
        for family in (f for f in service.families if f in server.families()):
            for segment in (s for s in inv.segments.values() if family in s.families()):
                client = _client(inv, segment.name, service, family)
                if client is None:
                    continue
                near = [n for n in server.nics if n.segment == segment.name and family in n.families()]
                address = (near or [n for n in server.nics if family in n.families()])[0].address_of(family)
                nic = client.nic(segment.name)
                via = None if near or _has_route(client, nic, family) \
                    else str(gw.nic(segment.name).address_of(family))
                found.append(Row(segment.name, service, client.name, str(address),
                                 segment.name in service.allowed, family, via))
    return found


def cidr_of(inv: Inventory, address: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The segment network ``address`` belongs to (where a client adds its route)."""
    ip = ipaddress.ip_address(address)
    return next(net for s in inv.segments.values() for net in (s.cidr, s.cidr6) if net and ip in net)


check(INVENTORY)
ROWS = rows(INVENTORY)
