"""Mutants of stage gw (stages/gw.py): plausible regressions of what it builds, one each.

No stage imports this module, so none of it is part of a stage's key: adding or editing a
mutant rebuilds nothing. stages/__init__.py attaches these to stage gw (see harness.model.mutant).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from harness import Family, mutant
from harness.machines.network import set_sysctls
from harness.model.mutant import edit, run
from stages import spec
from stages.generate import reverse_name, reverse_zones
from stages.inventory import INVENTORY
from stages.mutants import common

if TYPE_CHECKING:
    from harness import Lab


# -- mutants: plausible mistakes in what gw promises, one each (see harness.model.mutant) ---------------
# DHCP: each option a client receives, the reservations, the pool, the names DDNS gives.


@mutant("clients get no default route: the routers option was mistyped as another option")
def dhcp_no_router(lab: Lab) -> None:
    common.change_dhcp(lab, lambda dhcp: common.dhcp_option(dhcp, "routers").update(name="time-servers"))


@mutant("clients are told that rhfs0, which serves no DNS, is their DNS server")
def dhcp_wrong_dns_server(lab: Lab) -> None:
    common.change_dhcp(lab, lambda dhcp: common.dhcp_option(dhcp, "domain-name-servers")
                       .update(data="192.168.1.1"))


@mutant("clients are given the public domain prologin.org as their domain name")
def dhcp_wrong_domain_name(lab: Lab) -> None:
    common.change_dhcp(lab, lambda dhcp: common.dhcp_option(dhcp, "domain-name")
                       .update(data="prologin.org"))


@mutant("clients get no domain search list, so short names depend on the domain name alone")
def dhcp_no_search_list(lab: Lab) -> None:
    def drop(dhcp: dict[str, Any]) -> None:
        dhcp["subnet4"][0]["option-data"].remove(common.dhcp_option(dhcp, "domain-search"))

    common.change_dhcp(lab, drop)


@mutant("leases last 360 s instead of 3600 s (a zero lost), so clients renew every few minutes")
def dhcp_short_lease(lab: Lab) -> None:
    common.change_dhcp(lab, lambda dhcp: dhcp.update({"valid-lifetime": 360}))


@mutant("the reservations lost their host names: reserved machines get generated dyn-... names")
def dhcp_reservations_without_names(lab: Lab) -> None:
    def drop(dhcp: dict[str, Any]) -> None:
        for reservation in dhcp["subnet4"][0]["reservations"]:
            del reservation["hostname"]

    common.change_dhcp(lab, drop)


@mutant("the last seat's reservation has a mistyped MAC, so it gets a pool address instead of its own")
def dhcp_reservation_mac_typo(lab: Lab) -> None:
    mac = INVENTORY[INVENTORY.seats()[-1]].nics[0].mac

    def typo(dhcp: dict[str, Any]) -> None:
        [seat] = [r for r in dhcp["subnet4"][0]["reservations"] if r["hw-address"] == mac]
        seat["hw-address"] = "02:99:" + mac[6:]

    common.change_dhcp(lab, typo, forget_leases=True)


@mutant("the last room's reservations were left out of Kea's configuration: its seats get pool addresses")
def dhcp_room_unreserved(lab: Lab) -> None:
    room = list(INVENTORY.rooms.values())[-1]
    macs = {INVENTORY[seat].nics[0].mac for seat in room.machines}

    def drop(dhcp: dict[str, Any]) -> None:
        subnet = dhcp["subnet4"][0]
        subnet["reservations"] = [r for r in subnet["reservations"] if r["hw-address"] not in macs]

    common.change_dhcp(lab, drop, forget_leases=True)


@mutant("the pool was typed over the servers' range (.100-.150): strangers get addresses outside it")
def dhcp_pool_wrong_range(lab: Lab) -> None:
    def move(dhcp: dict[str, Any]) -> None:
        [pool] = dhcp["subnet4"][0]["pools"]
        pool["pool"] = "192.168.1.100 - 192.168.1.150"

    common.change_dhcp(lab, move)


@mutant("Kea sends no DNS updates: machines without a reservation get no name in dyn.prolo")
def ddns_updates_off(lab: Lab) -> None:
    common.change_dhcp(lab, lambda dhcp: dhcp.update({"ddns-send-updates": False}))


@mutant("BIND's copy of the DDNS key differs from Kea's, so every dynamic update is refused")
def ddns_key_mismatch(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/named.conf.local", 'secret "EgpY', 'secret "FgpY')
    common.restart_dns(lab)


# IPv6 on the LAN: router advertisements, DHCPv6 and its options, reservations, names.

LAN_UNIT = f"/etc/systemd/network/10-{INVENTORY['gw'].nic('lan').name}.network"


def change_advertisement(lab: Lab, old: str, new: str) -> None:
    """Edit gw's LAN unit (what it advertises), apply it, and make every client start over."""
    gw, nic = lab["gw"], INVENTORY["gw"].nic("lan")
    edit(gw, LAN_UNIT, old, new)
    run(gw, f"networkctl reload && networkctl reconfigure {nic.name}")
    gw.wait_for_address(nic.name, str(nic.address6))
    run(gw, "systemctl restart kea-dhcp6-server")  # its sockets went with the addresses
    gw.wait_for_open_port(547, "ff02::1:2", "udp")
    common.renew_leases(lab, families=(Family.IPV4,))  # no DHCPv6 lease comes any more


@mutant("gw's router advertisements lost the managed flag: clients never ask DHCPv6 for an address")
def ra_not_managed(lab: Lab) -> None:
    change_advertisement(lab, "Managed=yes", "Managed=no")


@mutant("gw sends no router advertisements (IPv6SendRA forgotten): clients have no IPv6 route or address")
def ra_not_sent(lab: Lab) -> None:
    change_advertisement(lab, "IPv6SendRA=yes", "IPv6SendRA=no")


@mutant("DHCPv6 names rhfs0, which serves no DNS, as the clients' DNS server")
def dhcp6_wrong_dns_server(lab: Lab) -> None:
    rhfs0 = str(INVENTORY["rhfs0"].nic("lan").address6)
    common.change_dhcp(lab, lambda dhcp: common.dhcp_option(dhcp, "dns-servers").update(data=rhfs0),
                       family=Family.IPV6)


@mutant("Kea DHCPv6 no longer sends preference 255: every client waits a second for other offers")
def dhcp6_no_preference(lab: Lab) -> None:
    def drop(dhcp: dict[str, Any]) -> None:
        dhcp["subnet6"][0]["option-data"].remove(common.dhcp_option(dhcp, "preference"))

    common.change_dhcp(lab, drop, family=Family.IPV6)


@mutant("DHCPv6 hands out no domain search list")
def dhcp6_no_search_list(lab: Lab) -> None:
    def drop(dhcp: dict[str, Any]) -> None:
        dhcp["subnet6"][0]["option-data"].remove(common.dhcp_option(dhcp, "domain-search"))

    common.change_dhcp(lab, drop, family=Family.IPV6)


@mutant("DHCPv6 leases last 360 s instead of 3600 s")
def dhcp6_short_lease(lab: Lab) -> None:
    common.change_dhcp(lab, lambda dhcp: dhcp.update({"valid-lifetime": 360, "preferred-lifetime": 270}),
                       forget_leases=True, family=Family.IPV6)


@mutant("the last room's DHCPv6 reservations were left out: its seats get IPv6 pool addresses")
def dhcp6_room_unreserved(lab: Lab) -> None:
    room = list(INVENTORY.rooms.values())[-1]
    macs = {INVENTORY[seat].nics[0].mac for seat in room.machines}

    def drop(dhcp: dict[str, Any]) -> None:
        subnet = dhcp["subnet6"][0]
        subnet["reservations"] = [r for r in subnet["reservations"] if r["hw-address"] not in macs]

    common.change_dhcp(lab, drop, forget_leases=True, family=Family.IPV6)


@mutant("Kea DHCPv6 sends no DNS updates: machines without a reservation get no IPv6 name")
def ddns6_updates_off(lab: Lab) -> None:
    common.change_dhcp(lab, lambda dhcp: dhcp.update({"ddns-send-updates": False}), family=Family.IPV6)


@mutant("the DHCPv6 pool was typed over the servers' range: strangers get addresses outside it")
def dhcp6_pool_wrong_range(lab: Lab) -> None:
    def move(dhcp: dict[str, Any]) -> None:
        [pool] = dhcp["subnet6"][0]["pools"]
        pool["pool"] = "2001:db8:1::1:10 - 2001:db8:1::1:60"

    common.change_dhcp(lab, move, family=Family.IPV6)


@mutant("the DHCPv4 pool ends one short of the inventory's (an off-by-one): its last address is never used")
def dhcp_pool_one_short(lab: Lab) -> None:
    def shorten(dhcp: dict[str, Any]) -> None:
        [pool] = dhcp["subnet4"][0]["pools"]
        first, last = pool["pool"].split(" - ")
        pool["pool"] = f"{first} - {ipaddress.ip_address(last) - 1}"

    common.change_dhcp(lab, shorten)


@mutant("the DHCPv6 pool runs one past the inventory's (an off-by-one): an address outside it is handed out")
def dhcp6_pool_one_long(lab: Lab) -> None:
    def lengthen(dhcp: dict[str, Any]) -> None:
        [pool] = dhcp["subnet6"][0]["pools"]
        first, last = pool["pool"].split(" - ")
        pool["pool"] = f"{first} - {ipaddress.ip_address(last) + 1}"

    common.change_dhcp(lab, lengthen, family=Family.IPV6)


# DNS: every record kind, who gets recursion, where it forwards, transports, transfers, updates.


@mutant("rhfs0's A record is missing from the prolo zone")
def dns_missing_a_record(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/db.prolo", "rhfs0 IN A 192.168.1.1\n", "")
    common.restart_dns(lab)


@mutant("the last seat's A record is missing from the prolo zone (a room grew, the zone did not)")
def dns_seat_a_record_missing(lab: Lab) -> None:
    seat = INVENTORY[INVENTORY.seats()[-1]]
    edit(lab["gw"], f"/etc/bind/db.{INVENTORY.domain}", f"{seat.name} IN A {seat.nics[0].address}\n", "")
    common.restart_dns(lab)


@mutant("web's A record has a typo: 192.168.1.10 instead of 192.168.1.100")
def dns_wrong_a_record(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/db.prolo", "web IN A 192.168.1.100\n", "web IN A 192.168.1.10\n")
    common.restart_dns(lab)


@mutant("the concours alias is missing: the contest site has no name")
def dns_missing_alias(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/db.prolo", "concours IN CNAME web\n", "")
    common.restart_dns(lab)


@mutant("the wiki alias points at rhfs0 instead of web")
def dns_alias_to_wrong_host(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/db.prolo", "wiki IN CNAME web\n", "wiki IN CNAME rhfs0\n")
    common.restart_dns(lab)


@mutant("the last seat's PTR record is missing: its address has no name")
def dns_missing_ptr(lab: Lab) -> None:
    seat = INVENTORY[INVENTORY.seats()[-1]]
    address = seat.nics[0].address
    zone = reverse_name(next(net for net in reverse_zones(INVENTORY) if address in net))
    record = f"{str(address).split('.')[-1]} IN PTR {seat.name}.{INVENTORY.domain}.\n"
    edit(lab["gw"], f"/etc/bind/db.{zone}", record, "")
    common.restart_dns(lab)


@mutant("web's PTR lacks its final dot, so it names web.prolo.1.168.192.in-addr.arpa")
def dns_ptr_without_final_dot(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/db.1.168.192.in-addr.arpa", "100 IN PTR web.prolo.\n",
         "100 IN PTR web.prolo\n")
    common.restart_dns(lab)


@mutant("the reverse zone of 192.168.1.0/24 is not declared: gw, rhfs0 and web have no PTR")
def dns_reverse_zone_missing(lab: Lab) -> None:
    zone = 'zone "1.168.192.in-addr.arpa" { type primary; file "/etc/bind/db.1.168.192.in-addr.arpa"; };\n'
    edit(lab["gw"], "/etc/bind/named.conf.local", zone, "")
    common.restart_dns(lab, zones=("prolo", "dyn.prolo", "0.168.192.in-addr.arpa"))


@mutant("gw is an open resolver: it recurses for anyone, the uplink included")
def dns_recursion_open_to_uplink(lab: Lab) -> None:
    gw = lab["gw"]
    edit(gw, "/etc/bind/named.conf.options", "allow-recursion { lan; };", "allow-recursion { any; };")
    edit(gw, "/etc/bind/named.conf.options", "allow-query-cache { lan; };", "allow-query-cache { any; };")
    common.restart_dns(lab)


@mutant("the LAN's ACL says /24 instead of /23: half the LAN (192.168.1.x) is refused recursion")
def dns_lan_acl_too_narrow(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/named.conf.options", "acl lan { 192.168.0.0/23;", "acl lan { 192.168.0.0/24;")
    common.restart_dns(lab)


@mutant("BIND forwards to a resolver that does not exist (10.0.0.53): no outside name resolves")
def dns_forwarder_wrong(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/named.conf.options", "forwarders { 10.0.0.1; };", "forwarders { 10.0.0.53; };")
    common.restart_dns(lab)


@mutant("gw's firewall drops DNS over TCP (only UDP was thought of): large answers and AXFR fail")
def dns_tcp_dropped(lab: Lab) -> None:
    run(lab["gw"], "nft insert rule inet filter input tcp dport 53 drop")


@mutant("BIND listens on loopback and the uplink only: the LAN gets no DNS answer at all")
def dns_not_listening_on_lan(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/named.conf.options", "listen-on { any; };",
         "listen-on { 127.0.0.1; 10.0.0.254; };")
    common.restart_dns(lab, server="127.0.0.1")


@mutant("zone transfers are allowed to the LAN: any contestant can list every machine")
def dns_axfr_allowed_from_lan(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/named.conf.options", "allow-transfer { none; };", "allow-transfer { lan; };")
    common.restart_dns(lab)


@mutant("the dynamic zone may be transferred by anyone (set up for a secondary that never came)")
def dns_dynamic_zone_transferable(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/named.conf.local", 'allow-update { key "ddns-key"; };',
         'allow-update { key "ddns-key"; }; allow-transfer { any; };')
    common.restart_dns(lab)


@mutant("the dynamic zone accepts unsigned updates from the LAN: any machine can name itself anything")
def dns_unsigned_updates_accepted(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/named.conf.local", 'allow-update { key "ddns-key"; };',
         'allow-update { key "ddns-key"; lan; };')
    common.restart_dns(lab)


@mutant("web's AAAA record is missing: web has no IPv6 name")
def dns_missing_aaaa_record(lab: Lab) -> None:
    web = INVENTORY["web"].nic("lan")
    edit(lab["gw"], f"/etc/bind/db.{INVENTORY.domain}", f"web IN AAAA {web.address6}\n", "")
    common.restart_dns(lab)


@mutant("paste's AAAA record is missing: the IPv6-only machine has no name at all")
def dns_ipv6_only_machine_unnamed(lab: Lab) -> None:
    paste = INVENTORY["paste"].nic("lan")
    edit(lab["gw"], f"/etc/bind/db.{INVENTORY.domain}", f"paste IN AAAA {paste.address6}\n", "")
    common.restart_dns(lab)


@mutant("the LAN's ip6.arpa reverse zone is not declared: no IPv6 address has a name")
def dns_ip6_reverse_zone_missing(lab: Lab) -> None:
    [net] = [n for n in reverse_zones(INVENTORY) if n.version == 6]
    name = reverse_name(net)
    edit(lab["gw"], "/etc/bind/named.conf.local",
         f'zone "{name}" {{ type primary; file "/etc/bind/db.{name}"; }};\n', "")
    common.restart_dns(lab, zones=(INVENTORY.domain,))


@mutant("the LAN's ACL was written for IPv4 only: IPv6 clients are refused recursion")
def dns_lan_acl_ipv4_only(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/named.conf.options", f" {INVENTORY.segments['lan'].cidr6};", "")
    common.restart_dns(lab)


@mutant("BIND does not listen on IPv6 (Debian's listen-on-v6 left at none): IPv6 clients get no answer")
def dns_not_listening_on_ipv6(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/named.conf.options", "listen-on-v6 { any; };", "listen-on-v6 { none; };")
    common.restart_dns(lab)


@mutant("the public zone has no AAAA records: the internet looks IPv4-only from the LAN")
def uplink_zone_without_aaaa(lab: Lab) -> None:
    internet = lab["internet"]
    run(internet, f"sed -i '/ IN AAAA /d' /etc/bind/db.{spec.UPLINK_ZONE} && systemctl restart named")
    internet.wait_for_unit("named.service")
    uplink = str(INVENTORY["internet"].nic("uplink").address)
    internet.wait_until_succeeds(f"dig +short +norecurse @{uplink} {spec.UPLINK_ZONE} SOA | grep -q .")
    run(lab["gw"], "rndc flush")
    common.flush_dns_caches(lab)


# Firewall and NAT: the forward policy, what gw accepts from each segment, the NAT's scope.


@mutant("the masquerade rule is gone: LAN traffic leaves with private source addresses")
def nat_masquerade_dropped(lab: Lab) -> None:
    run(lab["gw"], "nft flush chain ip nat postrouting")


@mutant("the masquerade covers 192.168.1.0/24 only, not the whole /23: the rooms (192.168.0.x) are not NATed")
def nat_misses_half_the_lan(lab: Lab) -> None:
    run(lab["gw"], "nft flush chain ip nat postrouting && nft add rule ip nat postrouting "
                   "ip saddr 192.168.1.0/24 oifname wan0 masquerade")


@mutant("gw routes IPv4 no more (ip_forward reset to 0 by a stray sysctl.d file): the LAN is cut off")
def gw_forwarding_off(lab: Lab) -> None:
    # /proc/sys is read-only inside a machine: set it in gw's network namespace, from outside.
    set_sysctls(lab.network.namespace("gw"), {"net.ipv4.ip_forward": "0"})


@mutant("the forward chain's policy is accept: the uplink opens connections into the LAN")
def fw_forward_policy_accept(lab: Lab) -> None:
    run(lab["gw"], "nft chain inet filter forward '{ policy accept; }'")


@mutant("a port forward left behind: the uplink reaches web's HTTP port through gw")
def fw_web_exposed_to_uplink(lab: Lab) -> None:
    run(lab["gw"], "nft insert rule inet filter forward iifname wan0 oifname lan0 tcp dport 80 accept")


@mutant("the forward chain lost its established/related rule: the LAN's connections get no replies")
def fw_no_reply_rule(lab: Lab) -> None:
    run(lab["gw"], "nft flush chain inet filter forward && nft add rule inet filter forward "
                   "iifname lan0 oifname wan0 accept")


@mutant("gw's SSH is open to the uplink")
def fw_ssh_open_to_uplink(lab: Lab) -> None:
    run(lab["gw"], "nft insert rule inet filter input iifname wan0 tcp dport 22 accept")


@mutant("gw's input policy is accept: every port of gw is open to the uplink")
def fw_input_policy_accept(lab: Lab) -> None:
    run(lab["gw"], "nft chain inet filter input '{ policy accept; }'")


@mutant("gw drops DNS from the uplink, which may ask it about the lab's zones")
def fw_dns_dropped_from_uplink(lab: Lab) -> None:
    run(lab["gw"], "nft insert rule inet filter input iifname wan0 udp dport 53 drop && "
                   "nft insert rule inet filter input iifname wan0 tcp dport 53 drop")


@mutant("gw drops SSH from the LAN: the admins are locked out of the gateway")
def fw_ssh_dropped_from_lan(lab: Lab) -> None:
    run(lab["gw"], "nft insert rule inet filter input iifname lan0 tcp dport 22 drop")


@mutant("gw's firewall is `table ip filter`, written for IPv4: IPv6 is not filtered at all")
def fw_ipv6_unfiltered(lab: Lab) -> None:
    run(lab["gw"], "nft list table inet filter > /tmp/filter.nft && nft delete table inet filter && "
                   "sed -i 's/^table inet filter/table ip filter/; /icmpv6/d; /ip6 /d' /tmp/filter.nft && "
                   "nft -f /tmp/filter.nft")


@mutant("gw's firewall drops ICMPv6 (only ICMP was thought of): IPv6 neighbours cannot find gw")
def fw_icmpv6_dropped(lab: Lab) -> None:
    run(lab["gw"], "nft insert rule inet filter input meta l4proto ipv6-icmp drop")
    for machine, nic in common.dhcp_clients(lab):
        run(machine, f"ip -6 neigh flush dev {nic}")


@mutant("gw's firewall drops DHCPv6 from the LAN")
def fw_dhcp6_dropped_from_lan(lab: Lab) -> None:
    run(lab["gw"], "nft insert rule inet filter input iifname lan0 udp dport 547 drop")


@mutant("gw masquerades IPv6 too (NAT66, copied from IPv4): the internet sees gw, not the contestant")
def nat66_masquerade(lab: Lab) -> None:
    wan = INVENTORY["gw"].nic("uplink").name
    run(lab["gw"], "nft add table ip6 nat && nft 'add chain ip6 nat postrouting { type nat hook postrouting "
                   f"priority srcnat; }}' && nft add rule ip6 nat postrouting oifname {wan} masquerade")


@mutant("gw forwards replies but not related packets (`ct state established accept`): packet-too-big "
        "and fragmentation-needed are dropped, and a path with a narrower link is a PMTU black hole")
def fw_forward_drops_related(lab: Lab) -> None:
    run(lab["gw"], "h=$(nft -a list chain inet filter forward | sed -n "
                   "'s/.*ct state established,related accept # handle \\([0-9]*\\)$/\\1/p') && "
                   "nft replace rule inet filter forward handle \"$h\" ct state established accept")


@mutant("the internet has no route to the LAN's prefix: IPv6 replies to the LAN go nowhere")
def uplink_no_route_to_lan6(lab: Lab) -> None:
    run(lab["internet"], f"ip -6 route del {INVENTORY.segments['lan'].cidr6}")


@mutant("DNS64 is off: the IPv6-only machine finds no address for a name that has only A records")
def dns64_off(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/named.conf.options",
         f"dns64 {spec.NAT64_PREFIX} {{ clients {{ ipv6-only; }}; }};", "")
    common.restart_dns(lab)


@mutant("DNS64 answers everyone: dual-stack machines get synthesized AAAA records and go through NAT64")
def dns64_for_everyone(lab: Lab) -> None:
    edit(lab["gw"], "/etc/bind/named.conf.options", "clients { ipv6-only; }", "clients { any; }")
    common.restart_dns(lab)


@mutant("TAYGA is not running (NAT64 down): the IPv6-only machine reaches no IPv4 destination")
def nat64_stopped(lab: Lab) -> None:
    run(lab["gw"], "systemctl disable --now tayga.service")


@mutant("the forward chain has no rule for NAT64's tun device: translated packets are dropped")
def nat64_not_forwarded(lab: Lab) -> None:
    run(lab["gw"], "nft -a list chain inet filter forward | sed -n 's/.*comment \"nat64\" # handle //p' | "
                   "xargs -r -n1 nft delete rule inet filter forward handle")


@mutant("gw's firewall drops DHCP from the LAN",
        equivalent="Kea reads and sends DHCP on a raw socket, beside netfilter's input hook: "
                   "clients get their leases all the same")
def fw_dhcp_dropped_from_lan(lab: Lab) -> None:
    run(lab["gw"], "nft insert rule inet filter input iifname lan0 udp dport 67 drop")


@mutant("an admin allowed root SSH logins with an empty password on gw, to debug, and left it so")
def gw_root_ssh_empty_password(lab: Lab) -> None:
    gw = lab["gw"]
    run(gw, "printf 'PermitRootLogin yes\\nPermitEmptyPasswords yes\\n' > /etc/ssh/sshd_config.d/debug.conf "
            "&& systemctl restart ssh")
    gw.wait_for_open_port(22, str(INVENTORY["gw"].nic("lan").address))


@mutant("Kea's DDNS configuration is world-readable: any user of gw reads the key that rewrites names")
def gw_ddns_key_readable(lab: Lab) -> None:
    run(lab["gw"], "chmod 644 /etc/kea/kea-dhcp-ddns.conf")


@mutant("BIND's zone configuration is world-readable: any user of gw reads the DDNS key in it")
def gw_named_key_readable(lab: Lab) -> None:
    run(lab["gw"], "chmod 644 /etc/bind/named.conf.local")
