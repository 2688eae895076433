"""Stage pas: pas-r11p11, a diskless contestant machine (192.168.0.1 by DHCP reservation).

It boots the rfs tree that rhfs built, read-only with a volatile overlay (writes vanish at
poweroff, as on a network-booted machine), takes its address, route and resolver from
DHCP, and mounts a user's home from rhfs0 when they log in. /dev/fuse is bound in for sshfs.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from harness.build import Build
from harness.mutant import edit, mutant, run
from harness.stage import Stage
from stages import common
from stages.inventory import INVENTORY, TEXT

if TYPE_CHECKING:
    from harness.lab import Lab

NAME = "pas-r11p11"
ADDRESS = str(INVENTORY[NAME].nic("lan").address)


def on_the_lan(build: Build) -> None:
    """wait until pas has its DHCP address and a console login prompt"""
    pas = build[NAME]
    pas.wait_for_address("lan0", ADDRESS)
    pas.wait_for_unit("console-getty.service")


# -- mutants: plausible mistakes in how a contestant machine boots and logs in (harness.mutant) -----


@mutant.at_build("pas boots its root writable and persistent, so one contestant's changes stay")
def pas_writable_root(stage: Stage) -> Stage:
    return dataclasses.replace(stage, boot_args={NAME: ("--bind=/dev/fuse",)})


@mutant.at_build("pas boots its root read-only with no volatile overlay: nothing can be written")
def pas_root_not_volatile(stage: Stage) -> Stage:
    return dataclasses.replace(stage, boot_args={NAME: ("--read-only", "--bind=/dev/fuse")})


@mutant("the login hook creates homes world-readable (755): any user reads another's files")
def pas_homes_world_readable(lab: Lab) -> None:
    edit(lab[NAME], "/usr/local/sbin/mount-home", "-m 700", "-m 755")


@mutant("the login hook runs the SFTP server as root: files in homes are root's, not the user's")
def pas_home_files_owned_by_root(lab: Lab) -> None:
    edit(lab[NAME], "/usr/local/sbin/mount-home",
         "/usr/bin/setpriv --reuid=$uid --regid=$gid --init-groups ", "")


@mutant("the PAM session no longer runs the login hook: a login gets no home from rhfs0")
def pas_home_not_mounted(lab: Lab) -> None:
    edit(lab[NAME], "/etc/pam.d/common-session",
         "session required pam_exec.so /usr/local/sbin/mount-home\n", "")


@mutant("pas ignores the domains DHCP gives it: short names such as wiki do not resolve")
def pas_ignores_dhcp_domains(lab: Lab) -> None:
    edit(lab[NAME], "/etc/systemd/network/10-lan0.network", "UseDomains=yes", "UseDomains=no")
    run(lab[NAME], "networkctl reload")
    common.renew_leases(lab)


STAGE = Stage.here(
    "pas",
    machines=(NAME,),
    sources={NAME: "rfs"},
    boot_args={NAME: ("--read-only", "--volatile=overlay", "--bind=/dev/fuse")},
    ready=(on_the_lan,),
    definition={"inventory": TEXT},
)
