"""NAT and firewall: the LAN reaches the uplink as gw's address; the uplink reaches nothing inside."""

from __future__ import annotations

import pytest

from harness.lab import Lab
from harness.machine import Machine
from stages.inventory import INVENTORY

GW_WAN = str(INVENTORY["gw"].nic("uplink").address)
WEB = str(INVENTORY["web"].nic("lan").address)


def test_the_uplink_sees_lan_requests_coming_from_gw(web: Machine, lab: Lab) -> None:
    marker = "nat-check-from-web"
    status = web.execute(f"curl -s --max-time 5 -o /dev/null -w '%{{http_code}}' "
                         f"'http://10.0.0.1/generate_204?{marker}'")[1]
    assert status == "204", f"the uplink did not answer web (HTTP {status})"
    seen = lab["internet"].succeed(f"grep -F '{marker}' /var/log/nginx/clients.log")
    assert seen.split()[0] == GW_WAN, f"the uplink saw the request from {seen.split()[0]}"


@pytest.mark.fresh_lab
def test_no_connection_from_the_uplink_reaches_the_lan(web: Machine, lab: Lab) -> None:
    internet = lab["internet"]
    # Give the uplink a route into the LAN, as an attacker next door would: only gw's rules stop it.
    internet.succeed(f"ip route add {INVENTORY.segments['lan'].cidr} via {GW_WAN}")
    internet.fail(f"curl -s --max-time 3 http://{WEB}/")
    internet.fail(f"ping -c1 -W2 {WEB}")
    assert "This is wiki" in lab["gw"].succeed(f"curl -s --max-time 3 -H 'Host: wiki' http://{WEB}/")
