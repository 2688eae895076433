"""NAT, and its absence: the LAN reaches the uplink through gw in both families; over IPv4
the uplink sees gw's address (masquerade), over IPv6 the client's own (the prefix is routed,
not translated). (What the uplink may open into the LAN, nothing, is in test_policy.py.)"""

from __future__ import annotations

import secrets

from harness.inventory import Family
from harness.lab import Lab
from harness.machine import Machine
from scenarios.conftest import address, by_family, gw_address, in_url


def seen_by_the_internet(client: Machine, lab: Lab, family: Family) -> str:
    """The source address the internet's web server logged for a request from ``client``
    over ``family`` (after asserting that the request was answered)."""
    marker = f"nat-check-from-{client.name}-{secrets.token_hex(3)}"
    uplink = address("internet", family, "uplink")
    status = client.execute(f"curl -s -{family.version} --max-time 5 -o /dev/null -w '%{{http_code}}' "
                            f"'http://{in_url(uplink)}/generate_204?{marker}'")[1]
    assert status == "204", f"{client.name} asked the uplink ({uplink}) for /generate_204 through gw: " \
                            f"expected HTTP 204, got {status} (000: no answer)"
    seen = lab["internet"].execute(f"grep -F '{marker}' /var/log/nginx/clients.log")[1].split()
    return seen[0] if seen else "nowhere (not logged)"


@by_family
def test_the_uplink_sees_lan_requests_from_gw_over_ipv4_and_from_the_client_over_ipv6(
        web: Machine, lab: Lab, family: Family) -> None:
    nat = family is Family.IPV4
    wanted = gw_address(family, "uplink") if nat else address("web", family)
    seen = seen_by_the_internet(web, lab, family)
    assert seen == wanted, f"internet: expected web's {family} request to come from {wanted} " \
                           f"({'gw: NAT' if nat else 'web itself: no NAT'}), it came from {seen}"
