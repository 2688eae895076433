"""DNS, as a LAN client sees it, in each family: every machine and alias of the inventory
resolves forward (A, AAAA) and reverse (in-addr.arpa, ip6.arpa) through gw, asked over UDP
and over TCP at gw's address of that family; unknown names do not; recursion works for the
LAN and is refused to the uplink.

The rows come from the inventory: a machine or an alias added there is asked here.
Aliases have no PTR of their own: the reverse of their address is their machine's row.
"""

from __future__ import annotations

import pytest

from harness import Family, Lab, Machine
from harness.model.inventory import Host
from harness.probes import Answer, dig, expect
from scenarios.conftest import by_family, gw_address, one_seat_for_all
from stages.inventory import INVENTORY
from stages.spec import UPLINK_ZONE

LAN_HOSTS = one_seat_for_all(INVENTORY.on("lan"))
# each name in each family its machine has an address of (an IPv6-only machine has no A record)
NAMES = [(family, name, host) for host in LAN_HOSTS for family in host.families()
         for name in (host.name, *host.aliases)]
HOSTS = [(family, host) for host in LAN_HOSTS for family in host.families()]
TRANSPORT = {"udp": "+notcp", "tcp": "+tcp"}
RECORD = {Family.IPV4: "A", Family.IPV6: "AAAA"}
over = pytest.mark.parametrize("transport", list(TRANSPORT))


@over
@pytest.mark.parametrize("family, name, host", NAMES, ids=[f"{f}-{n}" for f, n, _ in NAMES])
def test_forward_lookup(web: Machine, name: str, host: Host, transport: str, family: Family) -> None:
    dns, kind = gw_address(family), RECORD[family]
    fqdn, address = f"{name}.{INVENTORY.domain}", str(host.nic("lan").address_of(family))
    wanted = [address] if name == host.name else [f"{host.name}.{INVENTORY.domain}.", address]
    expect(dig(web, TRANSPORT[transport], fqdn, kind, server=dns), Answer("NOERROR", wanted),
           f"web asked gw ({dns}) for {fqdn} {kind} over {transport}")


@over
@pytest.mark.parametrize("family, host", HOSTS, ids=[f"{f}-{h.name}" for f, h in HOSTS])
def test_reverse_lookup(web: Machine, host: Host, transport: str, family: Family) -> None:
    dns, address = gw_address(family), str(host.nic("lan").address_of(family))
    expect(dig(web, TRANSPORT[transport], "-x", address, server=dns),
           Answer("NOERROR", [f"{host.name}.{INVENTORY.domain}."]),
           f"web asked gw ({dns}) for the PTR of {address} over {transport}")


@by_family
def test_short_names_resolve_through_the_dhcp_search_domain(web: Machine, family: Family) -> None:
    dns = gw_address(family)
    found = web.execute(f"getent ahostsv{family.version} mdb")[1].split()
    assert found[:1] == [dns], f"web looked up the short name mdb in {family}: expected {dns}, " \
                               f"got {found[:1] or 'nothing'}"


@by_family
def test_unknown_name_is_nxdomain(web: Machine, family: Family) -> None:
    fqdn, dns = f"nosuchmachine.{INVENTORY.domain}", gw_address(family)
    expect(dig(web, fqdn, RECORD[family], server=dns), Answer("NXDOMAIN", []),
           f"web asked gw ({dns}) for {fqdn}")


@by_family
def test_lan_gets_recursion_through_the_uplink(web: Machine, family: Family) -> None:
    dns, kind = gw_address(family), RECORD[family]
    uplink = str(INVENTORY["internet"].nic("uplink").address_of(family))
    expect(dig(web, f"www.{UPLINK_ZONE}", kind, server=dns), Answer("NOERROR", [uplink]),
           f"web asked gw ({dns}) to resolve www.{UPLINK_ZONE} {kind} (served by the uplink)")


@by_family
def test_uplink_is_refused_recursion(gw: Machine, lab: Lab, family: Family) -> None:
    wan = gw_address(family, "uplink")
    expect(dig(lab["internet"], f"www.{UPLINK_ZONE}", server=wan), Answer("REFUSED", []),
           f"internet asked gw ({wan}) to resolve www.{UPLINK_ZONE}")
