"""Network: every machine and gw reach each other on every segment they share, at the
addresses the inventory gives them, in each family.

One row per machine of the inventory (gw, on every segment, is the other end of each; one
seat stands for its rooms, test_rooms.py pings every seat):
the test asks for the machine itself, so a lab holding it is booted whatever the stage
that adds it.
"""

from __future__ import annotations

import pytest

from harness import Family, Machine
from harness.probes import ping
from scenarios.conftest import one_seat_for_all
from stages.inventory import INVENTORY

GW = INVENTORY.router()
# each machine but gw, in each family it has an address of
OTHERS = [(h.name, family) for h in one_seat_for_all(list(INVENTORY.hosts.values())) if not h.router
          for family in h.families()]


@pytest.mark.parametrize("machine, family", OTHERS, ids=[f"{f}-{m}" for m, f in OTHERS], indirect=["machine"])
def test_machine_and_gw_reach_each_other(machine: Machine, gw: Machine, family: Family) -> None:
    for nic in (n for n in INVENTORY[machine.name].nics if family in n.families()):
        mine, gws = str(nic.address_of(family)), str(GW.nic(nic.segment).address_of(family))
        failed = ping(machine, gws)
        assert failed is None, f"{machine.name} on the {nic.segment}: expected gw to answer at {gws}, " \
                               f"ping said: {failed}"
        failed = ping(gw, mine)
        assert failed is None, f"gw on the {nic.segment}: expected {machine.name} to answer at {mine}, " \
                               f"ping said: {failed}"
