"""What the reference lab's scenarios share that is the lab's own: its families, addresses and
seats as the inventory gives them, and what its internet sees. Fixtures come from the harness
plugin; what a machine sees (DNS answers, leases, resolvers, pings) from `harness.probes`.

Each helper returns what a client saw, and each assertion's first line says what was
expected and what was seen: that line is what a mutation run reports as the kill reason.
"""

from __future__ import annotations

import secrets

import pytest

from harness import CheckFailed, Family, Lab, Machine
from harness.model.inventory import Host
from harness.probes import http_status, in_url, networkd_lease
from stages.inventory import INVENTORY

# In the per-machine tables (DNS rows, DHCP options), the first seat stands for every seat:
# they boot one tree. test_rooms.py checks every seat of every room, all at once.
OTHER_SEATS = frozenset(INVENTORY.seats()[1:])


# Scenarios of addressing, DNS, routing, firewall and services run once per family the lab
# carries (test ids say ipv4 or ipv6): an IPv4-only lab generates no IPv6 test at all.
FAMILIES = INVENTORY.families()
by_family = pytest.mark.parametrize("family", FAMILIES, ids=str)


def address(machine: str, family: Family, segment: str = "lan") -> str:
    """``machine``'s address in ``family`` on ``segment``, as the inventory gives it."""
    return str(INVENTORY[machine].nic(segment).address_of(family))


def gw_address(family: Family, segment: str = "lan") -> str:
    """The router's address in ``family`` on ``segment``: the LAN's DNS server and gateway."""
    return address(INVENTORY.router().name, family, segment)


def one_seat_for_all(hosts: list[Host]) -> list[Host]:
    """``hosts`` less every seat but the first (see `OTHER_SEATS`)."""
    return [h for h in hosts if h.name not in OTHER_SEATS]


def lease(client: Machine, ifname: str) -> dict[str, str]:
    """The DHCPv4 lease ``client`` holds on ``ifname`` (`harness.probes.networkd_lease`).

    A seat's HOSTNAME is the name it took (its transient hostname): a seat has no name of its
    own, and once it has taken the qualified one, it asks for it again in the FQDN option,
    whose answer networkd does not write to the lease file (a renewal would lose it)."""
    held = networkd_lease(client, ifname)
    if client.name in INVENTORY.seats():
        held["HOSTNAME"] = client.succeed("hostnamectl --transient").strip()
    return held


def seen_by_the_internet(client: Machine, lab: Lab, family: Family) -> str:
    """The source address the internet's web server logged for a request from ``client``
    over ``family`` (after asserting that the request was answered)."""
    marker = f"nat-check-from-{client.name}-{secrets.token_hex(3)}"
    uplink = address("internet", family, "uplink")
    status = http_status(client, f"http://{in_url(uplink)}/generate_204?{marker}", family)
    assert status == "204", f"{client.name} asked the uplink ({uplink}) for /generate_204 through gw: " \
                            f"expected HTTP 204, got {status} (000: no answer)"
    # nginx logs a request after sending its answer: the line may come a moment after the 204.
    try:
        seen = lab["internet"].wait_until_succeeds(f"grep -F '{marker}' /var/log/nginx/clients.log",
                                                   timeout=5).split()
    except CheckFailed:
        seen = []
    return seen[0] if seen else "nowhere (not logged)"


def source_seen_outside(machine: str, family: Family) -> str:
    """The source address the internet sees for ``machine``'s connections over ``family``:
    gw's (IPv4 is masqueraded), or the machine's own (the IPv6 prefix is routed)."""
    return gw_address(family, "uplink") if family is Family.IPV4 else address(machine, family)
