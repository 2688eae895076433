"""Stage gw: the LAN's gateway, and the simulated internet behind it.

gw (wan0 10.0.0.254 -> 10.0.0.1, lan0 192.168.1.254/23) runs ISC Kea DHCPv4 (reservations
from the inventory, a pool for unknown machines), BIND 9 (authoritative for the lab's
domain and its reverse zones, recursive for the LAN only, forwarding to the uplink),
nftables (masquerade LAN -> uplink, forward nothing uplink -> LAN) and OpenSSH.

internet (10.0.0.1) stands for everything beyond the uplink, inside the lab: nginx
answering /generate_204 and logging each client's address (NAT shows there), and a
BIND serving a public-looking zone for gw to forward to.
"""

from __future__ import annotations

from harness import rootfs
from harness.build import Build
from harness.stage import Stage
from stages.common import configure_network, write_all
from stages.generate import (
    DDNS_PORT,
    DYNAMIC,
    UPLINK_NGINX,
    UPLINK_ZONE,
    kea_ddns,
    kea_dhcp4,
    named_conf,
    nftables_router,
    reverse_name,
    reverse_zones,
    uplink_named,
)
from stages.inventory import INVENTORY, TEXT

GW_SERVICES = ("systemd-networkd.service", "kea-dhcp4-server.service",
               "kea-dhcp-ddns-server.service", "named.service", "nftables.service", "ssh.service")
INTERNET_SERVICES = ("systemd-networkd.service", "nginx.service", "named.service")


def configure(build: Build) -> None:
    """write network, DHCP, DNS and firewall configuration from the inventory"""
    for machine in ("internet", "gw"):
        configure_network(build, machine)
    write_all(build, "gw", named_conf(INVENTORY))
    rootfs.run_in_root(build.root("gw"), ["chown", "-R", "bind:bind", "/var/lib/bind"])
    build.write("gw", "/etc/kea/kea-dhcp4.conf", kea_dhcp4(INVENTORY))
    build.write("gw", "/etc/kea/kea-dhcp-ddns.conf", kea_ddns(INVENTORY))
    build.write("gw", "/etc/nftables.conf", nftables_router(INVENTORY), 0o755)
    rootfs.systemctl(build.root("gw"), "enable", "nftables.service", "kea-dhcp-ddns-server.service")
    write_all(build, "internet", uplink_named(INVENTORY))
    build.write("internet", "/etc/nginx/sites-available/default", UPLINK_NGINX)


def serving(build: Build) -> None:
    """wait until gw serves DHCP and DNS on the LAN and internet serves DNS and HTTP"""
    gw, internet = build["gw"], build["internet"]
    for unit in GW_SERVICES:
        gw.wait_for_unit(unit)
    for unit in INTERNET_SERVICES:
        internet.wait_for_unit(unit)
    lan = str(INVENTORY["gw"].nic("lan").address)
    gw.wait_for_open_port(67, lan, "udp")
    gw.wait_for_open_port(53, lan, "tcp")
    # BIND listens before its zones are loaded, and caches the SERVFAILs it gives meanwhile
    # for recursive queries: wait for the answers a client (asking for recursion) gets.
    gw.wait_for_open_port(DDNS_PORT, "127.0.0.1", "udp")
    for zone in (INVENTORY.domain, f"{DYNAMIC}.{INVENTORY.domain}",
                 *(reverse_name(n) for n in reverse_zones(INVENTORY))):
        gw.wait_until_succeeds(f"dig +short @{lan} {zone} SOA | grep -q .")
    uplink = str(INVENTORY["internet"].nic("uplink").address)
    internet.wait_until_succeeds(f"dig +short +norecurse @{uplink} {UPLINK_ZONE} SOA | grep -q .")
    internet.wait_for_open_port(80)


STAGE = Stage.here(
    "gw",
    machines=("gw", "internet"),
    packages={"gw": ("kea-dhcp4-server", "kea-dhcp-ddns-server", "bind9", "bind9-dnsutils",
                     "nftables", "openssh-server", "curl"),
              "internet": ("nginx", "bind9", "bind9-dnsutils")},
    prepare=configure,
    ready=(serving,),
    definition={"inventory": TEXT},
    evidence={"gw": {"dhcp-leases": "cat /var/lib/kea/kea-leases4.csv",
                     "named": "rndc status; named-checkconf -z 2>&1 | tail -20"}},
)
