"""DHCP: every DHCP client of the inventory holds exactly the lease gw's Kea owes it (its
reservation and every option, as the client's systemd-networkd recorded them) and uses it;
a stranger gets a pool address and a name; gw keeps its leases across a restart.

The rows come from the inventory: every interface with ``config = "dhcp"`` is a client.
"""

from __future__ import annotations

import ipaddress

import pytest

from harness.errors import CheckFailed
from harness.inventory import Config, Nic
from harness.machine import Machine
from scenarios.conftest import lease, one_seat_for_all
from stages.generate import DYNAMIC, LEASE, router
from stages.inventory import INVENTORY

GW = router(INVENTORY)
POOL = INVENTORY.segments["lan"].pool
CLIENTS = [(host.name, nic) for host in one_seat_for_all(list(INVENTORY.hosts.values()))
           for nic in host.nics if nic.config is Config.DHCP]
IDS = [name if sum(n == name for n, _ in CLIENTS) == 1 else f"{name}-{nic.name}" for name, nic in CLIENTS]
clients = pytest.mark.parametrize("machine, nic", CLIENTS, ids=IDS, indirect=["machine"])


def owed(name: str, nic: Nic) -> dict[str, str]:
    """The lease ``name`` should hold on ``nic``, keyed as systemd-networkd records it."""
    server = str(GW.nic(nic.segment).address)
    return {
        "ADDRESS": str(nic.address),  # its reservation
        "NETMASK": str(INVENTORY.segments[nic.segment].cidr.netmask),
        "ROUTER": server, "SERVER_ADDRESS": server, "DNS": server,
        "DOMAINNAME": INVENTORY.domain, "DOMAIN_SEARCH_LIST": INVENTORY.domain,
        "LIFETIME": str(LEASE), "T1": str(LEASE // 4), "T2": str(LEASE // 2),
        # Kea replaces every client's name with its reservation's, qualified in the DDNS zone
        "HOSTNAME": f"{name}.{DYNAMIC}.{INVENTORY.domain}",
    }


@pytest.mark.parametrize("option", list(owed(*CLIENTS[0])), ids=str.lower)
@clients
def test_client_received_the_option(machine: Machine, nic: Nic, option: str) -> None:
    wanted, held = owed(machine.name, nic)[option], lease(machine, nic.name).get(option)
    assert held == wanted, (f"{machine.name}/{nic.name}: expected DHCP to give {option}={wanted}, "
                            f"the client's lease has {option}={held}")


@clients
def test_client_uses_its_lease(machine: Machine, nic: Nic) -> None:
    who, server = f"{machine.name}/{nic.name}", str(GW.nic(nic.segment).address)
    held = machine.addresses(nic.name, dynamic=True)
    assert held == [str(nic.address)], f"{who}: expected to hold {nic.address} by DHCP, holds {held}"
    route = machine.succeed("ip -4 route show default").split()
    assert route[:5] == ["default", "via", server, "dev", nic.name], \
        f"{who}: expected a default route via {server}, has {' '.join(route) or 'none'}"
    resolvers = machine.succeed(f"resolvectl dns {nic.name}").partition(":")[2].split()
    assert resolvers == [server], f"{who}: expected to resolve through {server}, uses {resolvers}"
    domains = machine.succeed(f"resolvectl domain {nic.name}").partition(":")[2].split()
    assert domains == [INVENTORY.domain], f"{who}: expected the search domain {INVENTORY.domain}, " \
                                          f"uses {domains}"


def kea_leases(gw: Machine, mac: str) -> list[str]:
    """gw's lease file lines for ``mac``."""
    return [line for line in gw.succeed("cat /var/lib/kea/kea-leases4.csv").splitlines()
            if f",{mac}," in line]


@clients
def test_gw_recorded_the_lease(gw: Machine, machine: Machine, nic: Nic) -> None:
    leases = kea_leases(gw, nic.mac)
    assert leases and leases[-1].startswith(f"{nic.address},{nic.mac},"), \
        f"gw: expected a lease of {nic.address} to {nic.mac} in Kea's lease file, found {leases}"


WEB = INVENTORY["web"].nic("lan")
SERVER = str(GW.nic("lan").address)


@pytest.mark.fresh_lab
def test_an_unknown_mac_gets_a_pool_address_and_a_name(gw: Machine, web: Machine) -> None:
    assert POOL is not None, "the inventory gives the LAN no pool: no stranger can get an address"
    web.succeed("ip link set dev lan0 down && ip link set dev lan0 address 02:99:00:00:00:01 "
                "&& ip link set dev lan0 up && networkctl reconfigure lan0")
    web.wait_until_succeeds(f"ip -4 -o addr show dev lan0 | grep -qv ' {WEB.address}/'", timeout=30)
    held = web.addresses("lan0", dynamic=True)
    assert len(held) == 1 and POOL[0] <= ipaddress.IPv4Address(held[0]) <= POOL[1], \
        f"web with an unknown MAC: expected one address in the pool {POOL[0]}-{POOL[1]}, holds {held}"
    # Kea names it and tells BIND (DDNS): the LAN finds the stranger by name.
    name = f"{DYNAMIC}-{held[0].replace('.', '-')}.{DYNAMIC}.{INVENTORY.domain}"
    try:
        gw.wait_until_succeeds(f"dig +short @{SERVER} {name} A | grep -qx {held[0]}", timeout=20)
    except CheckFailed:
        seen = gw.execute(f"dig +short @{SERVER} {name} A")[1].split()
        raise AssertionError(f"gw: expected DDNS to name the stranger {name} -> {held[0]}, "
                             f"DNS answers {seen or 'nothing'}") from None


@pytest.mark.fresh_lab
def test_leases_survive_a_gw_restart(gw: Machine, web: Machine) -> None:
    gw.succeed("systemctl restart kea-dhcp4-server")
    gw.wait_for_open_port(67, SERVER, "udp")  # active is not listening: a renewal sent before is lost
    assert kea_leases(gw, WEB.mac), f"gw: expected web's lease ({WEB.mac}) kept across a restart, found none"
    mark = gw.succeed("date +%s").strip()
    web.succeed("networkctl renew lan0")
    gw.wait_until_succeeds(f"journalctl -u kea-dhcp4-server --since=@{mark} | grep -q DHCP4_LEASE_ALLOC")
    held = web.addresses("lan0", dynamic=True)
    assert held == [str(WEB.address)], f"web after gw's restart: expected to keep {WEB.address}, holds {held}"
