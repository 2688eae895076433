"""Services: every machine runs every unit it starts without a failure, and gw reaches the
internet's connectivity check. What each service answers, and to whom, is asked where it
is used: test_dns, test_dhcp, test_policy, test_web, test_pas."""

from __future__ import annotations

import pytest

from harness.machine import Machine
from stages.inventory import INVENTORY

UPLINK = str(INVENTORY["internet"].nic("uplink").address)


@pytest.mark.parametrize("machine", list(INVENTORY.hosts), indirect=True)
def test_no_failed_unit(machine: Machine) -> None:
    """A failed unit is a service the machine was meant to run and does not."""
    failed = machine.succeed("systemctl list-units --failed --plain --no-legend").split("\n")
    units = [line.split()[0] for line in failed if line.strip()]
    why = {u: machine.succeed(f"systemctl status --no-pager --lines=8 {u} || true") for u in units}
    assert not units, f"{machine.name}: expected no failed unit, found {', '.join(units)}: {why}"


def test_internet_answers_the_connectivity_check(gw: Machine) -> None:
    url = f"http://{UPLINK}/generate_204"
    status = gw.execute(f"curl -s --max-time 5 -o /dev/null -w '%{{http_code}}' {url}")[1]
    assert status == "204", f"gw asked {url}: expected HTTP 204, got {status} (000: no answer)"
