"""Mutants of gw as a router (stages/generate/router.py): the forward policy, what gw accepts
from each segment, the NAT's scope, IPv6 routing to the lab, and NAT64 with the DNS64 that
leads the IPv6-only machines to it.

Their own module because they break which packets cross gw; they come after the DNS
mutants (stages/mutants/gw/__init__.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import mutant
from harness.machines.network import set_sysctls
from harness.model.mutant import edit, run
from stages import spec
from stages.inventory import INVENTORY
from stages.mutants import common

if TYPE_CHECKING:
    from harness import Lab


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
