"""IPv6 in the inventory: dual-stack and IPv6-only segments and machines, SLAAC addresses
computed from MACs, rooms with IPv6, and the same file:line errors as for IPv4."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from harness.core.errors import UsageError
from harness.model.inventory import Config6, Family, eui64
from harness.model.inventory_file import load


def machine(name: str, extra: str = "", **nic: str) -> str:
    """A ``[machines.NAME]`` entry with one interface (``nic``'s keys) on segment lan."""
    nic = {"name": "lan0", "segment": "lan", **nic}
    fields = ", ".join(f'{key} = "{value}"' for key, value in nic.items())
    return f"\n[machines.{name}]\n{extra}interfaces = [{{ {fields} }}]\n"


SEGMENT = """[segments.lan]
cidr = "192.168.0.0/24"
cidr6 = "2001:db8:1::/64"
pool6 = ["2001:db8:1::ff:0", "2001:db8:1::ff:ff"]
"""
GW = machine("gw", "router = true\n", mac="02:00:00:00:00:fe", address="192.168.0.254",
             address6="2001:db8:1::fe")
PC = machine("pc", mac="02:00:00:00:00:01", address="192.168.0.1", address6="2001:db8:1::1", config="dhcp")
DUAL = SEGMENT + GW + PC


def inventory(tmp_path: Path, text: str, room_size: int | None = None):  # type: ignore[no-untyped-def]
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return load(path, room_size=room_size)


def test_a_dual_stack_segment_gives_its_interfaces_both_families(tmp_path: Path) -> None:
    inv = inventory(tmp_path, DUAL)
    assert inv.families() == (Family.IPV4, Family.IPV6)
    gw, pc = inv["gw"].nic("lan"), inv["pc"].nic("lan")
    assert gw.config6 is Config6.STATIC  # static for IPv4, so for IPv6 too
    assert pc.config6 is Config6.DHCP    # the segment's mode, DHCPv6 by default
    assert pc.address_of(Family.IPV6) == ipaddress.IPv6Address("2001:db8:1::1")
    assert inv.sysctls("gw") == {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}


def test_an_ipv4_only_inventory_has_one_family_and_no_ipv6_forwarding(tmp_path: Path) -> None:
    text = '[segments.lan]\ncidr = "192.168.0.0/24"\n' + GW.replace(', address6 = "2001:db8:1::fe"', "") \
        + PC.replace(', address6 = "2001:db8:1::1"', "")
    inv = inventory(tmp_path, text)
    assert inv.families() == (Family.IPV4,)
    assert inv["pc"].nic("lan").config6 is None
    assert inv.sysctls("gw") == {"net.ipv4.ip_forward": "1"}


def test_slaac_addresses_are_the_prefix_and_the_macs_eui64(tmp_path: Path) -> None:
    assert eui64(ipaddress.IPv6Network("2001:db8:1::/64"), "02:c0:a8:00:00:01") == \
        ipaddress.IPv6Address("2001:db8:1:0:c0:a8ff:fe00:1")
    pc = PC.replace(', address6 = "2001:db8:1::1"', "")
    inv = inventory(tmp_path, SEGMENT + 'ipv6 = "slaac"\n' + GW + pc)
    assert inv["pc"].nic("lan").address6 == ipaddress.IPv6Address("2001:db8:1::ff:fe00:1")


def test_an_ipv6_only_machine_has_no_ipv4_address(tmp_path: Path) -> None:
    inv = inventory(tmp_path, DUAL + machine("six", mac="02:00:00:00:00:06", address6="2001:db8:1::6",
                                             config="dhcp"))
    assert inv["six"].families() == (Family.IPV6,)
    with pytest.raises(UsageError, match="has no ipv4 address"):
        inv["six"].nic("lan").address_of(Family.IPV4)


def test_a_room_gives_each_seat_the_next_ipv6_address(tmp_path: Path) -> None:
    room = ('\n[rooms.r1]\nsegment = "lan"\nmachines = "pc-r1p{n}"\ncount = 3\naddress = "192.168.0.10"\n'
            'address6 = "2001:db8:1::10"\nmac = "02:00:00:00:01:0a"\n')
    inv = inventory(tmp_path, DUAL + room)
    assert [str(inv[s].nics[0].address6) for s in inv.seats()] == \
        ["2001:db8:1::10", "2001:db8:1::11", "2001:db8:1::12"]



def test_a_room_s_config6_is_its_seats(tmp_path: Path) -> None:
    room = ('\n[rooms.r1]\nsegment = "lan"\nmachines = "pc-r1p{n}"\ncount = 2\naddress = "192.168.0.10"\n'
            'mac = "02:00:00:00:01:0a"\nconfig6 = "slaac"\n')
    inv = inventory(tmp_path, DUAL + room)  # lan: DHCPv6, but this room's seats take SLAAC
    lan = ipaddress.IPv6Network("2001:db8:1::/64")
    assert [(n.config6, n.address6) for s in inv.seats() for n in inv[s].nics] == \
        [(Config6.SLAAC, eui64(lan, mac)) for mac in ("02:00:00:00:01:0a", "02:00:00:00:01:0b")]


MACHINE = ('\n[machines.b]\ninterfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:02", '
           '%s }]')
OUTSIDE = r"inventory.toml:\d+: \[machines.b\]: address 2001:db8:2::2 is outside segment lan \("


@pytest.mark.parametrize("extra, message", [
    (MACHINE % 'address6 = "2001:db8:2::2"', OUTSIDE),
    (MACHINE % 'address6 = "2001:db8:1::1"', r"\[machines.b\]: b's address 2001:db8:1::1 is already used"),
    (MACHINE % 'address6 = "2001:db8:1::ff:1"', r"b's address 2001:db8:1::ff:1 is inside the pool of lan"),
    (MACHINE % 'address = "192.168.0.2"', r"lan0 is static on lan, which has IPv6 .*: give it address6"),
    (MACHINE % 'config = "static"', r"lan0 is static on lan, which has IPv6 .*: give it address6"),
    (MACHINE % 'config = "dhcp"', r":\d+: \[machines.b\]: lan0 takes its addresses from segment lan's pools "
                                  r"\(config dhcp, no address\), but lan has no pool: give lan pool = "),
    ('\n[segments.wan]\ncidr6 = "2001:db8:2::/64"\npool6 = ["2001:db8:3::1", "2001:db8:3::9"]\n',
     r"\[segments.wan\]: pool6 2001:db8:3::1 - 2001:db8:3::9 must be an ascending range inside"),
    ('\n[segments.wan]\ncidr6 = "2001:db8:2::/56"\nipv6 = "slaac"\n', r"SLAAC needs a /64"),
    ('\n[segments.wan]\ncidr6 = "2001:db8:2::/64"\nipv6 = "radvd"\n', r"ipv6 must be one of static, dhcp"),
    ('\n[segments.wan]\ncidr6 = "10.0.0.0/24"\n', r"\[segments.wan\]: bad cidr6"),
    ('\n[segments.wan]\n', r"\[segments.wan\]: a segment needs a network"),
    (MACHINE % 'address = "192.168.0.2", config = "dhcp", gateway6 = "2001:db8:1::fe"',
     r"\[machines.b\]: lan0 takes its IPv6 address by DHCPv6, whose router advertisement brings the default "
     r"route: drop gateway6"),
])
def test_bad_ipv6_entries_name_the_line_and_the_fault(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        inventory(tmp_path, DUAL + extra)


def test_ipv6_on_a_segment_without_ipv6_is_refused(tmp_path: Path) -> None:
    text = ('[segments.v4]\ncidr = "10.0.0.0/24"\n\n[machines.a]\ninterfaces = [{ name = "eth0", '
            'segment = "v4", mac = "02:00:00:00:00:01", address = "10.0.0.1", address6 = "2001:db8::1" }]\n')
    with pytest.raises(UsageError, match=r"inventory.toml:4: \[machines.a\]: eth0 has IPv6 settings but "
                                         r"segment v4 has no IPv6: give the segment cidr6"):
        inventory(tmp_path, text)


def test_family_of_an_address() -> None:
    assert Family.of("192.168.0.1") is Family.IPV4
    assert Family.of("2001:db8::1/64") is Family.IPV6
    assert Family.IPV6.version == 6


def test_the_lab_sets_static_addresses_only_when_asked_and_only_static_ones(tmp_path: Path) -> None:
    inv = inventory(tmp_path, DUAL)
    assert [i.addresses for i in inv.interfaces("gw")] == [()]  # the machine configures itself
    assert [i.addresses for i in inv.interfaces("gw", static_addresses=True)] == \
        [("192.168.0.254/24", "2001:db8:1::fe/64")]
    assert [i.addresses for i in inv.interfaces("pc", static_addresses=True)] == [()]  # DHCP's


def test_the_lab_sets_a_static_interfaces_gateways_as_its_default_routes(tmp_path: Path) -> None:
    desk = machine("desk", mac="02:00:00:00:00:02", address="192.168.0.2", gateway="192.168.0.254",
                   address6="2001:db8:1::2", gateway6="2001:db8:1::fe")
    inv = inventory(tmp_path, DUAL + desk)
    assert [i.gateways for i in inv.interfaces("desk", static_addresses=True)] == \
        [("192.168.0.254", "2001:db8:1::fe")]
    assert [i.gateways for i in inv.interfaces("desk")] == [()]  # the machine configures itself
    assert [i.gateways for i in inv.interfaces("gw", static_addresses=True)] == [()]  # it has none
    with pytest.raises(UsageError, match=r"inventory.toml:\d+: \[machines.desk\]: gateway6 2001:db8:2::fe is "
                                         r"not on segment lan"):
        inventory(tmp_path, DUAL + desk.replace("2001:db8:1::fe", "2001:db8:2::fe"))



POOLS = SEGMENT + 'pool = ["192.168.0.200", "192.168.0.250"]\n'  # then GW, CLIENT
CLIENT = machine("client", mac="02:00:00:00:00:07", config="dhcp")  # no address at all


def test_a_dhcp_client_without_an_address_takes_what_its_segment_lends(tmp_path: Path) -> None:
    nic = inventory(tmp_path, POOLS + GW + CLIENT)["client"].nic("lan")
    assert (nic.address, nic.address6, nic.config6, nic.pooled) == (None, None, Config6.DHCP, True)
    assert nic.takes(Family.IPV4) and nic.takes(Family.IPV6) and nic.families() == ()
    with pytest.raises(UsageError, match=r"lan0 on segment lan takes its ipv4 address from the pool: "
                                         r"the inventory does not know it"):
        nic.address_of(Family.IPV4)
    slaac = inventory(tmp_path, POOLS + 'ipv6 = "slaac"\n' + GW + CLIENT)["client"].nic("lan")
    assert (slaac.pooled, slaac.address6) == (True, eui64(ipaddress.IPv6Network("2001:db8:1::/64"),
                                                           "02:00:00:00:00:07"))
    only4 = ('[segments.lan]\ncidr = "192.168.0.0/24"\npool = ["192.168.0.200", "192.168.0.250"]\n'
             + GW.replace(', address6 = "2001:db8:1::fe"', "") + CLIENT)
    nic = inventory(tmp_path, only4)["client"].nic("lan")
    assert (nic.config6, nic.pooled, nic.takes(Family.IPV6)) == (None, True, False)
    both = tmp_path / "both.toml"
    both.write_text(POOLS + GW + CLIENT)
    only6 = load(both, families=(Family.IPV6,))["client"].nic("lan")  # the run keeps IPv6 alone
    assert (only6.pooled, only6.takes(Family.IPV4), only6.config6) == (False, False, Config6.DHCP)
    assert load(both, families=(Family.IPV4,))["client"].nic("lan").pooled


def test_a_dhcp_client_without_an_address_needs_a_pool_of_each_family_it_asks(tmp_path: Path) -> None:
    no6 = POOLS.replace('pool6 = ["2001:db8:1::ff:0", "2001:db8:1::ff:ff"]\n', "")
    with pytest.raises(UsageError, match=r"\[machines.client\]: lan0 takes its addresses from segment lan's "
                                         r"pools \(config dhcp, no address\), but lan has no pool6: give lan "
                                         r'pool6 = \["FIRST", "LAST"\], or lan0 an address'):
        inventory(tmp_path, no6 + GW + CLIENT)
    slaac = inventory(tmp_path, no6 + 'ipv6 = "slaac"\n' + GW + CLIENT)  # SLAAC needs no pool6
    assert slaac["client"].nic("lan").pooled
    seats = '\n[rooms.r1]\nsegment = "lan"\nmachines = "s{n}"\ncount = 2\nmac = "02:00:00:00:01:00"\n'
    inv = inventory(tmp_path, SEGMENT + 'ipv6 = "slaac"\n' + GW + seats)  # a room's seats stay reservations
    assert [(inv[s].nics[0].pooled, inv[s].families()) for s in inv.seats()] == [(False, (Family.IPV6,))] * 2
