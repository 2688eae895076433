"""Stage gw: the LAN's gateway, and the simulated internet behind it.

gw (wan0 10.0.0.254 -> 10.0.0.1, lan0 192.168.1.254/23; in IPv6 2001:db8:ffff::fe and
2001:db8:1::1:fe) runs ISC Kea DHCPv4 and DHCPv6 (reservations from the inventory, a pool
for unknown machines), router advertisements for the LAN's /64 (systemd-networkd, managed
flag: clients ask DHCPv6), BIND 9 (authoritative for the lab's domain and its reverse
zones, recursive for the LAN only, forwarding to the uplink), nftables (one policy for both
families; IPv4 masqueraded LAN -> uplink, IPv6 routed as it is; nothing opened uplink ->
LAN) and OpenSSH.

internet (10.0.0.1, 2001:db8:ffff::1) stands for everything beyond the uplink, inside the
lab: nginx answering /generate_204 and logging each client's address (NAT shows there,
and its absence in IPv6), a BIND serving a public-looking zone for gw to forward to, and
a route to the LAN's prefix through gw, and a network beyond a narrow link (192.0.2.0/24 and
2001:db8:fffe::/64 behind a 1280-byte veth pair), whose packet-too-big errors path MTU
discovery across gw needs.
"""

from __future__ import annotations

from harness import Build, Stage
from harness.machines import rootfs
from stages import spec
from stages.common import configure_network, write_all
from stages.generate import (
    DDNS_PORT,
    UPLINK_NGINX,
    far_network,
    ipv6_only,
    kea_ddns,
    kea_dhcp4,
    kea_dhcp6,
    named_conf,
    nftables_router,
    reverse_name,
    reverse_zones,
    routed6,
    tayga,
    uplink_named,
)
from stages.inventory import INVENTORY

NAT64 = bool(ipv6_only(INVENTORY))  # only an IPv6-only machine needs it
GW_SERVICES = ("systemd-networkd.service", "kea-dhcp4-server.service",
               *(("kea-dhcp6-server.service",) if INVENTORY.segments["lan"].cidr6 else ()),
               *(("tayga.service",) if NAT64 else ()),
               "kea-dhcp-ddns-server.service", "named.service", "nftables.service", "ssh.service")
INTERNET_SERVICES = ("systemd-networkd.service", "nginx.service", "named.service")


# A lease handed out before BIND has loaded the dynamic zone, or before Kea's DDNS daemon
# listens, never gets its name: BIND rejects the update (or nobody receives it), and neither
# daemon tries again, while the lease is marked as named. Seen in a build: rhfs0.dyn.prolo had
# its AAAA and no A in every lab resumed from it. So the DHCP servers start once both are
# ready (bounded: a gw whose DNS never comes up still hands out leases, and says so).
AFTER_DNS = f"""[Unit]
After=named.service kea-dhcp-ddns-server.service
Wants=named.service kea-dhcp-ddns-server.service

[Service]
ExecStartPre=-/bin/sh -c 'for try in $$(seq 300); do \\
  dig +short +time=1 +tries=1 @127.0.0.1 {spec.DYNAMIC}.{INVENTORY.domain} SOA | grep -q . \\
  && ss -Hlun "sport = :{DDNS_PORT}" | grep -q . && exit 0; sleep 0.1; done; \\
  echo "DNS or DDNS not ready after 30 s: leases of now on may have no name" >&2; exit 1'
"""


def configure(build: Build) -> None:
    """write network, DHCP, DNS and firewall configuration from the inventory"""
    for machine in ("internet", "gw"):
        configure_network(build, machine)
    write_all(build, "gw", named_conf(INVENTORY))
    rootfs.run_in_root(build.root("gw"), ["chown", "-R", "bind:bind", "/var/lib/bind"])
    build.write("gw", "/etc/kea/kea-dhcp4.conf", kea_dhcp4(INVENTORY))
    if INVENTORY.segments["lan"].cidr6:
        build.write("gw", "/etc/kea/kea-dhcp6.conf", kea_dhcp6(INVENTORY))
    else:  # an IPv4-only plan: no DHCPv6 server at all
        rootfs.systemctl(build.root("gw"), "disable", "kea-dhcp6-server.service")
    build.write("gw", "/etc/kea/kea-dhcp-ddns.conf", kea_ddns(INVENTORY))
    # Both hold the DDNS key (who has it rewrites the lab's names): their daemons' only.
    for path, group in (("/etc/kea/kea-dhcp-ddns.conf", "_kea"), ("/etc/bind/named.conf.local", "bind")):
        rootfs.run_in_root(build.root("gw"), ["sh", "-c", f"chgrp {group} {path} && chmod 640 {path}"])
    build.write("gw", "/etc/nftables.conf", nftables_router(INVENTORY), 0o755)
    if NAT64:
        write_all(build, "gw", tayga(INVENTORY))
        rootfs.systemctl(build.root("gw"), "enable", "tayga.service")
    rootfs.systemctl(build.root("gw"), "enable", "nftables.service", "kea-dhcp-ddns-server.service")
    for server in ("kea-dhcp4-server", "kea-dhcp6-server"):
        build.write("gw", f"/etc/systemd/system/{server}.service.d/after-dns.conf", AFTER_DNS)
    write_all(build, "internet", uplink_named(INVENTORY))
    write_all(build, "internet", far_network(INVENTORY))
    build.write("internet", "/etc/nginx/sites-available/default", UPLINK_NGINX)


def serving(build: Build) -> None:
    """wait until gw serves DHCP and DNS on the LAN and internet serves DNS and HTTP"""
    gw, internet = build["gw"], build["internet"]
    for unit in GW_SERVICES:
        gw.wait_for_unit(unit)
    for unit in INTERNET_SERVICES:
        internet.wait_for_unit(unit)
    nic = INVENTORY["gw"].nic("lan")
    lan = str(nic.address)
    gw.wait_for_open_port(67, lan, "udp")
    # Kea binds its sockets before it serves, and a request in between goes unanswered: it
    # serves once it says so.
    gw.wait_for_journal("DHCP4_STARTED", unit="kea-dhcp4-server.service")
    if nic.address6:  # clients solicit All_DHCP_Relay_Agents_and_Servers, which Kea joins
        gw.wait_for_address(nic.name, str(nic.address6))  # once DAD is over
        gw.wait_for_open_port(547, "ff02::1:2", "udp")
        gw.wait_for_journal("DHCP6_STARTED", unit="kea-dhcp6-server.service")
    gw.wait_for_open_port(53, lan, "tcp")
    # BIND listens before its zones are loaded, and caches the SERVFAILs it gives meanwhile
    # for recursive queries: wait for the answers a client (asking for recursion) gets.
    gw.wait_for_open_port(DDNS_PORT, "127.0.0.1", "udp")
    for zone in (INVENTORY.domain, f"{spec.DYNAMIC}.{INVENTORY.domain}",
                 *([f"{spec.APPS_ZONE}.{INVENTORY.domain}"] if routed6(INVENTORY) else []),
                 *(reverse_name(n) for n in reverse_zones(INVENTORY))):
        gw.wait_until_succeeds(f"dig +short @{lan} {zone} SOA | grep -q .")
    uplink = str(INVENTORY["internet"].nic("uplink").address)
    internet.wait_until_succeeds(f"dig +short +norecurse @{uplink} {spec.UPLINK_ZONE} SOA | grep -q .")
    internet.wait_for_open_port(80)


STAGE = Stage.here(
    "gw",
    machines=("gw", "internet"),
    packages={"gw": ("kea-dhcp4-server", "kea-dhcp6-server", "kea-dhcp-ddns-server", "bind9",
                     "bind9-dnsutils", "nftables", "openssh-server", "curl", "tayga"),
              "internet": ("nginx", "bind9", "bind9-dnsutils", "curl")},  # curl: it tries the lab's openings
    prepare=configure,
    ready=(serving,),
    definition={"inventory": INVENTORY.fingerprint()},
    evidence={"gw": {"dhcp-leases": "cat /var/lib/kea/kea-leases4.csv /var/lib/kea/kea-leases6.csv",
                     "named": "rndc status; named-checkconf -z 2>&1 | tail -20"}},
)
