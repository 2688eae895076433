"""gw as a router, derived from the inventory and the policy table: its nftables ruleset (what
it accepts, forwards, masquerades) and NAT64 by TAYGA for the IPv6-only machines.

Its own module because the ruleset is the policy table (stages/policy.py) made concrete, and
the rules for NAT64's tun device must match TAYGA's configuration, which is why both are here.
"""

from __future__ import annotations

from harness import Family, Inventory
from stages import policy, spec
from stages.generate.network import CONTAINERS_HOST, ipv6_only, routed6
from stages.spec import LAN, UPLINK

# NAT64 on gw (TAYGA), at spec.NAT64_PREFIX: its own address, for the ICMPv6 errors it sends,
# and the IPv4 addresses it maps IPv6 sources to (then masqueraded)
NAT64_ADDRESS6 = "2001:db8:64::1"
NAT64_POOL = "192.168.255.0/24"
NAT64_ADDRESS = "192.168.255.1"
NAT64_TUN = "nat64"


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
