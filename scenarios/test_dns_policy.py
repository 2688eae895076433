"""DNS policy, as a client on each side of gw sees it: no zone is transferred to anyone, and no
one but Kea (with its key) may change a zone."""

from __future__ import annotations

import ipaddress

import pytest

from harness import Family, Lab, Machine
from scenarios.conftest import FAMILIES, gw_address
from stages.inventory import INVENTORY
from stages.spec import DYNAMIC

# (client, the address of gw it asks, in each family): a contestant's machine on the LAN, and the uplink
CLIENTS = [(client, gw_address(family, segment)) for family in FAMILIES
           for client, segment in ((INVENTORY.seats()[0], "lan"), ("internet", "uplink"))]
IDS = [f"{client}-{Family.of(server)}" for client, server in CLIENTS]


def reverse_zones() -> list[str]:
    """The reverse zones of the LAN, as a client names them: one per /24 its IPv4 network
    spans (three octets under in-addr.arpa), and its IPv6 prefix whole (its nibbles under
    ip6.arpa). Derived here from the inventory, not taken from the generator."""
    lan, zones = INVENTORY.segments["lan"], []
    if lan.cidr:
        blocks = range(int(lan.cidr.network_address) >> 8, (int(lan.cidr.broadcast_address) >> 8) + 1)
        zones += [".".join(reversed(str(ipaddress.IPv4Address(b << 8)).split(".")[:3])) + ".in-addr.arpa"
                  for b in blocks]
    if lan.cidr6:
        nibbles = lan.cidr6.network_address.exploded.replace(":", "")[:lan.cidr6.prefixlen // 4]
        zones.append(".".join(reversed(nibbles)) + ".ip6.arpa")
    return zones


ZONES = [INVENTORY.domain, f"{DYNAMIC}.{INVENTORY.domain}", *reverse_zones()]


@pytest.mark.parametrize("client, server", CLIENTS, ids=IDS)
@pytest.mark.parametrize("zone", ZONES)
def test_no_zone_is_transferred(pas: Machine, lab: Lab, client: str, server: str, zone: str) -> None:
    result = lab[client].run(f"dig +time=3 +tries=1 @{server} {zone} AXFR")
    records = [line for line in result.stdout.splitlines() if line.strip() and not line.startswith(";")]
    assert result.status == 0, (f"{client} got no answer from gw ({server}) over TCP to an AXFR of "
                                f"{zone} (exit {result.status}); expected a refusal:\n{result.stdout}")
    assert not records and "; Transfer failed." in result.stdout, (
        f"{client} was sent zone {zone} by gw ({server}), {len(records)} records; expected the "
        f"transfer refused:\n{result.stdout}")


@pytest.mark.parametrize("client, server", CLIENTS, ids=IDS)
@pytest.mark.parametrize("zone", [INVENTORY.domain, f"{DYNAMIC}.{INVENTORY.domain}"])
def test_unsigned_dynamic_updates_are_refused(pas: Machine, lab: Lab, client: str, server: str,
                                               zone: str) -> None:
    name = f"intruder-{client}.{zone}"
    update = f"server {server}\nzone {zone}\nupdate add {name} 300 A 192.168.1.66\nsend\n"
    result = lab[client].run("nsupdate -t 5", input=update)
    seen = (result.stdout + result.stderr).strip()
    assert result.status != 0 and "REFUSED" in seen, (
        f"{client} asked gw ({server}) to add {name} to {zone} without a key; expected REFUSED, "
        f"nsupdate exited {result.status}: {seen or 'with no message (the update was accepted)'}")
