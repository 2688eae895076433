"""Services: every machine runs every unit it starts without a failure, and gw reaches the
internet's connectivity check. What each service answers, and to whom, is asked where it
is used: test_dns, test_dhcp, test_policy, test_web, test_pas."""

from __future__ import annotations

import pytest

from harness import Family, Machine
from harness.probes import http_status, in_url, no_failed_unit
from scenarios.conftest import address, by_family, one_seat_for_all
from stages.inventory import INVENTORY


@pytest.mark.parametrize("machine", [h.name for h in one_seat_for_all(list(INVENTORY.hosts.values()))],
                         indirect=True)
def test_no_failed_unit(machine: Machine) -> None:
    no_failed_unit(machine)


@by_family
def test_internet_answers_the_connectivity_check(gw: Machine, family: Family) -> None:
    url = f"http://{in_url(address('internet', family, 'uplink'))}/generate_204"
    status = http_status(gw, url)
    assert status == "204", f"gw asked {url}: expected HTTP 204, got {status} (000: no answer)"
