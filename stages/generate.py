"""Configuration generated from the inventory: network units, DHCP, DNS, firewall.

Pure functions from `harness.model.inventory.Inventory` to file contents, so the plan is
written once (the machines in stages/inventory.toml, the rest in stages/spec.py) and every
file that restates it is derived.
"""

from __future__ import annotations

import ipaddress
import json

from harness import Family, Inventory
from harness.model.inventory import Config, Config6, Host, Kind, Nic
from stages import policy, spec

# The TSIG secret Kea signs its DNS updates with: lab-only, so a fixed value is fine.
DDNS_KEY = ("ddns-key", "hmac-sha256", "EgpYMoZ/pxF2BzGefRJBJcO/0dmdTdSyhaKY+DYgzUo=")
DDNS_PORT = 53001
# The TSIG key apps signs its containers' records with (zone spec.APPS_ZONE, that one alone).
CONTAINERS_KEY = ("containers-key", "hmac-sha256", "t0yNgP4Xb0w2m6V1dZk8qQ9bJfC3sLhR5eUaWnYiKoM=")
CONTAINERS_HOST = "apps"  # the machine spec.APPS_ROUTED6 is routed to
LAN, UPLINK = spec.LAN, spec.UPLINK
# NAT64 on gw (TAYGA), at spec.NAT64_PREFIX: its own address, for the ICMPv6 errors it sends,
# and the IPv4 addresses it maps IPv6 sources to (then masqueraded)
NAT64_ADDRESS6 = "2001:db8:64::1"
NAT64_POOL = "192.168.255.0/24"
NAT64_ADDRESS = "192.168.255.1"
NAT64_TUN = "nat64"
FAR_LINK, FAR_PEER = "far0", "far1"  # a veth pair: the kernel here has no dummy links


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


def kea_names(inv: Inventory) -> dict[str, object]:
    """How Kea (DHCPv4 and DHCPv6 alike) names its clients in DNS: every client is
    <name>.dyn.<domain>, its reservation's name or, without one, a generated name
    (dyn-192-168-1-200, dyn-2001-db8-1--1-c8), so an unknown machine is reachable by name."""
    return {
        "dhcp-ddns": {"enable-updates": True, "server-ip": "127.0.0.1", "server-port": DDNS_PORT},
        "ddns-send-updates": True, "ddns-override-client-update": True,
        "ddns-override-no-update": True, "ddns-replace-client-name": "always",
        "ddns-generated-prefix": spec.DYNAMIC, "ddns-qualifying-suffix": f"{spec.DYNAMIC}.{inv.domain}.",
        # A dual-stack client has an A record from its DHCPv4 lease and an AAAA record from its
        # DHCPv6 lease, under two different client identities: RFC 4703's conflict check
        # (one DHCID per name) would refuse the second.
        "ddns-use-conflict-resolution": False,
    }


def kea_dhcp4(inv: Inventory) -> str:
    """Kea DHCPv4 configuration: the LAN subnet, its pool, options and a reservation per DHCP machine."""
    gw = inv.router()
    lan = inv.segments[LAN]
    reservations = [{"hw-address": nic.mac, "ip-address": str(nic.address), "hostname": host.name}
                    for host in inv.on(LAN) for nic in host.nics
                    if nic.segment == LAN and nic.config is Config.DHCP and nic.address]
    subnet: dict[str, object] = {
        "id": 1, "subnet": str(lan.cidr), "interface": gw.nic(LAN).name,
        "option-data": [
            {"name": "routers", "data": str(gw.nic(LAN).address)},
            {"name": "domain-name-servers", "data": str(gw.nic(LAN).address)},
            {"name": "domain-name", "data": inv.domain},
            {"name": "domain-search", "data": inv.domain},
        ],
        "reservations": reservations,
    }
    if lan.pool:
        subnet["pools"] = [{"pool": f"{lan.pool[0]} - {lan.pool[1]}"}]
    config = {"Dhcp4": {
        "interfaces-config": {"interfaces": [gw.nic(LAN).name], "dhcp-socket-type": "raw"},
        "lease-database": {"type": "memfile", "persist": True,
                           "name": "/var/lib/kea/kea-leases4.csv", "lfc-interval": 3600},
        "valid-lifetime": spec.LEASE, "renew-timer": spec.LEASE // 4, "rebind-timer": spec.LEASE // 2,
        "authoritative": True,
        **kea_names(inv),
        "subnet4": [subnet],
        "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
                     "output_options": [{"output": "syslog"}]}],
    }}
    return json.dumps(config, indent=2) + "\n"


def kea_dhcp6(inv: Inventory) -> str:
    """Kea DHCPv6 configuration: the LAN's prefix, its pool, DNS options and a reservation (by
    MAC) per machine that takes its IPv6 address by DHCPv6; names by DDNS as for DHCPv4."""
    gw = inv.router()
    lan = inv.segments[LAN]
    reservations = [{"hw-address": nic.mac, "ip-addresses": [str(nic.address6)], "hostname": host.name}
                    for host in inv.on(LAN) for nic in host.nics
                    if nic.segment == LAN and nic.config6 is Config6.DHCP and nic.address6]
    subnet: dict[str, object] = {
        "id": 1, "subnet": str(lan.cidr6), "interface": gw.nic(LAN).name,
        "option-data": [
            # The LAN's only server says so: a client that sees preference 255 requests at
            # once instead of collecting Advertises for a second (RFC 8415, 18.2.1). Sent
            # unasked: clients do not ask for it.
            {"name": "preference", "data": "255", "always-send": True},
            {"name": "dns-servers", "data": str(gw.nic(LAN).address6)},
            {"name": "domain-search", "data": inv.domain},
        ],
        "reservations": reservations,
    }
    if lan.pool6:
        subnet["pools"] = [{"pool": f"{lan.pool6[0]} - {lan.pool6[1]}"}]
    config = {"Dhcp6": {
        # Kea binds to the link-local address, which is unusable until duplicate address
        # detection ends (a second after the link comes up): retry instead of failing.
        "interfaces-config": {"interfaces": [gw.nic(LAN).name], "service-sockets-max-retries": 100,
                              "service-sockets-retry-wait-time": 100},
        "lease-database": {"type": "memfile", "persist": True,
                           "name": "/var/lib/kea/kea-leases6.csv", "lfc-interval": 3600},
        "preferred-lifetime": spec.PREFERRED, "valid-lifetime": spec.LEASE,
        "renew-timer": spec.LEASE // 4, "rebind-timer": spec.LEASE // 2,
        **kea_names(inv),
        "subnet6": [subnet],
        "loggers": [{"name": "kea-dhcp6", "severity": "INFO",
                     "output_options": [{"output": "syslog"}]}],
    }}
    return json.dumps(config, indent=2) + "\n"


def kea_ddns(inv: Inventory) -> str:
    """Kea's DDNS daemon: forward updates of the dynamic zone, signed, to gw's own BIND."""
    name, algorithm, secret = DDNS_KEY
    config = {"DhcpDdns": {
        "ip-address": "127.0.0.1", "port": DDNS_PORT,
        "tsig-keys": [{"name": name, "algorithm": algorithm.upper(), "secret": secret}],
        "forward-ddns": {"ddns-domains": [{
            "name": f"{spec.DYNAMIC}.{inv.domain}.", "key-name": name,
            "dns-servers": [{"ip-address": "127.0.0.1", "port": 53}]}]},
        "reverse-ddns": {"ddns-domains": []},
        "loggers": [{"name": "kea-dhcp-ddns", "severity": "INFO",
                     "output_options": [{"output": "syslog"}]}],
    }}
    return json.dumps(config, indent=2) + "\n"


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


def ipv6_only(inv: Inventory) -> list[Host]:
    """The LAN's machines with no IPv4 address at all."""
    return [h for h in inv.on(LAN) if not h.nic(LAN).takes(Family.IPV4) and h.nic(LAN).address6]


def dns64(inv: Inventory) -> str:
    """BIND's DNS64 for the IPv6-only machines alone: a name with only A records gets AAAA
    records under the NAT64 prefix. Dual-stack machines reach IPv4 themselves: they get the
    real answer."""
    if not ipv6_only(inv):
        return ""
    return f"\n    dns64 {spec.NAT64_PREFIX} {{ clients {{ ipv6-only; }}; }};"


def tayga(inv: Inventory) -> dict[str, str]:
    """NAT64 on gw: TAYGA's configuration and a unit that makes its tun device, routes the
    prefix and the pool to it, and runs it."""
    conf = "\n".join([f"tun-device {NAT64_TUN}", f"ipv4-addr {NAT64_ADDRESS}", f"ipv6-addr {NAT64_ADDRESS6}",
                      f"prefix {spec.NAT64_PREFIX}", f"dynamic-pool {NAT64_POOL}",
                      "data-dir /var/spool/tayga"])
    unit = "\n".join([
        "[Unit]", "Description=TAYGA NAT64 (IPv6-only machines to the IPv4 internet)",
        "After=systemd-networkd.service", "",
        "[Service]", "ExecStartPre=/usr/sbin/tayga --mktun",
        f"ExecStartPre=/sbin/ip link set {NAT64_TUN} up",
        f"ExecStartPre=/sbin/ip route replace {NAT64_POOL} dev {NAT64_TUN}",
        f"ExecStartPre=/sbin/ip route replace {spec.NAT64_PREFIX} dev {NAT64_TUN}",
        "ExecStart=/usr/sbin/tayga --nodetach", "ExecStopPost=/usr/sbin/tayga --rmtun", "",
        "[Install]", "WantedBy=multi-user.target"])
    return {"/etc/tayga.conf": conf + "\n", "/etc/systemd/system/tayga.service": unit + "\n"}


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


# ICMPv6 that gw cannot do without (RFC 4890): neighbour discovery (IPv6's ARP) and router
# solicitations. The errors a connection needs (packet too big above all: IPv6 routers do
# not fragment) are related to it, and pass with its replies.
ICMPV6_LINK = ("nd-router-solicit", "nd-neighbor-solicit", "nd-neighbor-advert")


def nftables_router(inv: Inventory) -> str:
    """gw's ruleset, from the policy table (stages/policy.py): the services gw accepts from
    each segment, new connections forwarded only between the segments it routes (both
    families alike) and, from a segment it does not route, to the openings of `policy.INGRESS`
    alone (one address, one port), masquerade to the uplink for IPv4 (IPv6 is routed as it is). Everything
    else is dropped, so a client sees no answer at all."""
    gw = inv.router()
    wan = gw.nic(UPLINK).name
    accept = []
    for service in (s for s in policy.served(inv) if s.machine == gw.name):
        if service.proto is policy.Proto.ICMP:
            what = ["icmp type echo-request", "icmpv6 type echo-request"]
        else:
            what = [f"{service.proto} dport {service.port}"]
        accept += [f'iifname "{gw.nic(segment).name}" {match} accept comment "{service.name}"'
                   for segment in sorted(service.allowed) for match in what]
    forward = [f'iifname "{gw.nic(a).name}" oifname "{gw.nic(b).name}" accept' for a, b in policy.ROUTED]
    if routed := routed6(inv):  # the LAN to the containers' /80, through the machine that runs them
        forward.append(f'iifname "{gw.nic(LAN).name}" oifname "{gw.nic(LAN).name}" ip6 daddr {routed[0]} '
                       f'accept comment "routed to {CONTAINERS_HOST}"')
    for opening in policy.ingress(inv):  # the uplink's exceptions: one address, one port each
        ip = "ip" if opening.family is Family.IPV4 else "ip6"
        source, into = gw.nic(opening.segment).name, gw.nic(str(policy.inside(inv, opening))).name
        forward.append(f'iifname "{source}" oifname "{into}" {ip} daddr {opening.address} '
                       f'{opening.proto} dport {opening.port} accept comment "ingress {opening.name}"')
    if ipv6_only(inv):  # NAT64: into TAYGA from the LAN, out of it (as IPv4) to the uplink
        forward += [f'iifname "{gw.nic(LAN).name}" oifname "{NAT64_TUN}" accept comment "nat64"',
                    f'iifname "{NAT64_TUN}" oifname "{wan}" accept comment "nat64"']
    indent = "\n        "
    return f"""#!/usr/sbin/nft -f
flush ruleset

table inet filter {{
    chain input {{
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        ct state invalid drop
        iifname "lo" accept
        icmpv6 type {{ {", ".join(ICMPV6_LINK)} }} accept
        {indent.join(accept)}
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        {indent.join(forward)}
    }}
}}

table ip nat {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{wan}" masquerade
    }}
}}
"""


def far_network(inv: Inventory) -> dict[str, str]:
    """The internet's narrow link: a veth pair of `spec.NARROW_MTU` bytes, ``far0`` holding the
    first address of `spec.FAR` in each family of the lab (nothing answers beyond it). The
    internet forwards (`Inventory.forwarding`, set from outside: stages/__init__.py), so it
    routes to FAR, and answers a packet too big for the link, as a router does."""
    addresses = [f"Address={spec.FAR[f].network_address + 1}/{spec.FAR[f].prefixlen}" for f in inv.families()]
    return {f"/etc/systemd/network/20-{FAR_LINK}.netdev":
            f"[NetDev]\nName={FAR_LINK}\nKind=veth\nMTUBytes={spec.NARROW_MTU}\n\n"
            f"[Peer]\nName={FAR_PEER}\nMTUBytes={spec.NARROW_MTU}\n",
            **network_unit(FAR_LINK, [*addresses, "IPv6AcceptRA=no"]),
            **network_unit(FAR_PEER, ["LinkLocalAddressing=no", "IPv6AcceptRA=no"])}


def uplink_named(inv: Inventory) -> dict[str, str]:
    """BIND on the simulated internet: authoritative for the public-looking zone (A and AAAA),
    no recursion."""
    me = inv[next(h.name for h in inv.hosts.values() if h.kind is Kind.UPLINK)].nic(UPLINK)
    records = [f"{owner} IN {kind} {address}" for owner in ("@", "ns", "www")
               for kind, address in (("A", me.address), ("AAAA", me.address6)) if address]
    records.append(f"{spec.UPLINK_IPV4_ONLY} IN A {me.address}")
    zone = "\n".join([
        "$TTL 300",
        f"@ IN SOA ns.{spec.UPLINK_ZONE}. hostmaster.{spec.UPLINK_ZONE}. ( 1 3600 600 86400 300 )",
        f"@ IN NS ns.{spec.UPLINK_ZONE}.", *records]) + "\n"
    return {
        "/etc/bind/named.conf.options": 'options {\n    directory "/var/cache/bind";\n'
                                        "    listen-on { any; };\n    listen-on-v6 { any; };\n"
                                        "    allow-query { any; };\n    recursion no;\n"
                                        "    dnssec-validation no;\n};\n",
        "/etc/bind/named.conf.local": f'zone "{spec.UPLINK_ZONE}" {{ type primary; '
                                      f'file "/etc/bind/db.{spec.UPLINK_ZONE}"; }};\n',
        f"/etc/bind/db.{spec.UPLINK_ZONE}": zone,
    }


UPLINK_NGINX = r"""# The simulated internet: a connectivity check, and a log of who asked (NAT shows here).
log_format clients '$remote_addr "$request" $status';

server {
    listen 80 default_server;
    listen [::]:80 default_server;
    access_log /var/log/nginx/clients.log clients;
    location = /generate_204 { return 204; }
    location / { return 200 "hello from the internet\n"; }
}
"""


def topology_dot(inv: Inventory) -> str:
    """The lab as a graphviz graph: one node per segment and per machine, edges labelled with
    interface and address."""
    lines = ["graph lab {", '  graph [rankdir=LR, fontname="sans"];',
             '  node [fontname="sans", fontsize=11]; edge [fontname="sans", fontsize=9];']
    for seg in inv.segments.values():
        pool = "".join(f"\\npool {p[0]} - {p[1]}" for p in (seg.pool, seg.pool6) if p)
        nets = "\\n".join(str(seg.network(f)) for f in seg.families())
        lines.append(f'  "{seg.name}" [shape=box, style="rounded,filled", fillcolor="#e8f0fe", '
                     f'label="{seg.name}\\n{nets}{pool}"];')
    for host in inv.hosts.values():
        extra = f"\\n({', '.join(host.aliases)})" if host.aliases else ""
        shape = "box, peripheries=2" if host.router else "ellipse" if host.kind is Kind.USER else "box"
        lines.append(f'  "{host.name}" [shape={shape}, label="{host.name}\\n{host.kind} / '
                     f'{host.room}{extra}"];')
        for nic in host.nics:
            held = "\\n".join(str(nic.address_of(f)) for f in nic.families())
            lines.append(f'  "{host.name}" -- "{nic.segment}" [label="{nic.name} {held}'
                         f'\\n{nic.config}"];')
    return "\n".join([*lines, "}"]) + "\n"
