"""Mutants of gw's DHCP (Kea, stages/generate/dhcp.py): the options a client receives over
DHCPv4 and DHCPv6, what the router advertises on the LAN, the reservations, the pools, and the
names DDNS gives (Kea's updates, the key BIND checks them with).

Their own module because they break what a client is handed when it joins the LAN; they are
gw's first mutants (stages/mutants/gw/__init__.py).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from harness import Family, mutant
from harness.model.mutant import edit, run
from stages.inventory import INVENTORY
from stages.mutants import common

if TYPE_CHECKING:
    from harness import Lab


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
    cursor = gw.journal_cursor()
    run(gw, "systemctl restart kea-dhcp6-server")  # its sockets went with the addresses
    gw.wait_for_open_port(547, "ff02::1:2", "udp")
    gw.wait_for_journal("DHCP6_STARTED", unit="kea-dhcp6-server.service", after=cursor)
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
