"""Mutants of gw's DNS (BIND, stages/generate/dns.py): every record kind, the reverse zones,
who gets recursion, where it forwards, the transports, transfers and updates it allows; and
the simulated internet's zone, which gw forwards to.

Their own module because they break what a name resolves to, and for whom; they come after the
DHCP mutants (stages/mutants/gw/__init__.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import mutant
from harness.model.mutant import edit, run
from stages import spec
from stages.generate import reverse_name, reverse_zones
from stages.inventory import INVENTORY
from stages.mutants import common

if TYPE_CHECKING:
    from harness import Lab


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
