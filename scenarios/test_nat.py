"""NAT, and its absence: the LAN reaches the uplink through gw in both families; over IPv4
the uplink sees gw's address (masquerade), over IPv6 the client's own (the prefix is routed,
not translated). (What the uplink may open into the LAN, nothing, is in test_policy.py.)"""

from __future__ import annotations

from harness.inventory import Family
from harness.lab import Lab
from harness.machine import Machine
from scenarios.conftest import by_family, seen_by_the_internet, source_seen_outside


@by_family
def test_the_uplink_sees_lan_requests_from_gw_over_ipv4_and_from_the_client_over_ipv6(
        web: Machine, lab: Lab, family: Family) -> None:
    wanted, seen = source_seen_outside("web", family), seen_by_the_internet(web, lab, family)
    why = "gw: NAT" if family is Family.IPV4 else "web itself: no NAT"
    assert seen == wanted, f"internet: expected web's {family} request to come from {wanted} ({why}), " \
                           f"it came from {seen}"
