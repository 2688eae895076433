"""Network configuration of every machine, derived from the inventory: systemd-networkd units
(static addresses, DHCP clients), what the router advertises on each IPv6 segment, the route
to the containers' /80, the uplink's routes to the lab, and /etc/resolv.conf.

Its own module because every machine takes it (stages/common.py configures each stage's
machines with it), whereas the services' files below it are gw's or the internet's alone;
`routed6` and `ipv6_only` are facts of the LAN's addressing that DNS and the router read too.
"""

from __future__ import annotations

import ipaddress

from harness import Family, Inventory
from harness.model.inventory import Config, Config6, Host, Kind, Nic
from stages import spec
from stages.spec import LAN

CONTAINERS_HOST = "apps"  # the machine spec.APPS_ROUTED6 is routed to


def dhcp_unit(ifname: str, ipv4: bool = True, ipv6: bool = False) -> dict[str, str]:
    """The systemd-networkd ``.network`` file of an interface that takes everything from DHCP
    (address, route, resolver, domains, its name): the same for every machine.

    For IPv6 it follows the router's advertisements (DHCPv6 when they set the managed flag,
    SLAAC when they offer the prefix); its DHCPv6 identity is its MAC (a DUID-LL), so that a
    reservation by MAC finds it and the machines booting one tree stay apart."""
    return network_unit(ifname, _dynamic(ipv4, ipv6))


def _dynamic(ipv4: bool, ipv6: bool) -> list[str]:
    """The [Network] lines, and the sections after it, of an interface that takes ``ipv4`` by
    DHCP and ``ipv6`` from the router's advertisements."""
    network = [f"DHCP={'ipv4' if ipv4 else 'no'}", f"IPv6AcceptRA={'yes' if ipv6 else 'no'}"]
    if ipv4:
        network += ["", "[DHCPv4]", "UseHostname=yes", "UseDomains=yes", "ClientIdentifier=mac"]
    if ipv6:  # a client, not a router: it asks for no delegated prefix; under SLAAC the search
        # domain comes in the advertisement itself (DNSSL), which networkd ignores by default
        network += ["", "[DHCPv6]", "DUIDType=link-layer", "UseDomains=yes", "UseDelegatedPrefix=no",
                    "", "[IPv6AcceptRA]", "UseDomains=yes"]
    return network


def network_unit(ifname: str, network: list[str]) -> dict[str, str]:
    """``/etc/systemd/network/10-<ifname>.network`` with ``network`` as its [Network] section."""
    lines = ["[Match]", f"Name={ifname}", "", "[Network]", *network, "", "[Link]", "RequiredForOnline=no"]
    return {f"/etc/systemd/network/10-{ifname}.network": "\n".join(lines) + "\n"}


def network_units(inv: Inventory, host: Host) -> dict[str, str]:
    """systemd-networkd ``.network`` files for ``host``: static addresses (and their default
    routes), or DHCP, family by family; the router advertises each IPv6 segment it serves; the
    uplink routes the lab's IPv6 prefixes to the router (they are not NATed)."""
    units = {}
    for nic in host.nics:
        segment = inv.segments[nic.segment]
        lines = []
        if nic.config is Config.STATIC and nic.address and segment.cidr:
            lines.append(f"Address={nic.address}/{segment.cidr.prefixlen}")
            lines += [f"Gateway={nic.gateway}"] if nic.gateway else []
        if nic.config6 is Config6.STATIC and nic.address6 and segment.cidr6:
            lines.append(f"Address={nic.address6}/{segment.cidr6.prefixlen}")
            lines += [f"Gateway={nic.gateway6}"] if nic.gateway6 else []
        dynamic6 = nic.config6 in (Config6.DHCP, Config6.SLAAC)
        if nic.config is Config.DHCP or dynamic6:  # the other family may be static
            units.update(network_unit(nic.name, [*lines, *_dynamic(
                ipv4=nic.config is Config.DHCP and nic.takes(Family.IPV4), ipv6=dynamic6)]))
            continue
        lines.append("IPv6AcceptRA=no")
        if host.router and segment.cidr6 and nic.gateway6 is None:
            lines += router_advertisement(inv, nic) + _route_to_the_containers(inv, nic)
        if host.kind is Kind.UPLINK:
            lines += _routes_to_the_lab(inv, nic)
        units.update(network_unit(nic.name, lines))
    return units


def router_advertisement(inv: Inventory, nic: Nic) -> list[str]:
    """What the router advertises on ``nic``'s segment: itself as the default router, the
    prefix as on-link, and how to configure. DHCPv6: the managed flag (addresses from DHCPv6)
    and the other-information flag (DNS from DHCPv6). SLAAC: the prefix to build addresses
    from, and the DNS server and domain in the advertisement itself."""
    segment = inv.segments[nic.segment]
    slaac = segment.ipv6 is Config6.SLAAC
    lines = ["IPv6SendRA=yes", "", "[IPv6SendRA]", f"Managed={'no' if slaac else 'yes'}",
             f"OtherInformation={'no' if slaac else 'yes'}"]
    if slaac:
        lines += ["EmitDNS=yes", f"DNS={nic.address6}", "EmitDomains=yes", f"Domains={inv.domain}"]
    lines += ["", "[IPv6Prefix]", f"Prefix={segment.cidr6}",
              f"AddressAutoconfiguration={'yes' if slaac else 'no'}"]
    return lines


def routed6(inv: Inventory) -> tuple[ipaddress.IPv6Network, ipaddress.IPv6Address] | None:
    """(spec.APPS_ROUTED6, the LAN address of the machine it is routed to), if this inventory
    has that machine with an IPv6 address on the LAN and the /80 is of the LAN's prefix."""
    prefix, lan = ipaddress.IPv6Network(spec.APPS_ROUTED6), inv.segments[LAN].cidr6
    host = inv.hosts.get(CONTAINERS_HOST)
    if host is None or lan is None or not prefix.subnet_of(lan):  # type: ignore[arg-type]
        return None
    via = next((n.address6 for n in host.nics if n.segment == LAN and n.address6), None)
    return (prefix, via) if isinstance(via, ipaddress.IPv6Address) else None


def _route_to_the_containers(inv: Inventory, nic: Nic) -> list[str]:
    """The router's route to the containers' /80 (`routed6`) through the machine that runs
    them, and its advertisement as a more specific route through the router: the /80 is
    inside the on-link /64, so without it a client would look its addresses up by neighbour
    discovery on the LAN, where no one answers for them."""
    routed = routed6(inv)
    if routed is None or nic.segment != LAN:
        return []
    prefix, via = routed
    return ["", "[Route]", f"Destination={prefix}", f"Gateway={via}",
            "", "[IPv6RoutePrefix]", f"Route={prefix}"]


def _routes_to_the_lab(inv: Inventory, nic: Nic) -> list[str]:
    gw = inv.router()
    if not any(n.segment == nic.segment and n.address6 for n in gw.nics):
        return []
    via = gw.nic(nic.segment).address6
    return [line for segment in inv.segments.values() if segment.cidr6 and segment.name != nic.segment
            for line in ("", "[Route]", f"Destination={segment.cidr6}", f"Gateway={via}")]


def resolver(inv: Inventory, host: Host) -> str:
    """/etc/resolv.conf of a statically configured ``host``: the LAN's DNS, or its own."""
    if host.router:
        return f"nameserver 127.0.0.1\nsearch {inv.domain}\n"
    if host.kind is Kind.UPLINK:
        return "nameserver 127.0.0.1\n"
    return f"nameserver {inv.router().nic(LAN).address}\nsearch {inv.domain}\n"


def ipv6_only(inv: Inventory) -> list[Host]:
    """The LAN's machines with no IPv4 address at all."""
    return [h for h in inv.on(LAN) if not h.nic(LAN).takes(Family.IPV4) and h.nic(LAN).address6]
