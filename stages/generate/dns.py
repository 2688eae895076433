"""BIND on gw, derived from the inventory: the forward zone, the reverse zones and their names,
the dynamic zones DDNS and apps update, DNS64 for the IPv6-only machines, and named.conf.

Its own module because zones are derived from names and addresses (not from the segments'
wiring, as the units and the firewall are), and the reverse-name arithmetic is reused by the
mutants that break a record (stages/mutants/).
"""

from __future__ import annotations

import ipaddress

from harness import Inventory
from harness.model.inventory import Kind
from stages import spec
from stages.generate.dhcp import DDNS_KEY
from stages.generate.network import ipv6_only, routed6
from stages.spec import LAN, UPLINK

# The TSIG key apps signs its containers' records with (zone spec.APPS_ZONE, that one alone).
CONTAINERS_KEY = ("containers-key", "hmac-sha256", "t0yNgP4Xb0w2m6V1dZk8qQ9bJfC3sLhR5eUaWnYiKoM=")


def reverse_zones(inv: Inventory) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The reverse zones covering the LAN: IPv4 in /24s, and its IPv6 prefix whole."""
    lan = inv.segments[LAN]
    zones: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    if lan.cidr:
        zones += list(lan.cidr.subnets(new_prefix=24)) if lan.cidr.prefixlen < 24 \
            else [lan.cidr.supernet(new_prefix=24)]
    if lan.cidr6:
        zones.append(lan.cidr6)
    return zones


def _labels(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    """How many labels of an address's reverse name its zone ``net`` covers (octets, nibbles)."""
    return net.prefixlen // 8 if net.version == 4 else net.prefixlen // 4


def reverse_name(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """``1.168.192.in-addr.arpa`` for 192.168.1.0/24, nibbles under ``ip6.arpa`` for IPv6."""
    labels = net.network_address.reverse_pointer.split(".")
    return ".".join(labels[-(_labels(net) + 2):])


def ptr_owner(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
              net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """The owner name of ``address``'s PTR record, relative to its reverse zone ``net``."""
    labels = address.reverse_pointer.split(".")
    return ".".join(labels[:len(labels) - _labels(net) - 2])


def _soa(inv: Inventory) -> list[str]:
    ns = f"{inv.router().name}.{inv.domain}."
    return ["$TTL 300", f"@ IN SOA {ns} hostmaster.{inv.domain}. ( 1 3600 600 86400 300 )",
            f"@ IN NS {ns}"]


def zone_forward(inv: Inventory) -> str:
    """The ``prolo`` zone: an A and an AAAA record per LAN machine (as it has addresses), a
    CNAME per alias."""
    lines = _soa(inv)
    for host in inv.on(LAN):
        nic = host.nic(LAN)
        lines += [f"{host.name} IN {kind} {address}" for kind, address in (("A", nic.address),
                                                                           ("AAAA", nic.address6)) if address]
        lines += [f"{alias} IN CNAME {host.name}" for alias in host.aliases]
    return "\n".join(lines) + "\n"


def zone_reverse(inv: Inventory, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """A reverse zone: a PTR per LAN machine whose address is in ``net``."""
    lines = _soa(inv)
    for host in inv.on(LAN):
        address = host.nic(LAN).address if net.version == 4 else host.nic(LAN).address6
        if address is not None and address in net:
            lines.append(f"{ptr_owner(address, net)} IN PTR {host.name}.{inv.domain}.")
    return "\n".join(lines) + "\n"


def dns64(inv: Inventory) -> str:
    """BIND's DNS64 for the IPv6-only machines alone: a name with only A records gets AAAA
    records under the NAT64 prefix. Dual-stack machines reach IPv4 themselves: they get the
    real answer."""
    if not ipv6_only(inv):
        return ""
    return f"\n    dns64 {spec.NAT64_PREFIX} {{ clients {{ ipv6-only; }}; }};"


def named_conf(inv: Inventory) -> dict[str, str]:
    """BIND on gw: authoritative for the domain and its reverse zones (transferred to no one),
    recursive for the LAN only, forwarding to the uplink's resolver."""
    upstream = inv[next(h.name for h in inv.hosts.values() if h.kind is Kind.UPLINK)].nic(UPLINK)
    lan = inv.segments[LAN]
    trusted = [str(net) for net in (lan.cidr, lan.cidr6) if net] + ["127.0.0.0/8", "::1"]
    only6 = [str(h.nic(LAN).address6) for h in ipv6_only(inv)]
    routed = routed6(inv)
    if only6 and routed:  # the containers have no IPv4 address either: DNS64 is for them too
        only6.append(str(routed[0]))
    options = f"""acl lan {{ {'; '.join(trusted)}; }};
{f"acl ipv6-only {{ {'; '.join(only6)}; }};" if only6 else ""}

options {{
    directory "/var/cache/bind";
    listen-on {{ any; }};
    listen-on-v6 {{ {'any' if lan.cidr6 else 'none'}; }};
    allow-query {{ any; }};
    recursion yes;
    allow-recursion {{ lan; }};
    allow-query-cache {{ lan; }};
    // No zone leaves gw whole: it has no secondary, and a transfer would list every machine.
    allow-transfer {{ none; }};
    forwarders {{ {upstream.address}; }};
    forward only;
    dnssec-validation no;
    // Lookups made while BIND starts (before its zones load) get SERVFAIL; do not cache
    // those, or gw.{inv.domain} stays unresolvable for a while after every boot.
    servfail-ttl 0;{dns64(inv)}
}};
"""
    key, algorithm, secret = DDNS_KEY
    dynamic = f"{spec.DYNAMIC}.{inv.domain}"
    zones = [f'key "{key}" {{ algorithm {algorithm}; secret "{secret}"; }};',
             f'zone "{inv.domain}" {{ type primary; file "/etc/bind/db.{inv.domain}"; }};',
             f'zone "{dynamic}" {{ type primary; file "/var/lib/bind/db.{dynamic}"; '
             f'allow-update {{ key "{key}"; }}; }};']
    if routed:  # the containers' zone, which apps alone updates (its own key)
        ckey, calgorithm, csecret = CONTAINERS_KEY
        zone = f"{spec.APPS_ZONE}.{inv.domain}"
        zones += [f'key "{ckey}" {{ algorithm {calgorithm}; secret "{csecret}"; }};',
                  f'zone "{zone}" {{ type primary; file "/var/lib/bind/db.{zone}"; '
                  f'allow-update {{ key "{ckey}"; }}; }};']
    ns = f"{inv.router().name}.{inv.domain}."
    files = {"/etc/bind/named.conf.options": options,
             f"/etc/bind/db.{inv.domain}": zone_forward(inv),
             f"/var/lib/bind/db.{dynamic}": "\n".join([
                 "$TTL 300", f"@ IN SOA {ns} hostmaster.{inv.domain}. ( 1 3600 600 86400 300 )",
                 f"@ IN NS {ns}"]) + "\n"}
    if routed:
        files[f"/var/lib/bind/db.{spec.APPS_ZONE}.{inv.domain}"] = files[f"/var/lib/bind/db.{dynamic}"]
    for net in reverse_zones(inv):
        name = reverse_name(net)
        zones.append(f'zone "{name}" {{ type primary; file "/etc/bind/db.{name}"; }};')
        files[f"/etc/bind/db.{name}"] = zone_reverse(inv, net)
    files["/etc/bind/named.conf.local"] = "\n".join(zones) + "\n"
    return files
