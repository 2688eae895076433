"""Kea on gw, derived from the inventory: DHCPv4 and DHCPv6 on the LAN (pools, options, a
reservation per machine) and the DDNS daemon that names their clients in the dynamic zone.

Its own module because the address plan's reservations and Kea's JSON change together and
apart from BIND's: the DDNS key it signs with is its own (`DDNS_KEY`), which stages.generate.dns
hands to BIND to check.
"""

from __future__ import annotations

import json

from harness import Inventory
from harness.model.inventory import Config, Config6
from stages import spec
from stages.spec import LAN

# The TSIG secret Kea signs its DNS updates with: lab-only, so a fixed value is fine.
DDNS_KEY = ("ddns-key", "hmac-sha256", "EgpYMoZ/pxF2BzGefRJBJcO/0dmdTdSyhaKY+DYgzUo=")
DDNS_PORT = 53001


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
