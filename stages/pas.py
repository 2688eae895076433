"""Stage pas: the contest rooms, one diskless machine per seat of each room of the inventory.

Every seat boots the rfs tree that rhfs built, read-only with a volatile overlay (writes
vanish at poweroff, as on a network-booted machine), takes its address, route, resolver
and name from DHCP (its reservation), and mounts a user's home from rhfs0 when they log
in. /dev/fuse is bound in for sshfs. How many seats a room has is the inventory's, or
``--room-size`` for a run.
"""

from __future__ import annotations

from harness import Build, Machine, Stage
from harness.machines import fleet
from stages.inventory import INVENTORY

SEATS = INVENTORY.seats()
BOOT = ("--read-only", "--volatile=overlay", "--bind=/dev/fuse")
BOOT_CPU = 1.0  # CPU-seconds a seat's boot may take: 0.5 to 1.2 measured (bench/README.md)


def on_the_lan(build: Build) -> None:
    """wait until every seat has its DHCP addresses and a console login prompt"""

    def seated(machine: Machine, left: float) -> None:
        nic = INVENTORY[machine.name].nics[0]
        for address in (nic.address, nic.address6):
            if address:
                machine.wait_for_address(nic.name, str(address), timeout=left)
        machine.wait_for_unit("console-getty.service", timeout=left)

    fleet.wait_all([build[seat] for seat in SEATS], seated, what="every seat's lease and login prompt",
                   timeout=fleet.deadline(SEATS, BOOT_CPU))


STAGE = Stage.here(
    "pas",
    machines=SEATS,
    sources={seat: "rfs" for seat in SEATS},
    boot_args={seat: BOOT for seat in SEATS},
    ready=(on_the_lan,),
    definition={"inventory": INVENTORY.fingerprint()},
)
