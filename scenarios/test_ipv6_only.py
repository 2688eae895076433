"""The IPv6-only machine (paste, no IPv4 address at all), as the LAN and the internet see it:
the LAN reaches it by name through its AAAA record alone, and it reaches the IPv4 internet
through gw's DNS64 (a synthesized AAAA under the NAT64 prefix) and NAT64 (TAYGA, then the
IPv4 masquerade): the internet sees gw's IPv4 address. Dual-stack machines get no
synthesized answer: they reach IPv4 themselves.
"""

from __future__ import annotations

import ipaddress

import pytest

from harness import Family, Lab, Machine
from harness.probes import Answer, dig, expect, http_status
from scenarios.conftest import gw_address, source_seen_outside
from stages.inventory import INVENTORY
from stages.spec import NAT64_PREFIX, UPLINK_IPV4_ONLY, UPLINK_ZONE

# the LAN's machines without IPv4 (with --families=ipv4, none: no test of this module is generated)
ONLY6 = [h.name for h in INVENTORY.on("lan") if Family.IPV4 not in h.families()]
NAME = f"{UPLINK_IPV4_ONLY}.{UPLINK_ZONE}"  # a public name with an A record only
DNS6 = gw_address(Family.IPV6) if Family.IPV6 in INVENTORY.families() else ""  # --families=ipv4: none


def synthesized(address: str) -> str:
    """The AAAA record DNS64 makes of IPv4 ``address``: the NAT64 prefix, then the address."""
    prefix = ipaddress.IPv6Network(NAT64_PREFIX)
    return str(prefix.network_address + int(ipaddress.IPv4Address(address)))


UPLINK4 = str(INVENTORY["internet"].nic("uplink").address)


@pytest.mark.parametrize("machine", ONLY6, indirect=True)
def test_it_has_no_ipv4_address_and_its_ipv6_reservation(machine: Machine) -> None:
    nic = INVENTORY[machine.name].nics[0]
    held4 = machine.addresses(nic.name, Family.IPV4)
    assert held4 == [], f"{machine.name} is IPv6-only, yet holds IPv4 {held4}"
    held6 = machine.addresses(nic.name, Family.IPV6, dynamic=True)
    assert held6 == [str(nic.address6)], f"{machine.name}: expected its DHCPv6 reservation {nic.address6}, " \
                                         f"holds {held6}"


@pytest.mark.parametrize("machine", ONLY6, indirect=True)
def test_the_lan_reaches_it_by_name_over_ipv6_alone(pas: Machine, machine: Machine) -> None:
    fqdn = f"{machine.name}.{INVENTORY.domain}"
    expect(dig(pas, fqdn, "A", server=gw_address(Family.IPV4)), Answer("NOERROR", []),
           f"pas asked gw for {fqdn} A (an IPv6-only machine has none)")
    out = pas.execute(f"curl -s --max-time 5 -w '\\n%{{http_code}}' http://{machine.name}/")[1]
    body, _, status = out.rpartition("\n")
    assert status == "200" and f"This is {machine.name}." in body, (
        f"pas asked http://{machine.name}/ (AAAA only): expected its page, got HTTP {status}: {body[:200]!r}")


@pytest.mark.parametrize("machine", ONLY6, indirect=True)
def test_dns64_gives_it_an_address_under_the_nat64_prefix(machine: Machine) -> None:
    expect(dig(machine, NAME, "AAAA", server=DNS6), Answer("NOERROR", [synthesized(UPLINK4)]),
           f"{machine.name} asked gw ({DNS6}) for {NAME} AAAA (the name has only an A record)")


@pytest.mark.parametrize("only6", ONLY6)  # DNS64 is there for them, not for web
def test_dual_stack_machines_get_no_synthesized_answer(web: Machine, only6: str) -> None:
    expect(dig(web, NAME, "AAAA", server=DNS6), Answer("NOERROR", []),
           f"web (dual-stack) asked gw ({DNS6}) for {NAME} AAAA: DNS64 is for IPv6-only machines")


@pytest.mark.parametrize("machine", ONLY6, indirect=True)
def test_it_reaches_the_ipv4_internet_through_nat64(machine: Machine, lab: Lab) -> None:
    marker = f"nat64-{machine.name}"
    out = http_status(machine, f"http://{NAME}/generate_204?{marker}")
    assert out == "204", f"{machine.name} asked http://{NAME}/generate_204 (IPv4 only): expected HTTP 204 " \
                         f"through DNS64 and NAT64, got {out} (000: no answer)"
    seen = lab["internet"].execute(f"grep -F '{marker}' /var/log/nginx/clients.log | tail -1")[1].split()
    wanted = source_seen_outside("gw", Family.IPV4)
    assert seen[:1] == [wanted], f"internet: expected {machine.name}'s request (translated) to come from " \
                                 f"gw's {wanted}, it came from {seen[:1] or 'nowhere'}"
