"""NAT: the LAN reaches the uplink through gw, and the uplink sees gw's address, not the
client's. (What the uplink may open into the LAN, nothing, is in test_policy.py.)"""

from __future__ import annotations

import secrets

from harness.lab import Lab
from harness.machine import Machine
from stages.inventory import INVENTORY

GW_WAN = str(INVENTORY["gw"].nic("uplink").address)
UPLINK = str(INVENTORY["internet"].nic("uplink").address)


def test_the_uplink_sees_lan_requests_coming_from_gw(web: Machine, lab: Lab) -> None:
    marker = f"nat-check-from-web-{secrets.token_hex(3)}"
    status = web.execute(f"curl -s --max-time 5 -o /dev/null -w '%{{http_code}}' "
                         f"'http://{UPLINK}/generate_204?{marker}'")[1]
    assert status == "204", f"web asked the uplink for /generate_204 through gw: expected HTTP 204, " \
                            f"got {status} (000: no answer)"
    seen = lab["internet"].execute(f"grep -F '{marker}' /var/log/nginx/clients.log")[1].split()
    assert seen[:1] == [GW_WAN], f"internet: expected web's request to come from gw ({GW_WAN}), " \
                                 f"it came from {seen[0] if seen else 'nowhere (not logged)'}"
