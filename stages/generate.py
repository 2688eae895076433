"""Configuration generated from the inventory: network units, DHCP, DNS, firewall.

Pure functions from `harness.inventory.Inventory` to file contents, so the plan is
written once (stages/inventory.toml) and every file that restates it is derived.
"""

from __future__ import annotations

import ipaddress
import json

from harness.inventory import Config, Host, Inventory, Kind
from stages import policy

UPLINK_ZONE = "example.org"  # the public-looking zone the simulated internet serves
DYNAMIC = "dyn"  # machines without a reservation are named in <DYNAMIC>.<domain>, by DDNS
# The TSIG secret Kea signs its DNS updates with: lab-only, so a fixed value is fine.
DDNS_KEY = ("ddns-key", "hmac-sha256", "EgpYMoZ/pxF2BzGefRJBJcO/0dmdTdSyhaKY+DYgzUo=")
DDNS_PORT = 53001
LEASE = 3600  # seconds a DHCP lease lasts; clients renew at a quarter, rebind at half
LAN = "lan"
UPLINK = "uplink"


def dhcp_unit(ifname: str) -> dict[str, str]:
    """The systemd-networkd ``.network`` file of an interface that takes everything from DHCP
    (address, route, resolver, domains, its name): the same for every machine."""
    return network_unit(ifname, ["DHCP=ipv4", "", "[DHCPv4]", "UseHostname=yes", "UseDomains=yes",
                                 "ClientIdentifier=mac"])


def network_unit(ifname: str, network: list[str]) -> dict[str, str]:
    """``/etc/systemd/network/10-<ifname>.network`` with ``network`` as its [Network] section."""
    lines = ["[Match]", f"Name={ifname}", "", "[Network]", *network, "", "[Link]", "RequiredForOnline=no"]
    return {f"/etc/systemd/network/10-{ifname}.network": "\n".join(lines) + "\n"}


def network_units(inv: Inventory, host: Host) -> dict[str, str]:
    """systemd-networkd ``.network`` files for ``host``: static addresses, or DHCP."""
    units = {}
    for nic in host.nics:
        if nic.config is Config.DHCP:
            units.update(dhcp_unit(nic.name))
            continue
        lines = [f"Address={nic.address}/{inv.segments[nic.segment].cidr.prefixlen}"]
        if nic.gateway:
            lines.append(f"Gateway={nic.gateway}")
        units.update(network_unit(nic.name, lines))
    return units


def resolver(inv: Inventory, host: Host) -> str:
    """/etc/resolv.conf of a statically configured ``host``: the LAN's DNS, or its own."""
    if host.router:
        return f"nameserver 127.0.0.1\nsearch {inv.domain}\n"
    if host.kind is Kind.UPLINK:
        return "nameserver 127.0.0.1\n"
    return f"nameserver {router(inv).nic(LAN).address}\nsearch {inv.domain}\n"


def router(inv: Inventory) -> Host:
    """The LAN's gateway: the machine marked ``router``."""
    found = [h for h in inv.hosts.values() if h.router]
    assert len(found) == 1, "the inventory names exactly one router"
    return found[0]


def kea_dhcp4(inv: Inventory) -> str:
    """Kea DHCPv4 configuration: the LAN subnet, its pool, options and a reservation per DHCP machine."""
    gw = router(inv)
    lan = inv.segments[LAN]
    reservations = [{"hw-address": nic.mac, "ip-address": str(nic.address), "hostname": host.name}
                    for host in inv.on(LAN) for nic in host.nics
                    if nic.segment == LAN and nic.config is Config.DHCP]
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
        "valid-lifetime": LEASE, "renew-timer": LEASE // 4, "rebind-timer": LEASE // 2,
        "authoritative": True,
        # Every client is named <name>.dyn.<domain> in DNS; one without a reservation gets a
        # generated name (dyn-192-168-1-200), so an unknown machine is reachable by name.
        "dhcp-ddns": {"enable-updates": True, "server-ip": "127.0.0.1", "server-port": DDNS_PORT},
        "ddns-send-updates": True, "ddns-override-client-update": True,
        "ddns-override-no-update": True, "ddns-replace-client-name": "always",
        "ddns-generated-prefix": DYNAMIC, "ddns-qualifying-suffix": f"{DYNAMIC}.{inv.domain}.",
        "subnet4": [subnet],
        "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
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
            "name": f"{DYNAMIC}.{inv.domain}.", "key-name": name,
            "dns-servers": [{"ip-address": "127.0.0.1", "port": 53}]}]},
        "reverse-ddns": {"ddns-domains": []},
        "loggers": [{"name": "kea-dhcp-ddns", "severity": "INFO",
                     "output_options": [{"output": "syslog"}]}],
    }}
    return json.dumps(config, indent=2) + "\n"


def reverse_zones(inv: Inventory) -> list[ipaddress.IPv4Network]:
    """The /24 reverse zones covering the LAN."""
    lan = inv.segments[LAN].cidr
    return list(lan.subnets(new_prefix=24)) if lan.prefixlen < 24 else [lan.supernet(new_prefix=24)]


def reverse_name(net: ipaddress.IPv4Network) -> str:
    """``1.168.192.in-addr.arpa`` for 192.168.1.0/24."""
    return ".".join(reversed(str(net.network_address).split(".")[:3])) + ".in-addr.arpa"


def _soa(inv: Inventory) -> list[str]:
    ns = f"{router(inv).name}.{inv.domain}."
    return ["$TTL 300", f"@ IN SOA {ns} hostmaster.{inv.domain}. ( 1 3600 600 86400 300 )",
            f"@ IN NS {ns}"]


def zone_forward(inv: Inventory) -> str:
    """The ``prolo`` zone: an A record per LAN machine, a CNAME per alias."""
    lines = _soa(inv)
    for host in inv.on(LAN):
        lines.append(f"{host.name} IN A {host.nic(LAN).address}")
        lines += [f"{alias} IN CNAME {host.name}" for alias in host.aliases]
    return "\n".join(lines) + "\n"


def zone_reverse(inv: Inventory, net: ipaddress.IPv4Network) -> str:
    """A reverse zone: a PTR per LAN machine whose address is in ``net``."""
    lines = _soa(inv)
    for host in inv.on(LAN):
        address = host.nic(LAN).address
        if address in net:
            lines.append(f"{str(address).split('.')[-1]} IN PTR {host.name}.{inv.domain}.")
    return "\n".join(lines) + "\n"


def named_conf(inv: Inventory) -> dict[str, str]:
    """BIND on gw: authoritative for the domain and its reverse zones (transferred to no one),
    recursive for the LAN only, forwarding to the uplink's resolver."""
    upstream = inv[next(h.name for h in inv.hosts.values() if h.kind is Kind.UPLINK)].nic(UPLINK)
    options = f"""acl lan {{ {inv.segments[LAN].cidr}; 127.0.0.0/8; }};

options {{
    directory "/var/cache/bind";
    listen-on {{ any; }};
    listen-on-v6 {{ none; }};
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
    servfail-ttl 0;
}};
"""
    key, algorithm, secret = DDNS_KEY
    dynamic = f"{DYNAMIC}.{inv.domain}"
    zones = [f'key "{key}" {{ algorithm {algorithm}; secret "{secret}"; }};',
             f'zone "{inv.domain}" {{ type primary; file "/etc/bind/db.{inv.domain}"; }};',
             f'zone "{dynamic}" {{ type primary; file "/var/lib/bind/db.{dynamic}"; '
             f'allow-update {{ key "{key}"; }}; }};']
    ns = f"{router(inv).name}.{inv.domain}."
    files = {"/etc/bind/named.conf.options": options,
             f"/etc/bind/db.{inv.domain}": zone_forward(inv),
             f"/var/lib/bind/db.{dynamic}": "\n".join([
                 "$TTL 300", f"@ IN SOA {ns} hostmaster.{inv.domain}. ( 1 3600 600 86400 300 )",
                 f"@ IN NS {ns}"]) + "\n"}
    for net in reverse_zones(inv):
        name = reverse_name(net)
        zones.append(f'zone "{name}" {{ type primary; file "/etc/bind/db.{name}"; }};')
        files[f"/etc/bind/db.{name}"] = zone_reverse(inv, net)
    files["/etc/bind/named.conf.local"] = "\n".join(zones) + "\n"
    return files


def nftables_router(inv: Inventory) -> str:
    """gw's ruleset, from the policy table (stages/policy.py): the services gw accepts from
    each segment, new connections forwarded only between the segments it routes, masquerade
    to the uplink. Everything else is dropped, so a client sees no answer at all."""
    gw = router(inv)
    wan = gw.nic(UPLINK).name
    accept = []
    for service in (s for s in policy.SERVICES if s.machine == gw.name):
        what = "icmp type echo-request" if service.proto is policy.Proto.ICMP \
            else f"{service.proto} dport {service.port}"
        accept += [f'iifname "{gw.nic(segment).name}" {what} accept comment "{service.name}"'
                   for segment in sorted(service.allowed)]
    forward = [f'iifname "{gw.nic(a).name}" oifname "{gw.nic(b).name}" accept' for a, b in policy.ROUTED]
    indent = "\n        "
    return f"""#!/usr/sbin/nft -f
flush ruleset

table inet filter {{
    chain input {{
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        ct state invalid drop
        iifname "lo" accept
        # IPv6 neighbour discovery, which any link needs; the policy itself is IPv4
        meta l4proto ipv6-icmp accept
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


def uplink_named(inv: Inventory) -> dict[str, str]:
    """BIND on the simulated internet: authoritative for the public-looking zone, no recursion."""
    me = inv[next(h.name for h in inv.hosts.values() if h.kind is Kind.UPLINK)].nic(UPLINK).address
    zone = "\n".join([
        "$TTL 300",
        f"@ IN SOA ns.{UPLINK_ZONE}. hostmaster.{UPLINK_ZONE}. ( 1 3600 600 86400 300 )",
        f"@ IN NS ns.{UPLINK_ZONE}.", f"@ IN A {me}", f"ns IN A {me}", f"www IN A {me}"]) + "\n"
    return {
        "/etc/bind/named.conf.options": 'options {\n    directory "/var/cache/bind";\n'
                                        "    listen-on { any; };\n    listen-on-v6 { none; };\n"
                                        "    allow-query { any; };\n    recursion no;\n"
                                        "    dnssec-validation no;\n};\n",
        "/etc/bind/named.conf.local": f'zone "{UPLINK_ZONE}" {{ type primary; '
                                      f'file "/etc/bind/db.{UPLINK_ZONE}"; }};\n',
        f"/etc/bind/db.{UPLINK_ZONE}": zone,
    }


UPLINK_NGINX = r"""# The simulated internet: a connectivity check, and a log of who asked (NAT shows here).
log_format clients '$remote_addr "$request" $status';

server {
    listen 80 default_server;
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
        pool = f"\\npool {seg.pool[0]} - {seg.pool[1]}" if seg.pool else ""
        lines.append(f'  "{seg.name}" [shape=box, style="rounded,filled", fillcolor="#e8f0fe", '
                     f'label="{seg.name}\\n{seg.cidr}{pool}"];')
    for host in inv.hosts.values():
        extra = f"\\n({', '.join(host.aliases)})" if host.aliases else ""
        shape = "box, peripheries=2" if host.router else "ellipse" if host.kind is Kind.USER else "box"
        lines.append(f'  "{host.name}" [shape={shape}, label="{host.name}\\n{host.kind} / '
                     f'{host.room}{extra}"];')
        for nic in host.nics:
            lines.append(f'  "{host.name}" -- "{nic.segment}" [label="{nic.name} {nic.address}'
                         f'\\n{nic.config}"];')
    return "\n".join([*lines, "}"]) + "\n"
