"""Network: every machine has the addresses, links and routes the inventory gives it."""

from __future__ import annotations

import pytest

from harness.lab import Lab
from harness.machine import Machine
from stages.inventory import INVENTORY


@pytest.mark.parametrize("name", list(INVENTORY.hosts))
def test_addresses_and_links_match_the_inventory(name: str, pas: Machine, lab: Lab) -> None:
    machine = lab[name]
    for nic in INVENTORY[name].nics:
        iface = machine.host.interface(nic.name)
        assert iface.exists, f"{name} has no interface {nic.name}"
        assert str(nic.address) in iface.addresses, f"{name}/{nic.name}: {iface.addresses}"
        assert iface.link[0]["address"] == nic.mac
        assert iface.link[0]["operstate"] == "UP"


def test_gw_routes_to_the_uplink_only(gw: Machine) -> None:
    default = gw.succeed("ip -4 route show default").split()
    assert default[:5] == ["default", "via", "10.0.0.1", "dev", "wan0"]
    assert "192.168.0.0/23 dev lan0" in gw.succeed("ip -4 route")


def test_gw_forwards_packets(gw: Machine) -> None:
    assert gw.succeed("cat /proc/sys/net/ipv4/ip_forward").strip() == "1"


def test_internet_has_no_route_off_the_lab(gw: Machine, lab: Lab) -> None:
    internet = lab["internet"]
    assert internet.succeed("ip -4 route show default") == ""
    internet.fail("ping -c1 -W1 192.168.1.254")  # the LAN is reachable only from inside it


def test_gw_reaches_the_internet(gw: Machine) -> None:
    assert "1 received" in gw.succeed("ping -c1 -W2 10.0.0.1")
