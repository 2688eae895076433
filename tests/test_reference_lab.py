"""The reference lab's scenarios can fail: break gw on purpose in a private lab, run them, read why.

Each test is ``fresh_lab``: it gets a lab of its own, booted from the gw snapshot, so
breaking it leaves the shared lab (and the other tests) alone.
"""

from __future__ import annotations

import pytest

from harness.lab import Lab
from harness.machine import Machine
from scenarios import test_dns, test_nat, test_pas, test_policy
from stages.inventory import INVENTORY
from stages.policy import ROWS

UPLINK_SSH = next(r for r in ROWS if r.id == "uplink-gw-ssh-tcp")

pytestmark = [pytest.mark.integration, pytest.mark.fresh_lab]


def test_scenarios_pass_on_an_intact_private_lab(gw: Machine, web: Machine, lab: Lab) -> None:
    test_dns.test_forward_lookup(web, "mdb", INVENTORY["gw"], "tcp")
    test_policy.test_connection(lab, UPLINK_SSH)


def test_stopping_bind_fails_dns_and_names_the_cause(gw: Machine, web: Machine, lab: Lab) -> None:
    gw.succeed("systemctl stop named")
    with pytest.raises(AssertionError, match=r"web asked gw \(192.168.1.254\) for mdb.prolo A over udp: "
                                             r"expected NOERROR .*, the client got NO ANSWER"):
        test_dns.test_forward_lookup(web, "mdb", INVENTORY["gw"], "udp")


def test_dropping_the_masquerade_rule_fails_the_nat_scenario(
        gw: Machine, web: Machine, lab: Lab) -> None:
    gw.succeed("nft flush chain ip nat postrouting")
    # Unmasqueraded, web's request leaves as 192.168.1.100: the uplink cannot answer it.
    with pytest.raises(AssertionError, match=r"web asked the uplink .*: expected HTTP 204, got 000"):
        test_nat.test_the_uplink_sees_lan_requests_coming_from_gw(web, lab)


def test_removing_pas_reservation_fails_the_lease_scenario(gw: Machine, pas: Machine) -> None:
    mac = INVENTORY["pas-r11p11"].nic("lan").mac
    gw.succeed(f"systemctl stop kea-dhcp4-server && sed -i 's/{mac}/02:00:00:00:00:00/' "
               "/etc/kea/kea-dhcp4.conf && rm -f /var/lib/kea/kea-leases4.csv* "
               "&& systemctl start kea-dhcp4-server")
    gw.wait_for_open_port(67, "192.168.1.254", "udp")
    pas.succeed("networkctl reconfigure lan0")
    pas.wait_until_succeeds("ip -4 -o addr show dev lan0 | grep -q ' 192.168.1.2[0-9][0-9]/'", timeout=30)
    with pytest.raises(AssertionError, match=r"pas holds \['192.168.1.2\d\d'\], not its reservation "
                                             r"192.168.0.1"):
        test_pas.test_lease_matches_the_reservation_with_all_options(pas)
