"""DHCP: gw's Kea hands each machine its reservation with every option, a pool address to strangers,
and keeps its leases across a restart."""

from __future__ import annotations

import ipaddress

import pytest

from harness.machine import Machine
from stages.generate import DYNAMIC
from stages.inventory import INVENTORY

WEB = INVENTORY["web"].nic("lan")
GW = str(INVENTORY["gw"].nic("lan").address)
POOL = INVENTORY.segments["lan"].pool


def lease_of(gw: Machine, mac: str) -> list[str]:
    """gw's lease file lines for ``mac``."""
    return [line for line in gw.succeed("cat /var/lib/kea/kea-leases4.csv").splitlines()
            if f",{mac}," in line]


def test_web_lease_matches_its_reservation_with_all_options(web: Machine) -> None:
    assert web.addresses("lan0", dynamic=True) == [str(WEB.address)]
    assert web.succeed("ip -4 route show default").split()[:3] == ["default", "via", GW]
    assert web.succeed("resolvectl dns lan0").split()[-1] == GW
    assert web.succeed("resolvectl domain lan0").split()[-1] == INVENTORY.domain


def test_gw_recorded_the_lease(gw: Machine, web: Machine) -> None:
    leases = lease_of(gw, WEB.mac)
    assert leases and leases[-1].startswith(f"{WEB.address},{WEB.mac},")


@pytest.mark.fresh_lab
def test_an_unknown_mac_gets_a_pool_address_and_a_name(gw: Machine, web: Machine) -> None:
    assert POOL is not None
    web.succeed("ip link set dev lan0 down && ip link set dev lan0 address 02:99:00:00:00:01 "
                "&& ip link set dev lan0 up && networkctl reconfigure lan0")
    web.wait_until_succeeds(f"ip -4 -o addr show dev lan0 | grep -qv ' {WEB.address}/'", timeout=30)
    [address] = web.addresses("lan0", dynamic=True)
    assert POOL[0] <= ipaddress.IPv4Address(address) <= POOL[1]
    # Kea names it and tells BIND (DDNS): the LAN finds the stranger by name.
    name = f"{DYNAMIC}-{address.replace('.', '-')}.{DYNAMIC}.{INVENTORY.domain}"
    gw.wait_until_succeeds(f"dig +short @{GW} {name} A | grep -qx {address}", timeout=20)


@pytest.mark.fresh_lab
def test_leases_survive_a_gw_restart(gw: Machine, web: Machine) -> None:
    gw.succeed("systemctl restart kea-dhcp4-server")
    gw.wait_for_open_port(67, GW, "udp")  # active is not listening: a renewal sent before is lost
    assert lease_of(gw, WEB.mac), "the lease file lost web's lease"
    mark = gw.succeed("date +%s").strip()
    web.succeed("networkctl renew lan0")
    gw.wait_until_succeeds(f"journalctl -u kea-dhcp4-server --since=@{mark} | grep -q DHCP4_LEASE_ALLOC")
    assert web.addresses("lan0", dynamic=True) == [str(WEB.address)]
