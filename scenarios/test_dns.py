"""DNS, as a LAN client sees it: every machine and alias of the inventory resolves forward
and reverse through gw, over UDP and over TCP; unknown names do not; recursion works for
the LAN and is refused to the uplink.

The rows come from the inventory: a machine or an alias added there is asked here.
Aliases have no PTR of their own: the reverse of their address is their machine's row.
"""

from __future__ import annotations

import pytest

from harness.inventory import Host
from harness.lab import Lab
from harness.machine import Machine
from scenarios.conftest import Answer, dig, expect, one_seat_for_all
from stages.generate import UPLINK_ZONE, router
from stages.inventory import INVENTORY

GW = router(INVENTORY)
DNS = str(GW.nic("lan").address)
LAN_HOSTS = one_seat_for_all(INVENTORY.on("lan"))
NAMES = [(name, host) for host in LAN_HOSTS for name in (host.name, *host.aliases)]
TRANSPORT = {"udp": "+notcp", "tcp": "+tcp"}
over = pytest.mark.parametrize("transport", list(TRANSPORT))


@over
@pytest.mark.parametrize("name, host", NAMES, ids=[n for n, _ in NAMES])
def test_forward_lookup(web: Machine, name: str, host: Host, transport: str) -> None:
    fqdn, address = f"{name}.{INVENTORY.domain}", str(host.nic("lan").address)
    wanted = [address] if name == host.name else [f"{host.name}.{INVENTORY.domain}.", address]
    expect(dig(web, TRANSPORT[transport], fqdn, "A", server=DNS), Answer("NOERROR", wanted),
           f"web asked gw ({DNS}) for {fqdn} A over {transport}")


@over
@pytest.mark.parametrize("host", LAN_HOSTS, ids=[h.name for h in LAN_HOSTS])
def test_reverse_lookup(web: Machine, host: Host, transport: str) -> None:
    address = str(host.nic("lan").address)
    expect(dig(web, TRANSPORT[transport], "-x", address, server=DNS),
           Answer("NOERROR", [f"{host.name}.{INVENTORY.domain}."]),
           f"web asked gw ({DNS}) for the PTR of {address} over {transport}")


def test_short_names_resolve_through_the_dhcp_search_domain(web: Machine) -> None:
    found = web.execute("getent hosts mdb")[1].split()
    assert found[:1] == [DNS], f"web looked up the short name mdb: expected {DNS}, got {found or 'nothing'}"


def test_unknown_name_is_nxdomain(web: Machine) -> None:
    fqdn = f"nosuchmachine.{INVENTORY.domain}"
    expect(dig(web, fqdn, server=DNS), Answer("NXDOMAIN", []), f"web asked gw for {fqdn}")


def test_lan_gets_recursion_through_the_uplink(web: Machine) -> None:
    uplink = str(INVENTORY["internet"].nic("uplink").address)
    expect(dig(web, f"www.{UPLINK_ZONE}", server=DNS), Answer("NOERROR", [uplink]),
           f"web asked gw to resolve www.{UPLINK_ZONE} (served by the uplink)")


def test_uplink_is_refused_recursion(gw: Machine, lab: Lab) -> None:
    wan = str(GW.nic("uplink").address)
    expect(dig(lab["internet"], f"www.{UPLINK_ZONE}", server=wan), Answer("REFUSED", []),
           f"internet asked gw ({wan}) to resolve www.{UPLINK_ZONE}")
