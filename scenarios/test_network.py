"""Network: every machine and gw reach each other on every segment they share, at the
addresses the inventory gives them.

One row per machine of the inventory (gw, on every segment, is the other end of each):
the test asks for the machine itself, so a lab holding it is booted whatever the stage
that adds it.
"""

from __future__ import annotations

import pytest

from harness.machine import Machine
from stages.generate import router
from stages.inventory import INVENTORY

GW = router(INVENTORY)
OTHERS = [name for name, host in INVENTORY.hosts.items() if not host.router]


def _ping(source: Machine, address: str) -> str | None:
    """None if ``address`` answered ``source``'s ping, else what ping said."""
    status, out = source.execute(f"ping -n -c1 -W2 {address} 2>&1")
    return None if status == 0 else " ".join(out.split())[-200:] or f"exit status {status}"


@pytest.mark.parametrize("machine", OTHERS, indirect=True)
def test_machine_and_gw_reach_each_other(machine: Machine, gw: Machine) -> None:
    for nic in INVENTORY[machine.name].nics:
        mine, gws = str(nic.address), str(GW.nic(nic.segment).address)
        failed = _ping(machine, gws)
        assert failed is None, f"{machine.name} on the {nic.segment}: expected gw to answer at {gws}, " \
                               f"ping said: {failed}"
        failed = _ping(gw, mine)
        assert failed is None, f"gw on the {nic.segment}: expected {machine.name} to answer at {mine}, " \
                               f"ping said: {failed}"
