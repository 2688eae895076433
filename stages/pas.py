"""Stage pas: pas-r11p11, a diskless contestant machine (192.168.0.1 by DHCP reservation).

It boots the rfs tree that rhfs built, read-only with a volatile overlay (writes vanish at
poweroff, as on a network-booted machine), takes its address, route and resolver from
DHCP, and mounts a user's home from rhfs0 when they log in. /dev/fuse is bound in for sshfs.
"""

from __future__ import annotations

from harness.build import Build
from harness.stage import Stage
from stages.inventory import INVENTORY, TEXT

NAME = "pas-r11p11"
ADDRESS = str(INVENTORY[NAME].nic("lan").address)


def on_the_lan(build: Build) -> None:
    """wait until pas has its DHCP address and a console login prompt"""
    pas = build[NAME]
    pas.wait_for_address("lan0", ADDRESS)
    pas.wait_for_unit("console-getty.service")


STAGE = Stage.here(
    "pas",
    machines=(NAME,),
    sources={NAME: "rfs"},
    boot_args={NAME: ("--read-only", "--volatile=overlay", "--bind=/dev/fuse")},
    ready=(on_the_lan,),
    definition={"inventory": TEXT},
)
