"""Mutants of stage pas (stages/pas.py): plausible regressions of what it builds, one each.

No stage imports this module, so none of it is part of a stage's key: adding or editing a
mutant rebuilds nothing. stages/__init__.py attaches these to stage pas (see harness.model.mutant).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from harness import HarnessError, Stage, mutant
from harness.model.mutant import edit, run
from stages.common import room_interface
from stages.inventory import INVENTORY
from stages.mutants import common
from stages.pas import SEATS

if TYPE_CHECKING:
    from harness import Lab


# -- mutants: plausible mistakes in how a contestant machine boots and logs in (harness.model.mutant) -----


@mutant.at_build("pas boots its root writable and persistent, so one contestant's changes stay")
def pas_writable_root(stage: Stage) -> Stage:
    return dataclasses.replace(stage, boot_args={seat: ("--bind=/dev/fuse",) for seat in SEATS})


@mutant.at_build("pas boots its root read-only with no volatile overlay: nothing can be written")
def pas_root_not_volatile(stage: Stage) -> Stage:
    return dataclasses.replace(stage, boot_args={seat: ("--read-only", "--bind=/dev/fuse") for seat in SEATS})


@mutant("the login hook creates homes world-readable (755): any user reads another's files")
def pas_homes_world_readable(lab: Lab) -> None:
    for seat in common.seats(lab):
        edit(seat, "/usr/local/sbin/mount-home", "-m 700", "-m 755")


@mutant("the login hook runs the SFTP server as root: files in homes are root's, not the user's")
def pas_home_files_owned_by_root(lab: Lab) -> None:
    for seat in common.seats(lab):
        edit(seat, "/usr/local/sbin/mount-home",
             "/usr/bin/setpriv --reuid=$uid --regid=$gid --init-groups ", "")


@mutant("the PAM session no longer runs the login hook: a login gets no home from rhfs0")
def pas_home_not_mounted(lab: Lab) -> None:
    for seat in common.seats(lab):
        edit(seat, "/etc/pam.d/common-session",
             "session required pam_exec.so /usr/local/sbin/mount-home\n", "")


@mutant("the login hook gives up connecting to rhfs0 after 1 s: a seat on a slow link gets no home")
def pas_home_connect_timeout_short(lab: Lab) -> None:
    for seat in common.seats(lab):
        edit(seat, "/usr/local/sbin/mount-home", "ConnectTimeout=5", "ConnectTimeout=1")


@mutant("the seats search a stray domain, example.org, before the LAN's (set by hand on their resolver): "
        "each short name first waits on a lookup over the uplink")
def pas_stray_search_domain(lab: Lab) -> None:
    nic = room_interface()
    for seat in common.seats(lab):
        run(seat, f"resolvectl domain {nic} example.org {INVENTORY.domain} && resolvectl flush-caches")


@mutant("the rooms' image is updated in place with the servers' network template, which takes no name "
        "from DHCP (UseHostname=no for DHCPv4 and DHCPv6): the running seats keep their names, and from "
        "their next boot on every seat goes by its bare machine name, not the one DHCP gives it")
def pas_image_takes_no_name_from_dhcp(lab: Lab) -> None:
    # the tree every seat boots, as the lab holds it (writable here, read-only to the seats)
    network = lab.root(common.seats(lab)[0].name) / f"etc/systemd/network/10-{room_interface()}.network"
    text = network.read_text()
    if "UseHostname=yes" not in text or "[DHCPv6]\n" not in text:
        raise HarnessError(f"{network} has no UseHostname=yes or no [DHCPv6] section: update the mutant")
    replaced = network.with_name(network.name + ".new")
    replaced.write_text(text.replace("UseHostname=yes", "UseHostname=no")
                        .replace("[DHCPv6]\n", "[DHCPv6]\nUseHostname=no\n"))
    replaced.replace(network)  # a new file: the running seats' overlays go on seeing the old one


@mutant("the seats' resolv.conf is written by hand to fail fast (options timeout:1 attempts:1): a lookup "
        "gets one try of a second, and a query or answer lost on the way to gw is a failed lookup")
def pas_resolver_one_try(lab: Lab) -> None:
    for seat in common.seats(lab):
        # a file of its own, no longer the resolver's link into /run: what DHCP gave stays
        run(seat, "cp --remove-destination /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf && "
                  "echo 'options timeout:1 attempts:1' >> /etc/resolv.conf")


@mutant("the last seat's switch port is bad: its link delays every frame by 300 ms each way")
def pas_one_seat_slow_link(lab: Lab) -> None:
    lab.network.impair(common.seats(lab)[-1].name, delay="300ms")


@mutant("pas ignores the domains DHCP gives it: short names such as wiki do not resolve")
def pas_ignores_dhcp_domains(lab: Lab) -> None:
    for seat in common.seats(lab):
        edit(seat, f"/etc/systemd/network/10-{room_interface()}.network", "UseDomains=yes",
             "UseDomains=no")
        run(seat, "networkctl reload")
    common.renew_leases(lab)


# -- mutants of the contestant's side: what a contestant at a seat must not be able to do
# (stages/contestant.py) --------------------------------------------------------------------------


@mutant("the contestant image keeps the base image's empty root password: su gives root to anyone")
def pas_root_password_empty(lab: Lab) -> None:
    for seat in common.seats(lab):
        run(seat, "passwd --delete root")


@mutant("the key that mounts homes is world-readable on the seats: it is root on rhfs0")
def pas_homes_key_readable(lab: Lab) -> None:
    for seat in common.seats(lab):
        run(seat, "chmod 644 /etc/harness/homes_key")


@mutant("find is set-user-id root on the seats (to let contestants search everywhere): a root shell")
def pas_setuid_find(lab: Lab) -> None:
    for seat in common.seats(lab):
        run(seat, "chmod u+s /usr/bin/find")


@mutant("a polkit rule lets every user manage the seat's network (to fix their own link)")
def pas_polkit_network_for_all(lab: Lab) -> None:
    rule = ('polkit.addRule(function(action, subject) {\n'
            '    if (action.id.indexOf("org.freedesktop.network1.") == 0) return polkit.Result.YES;\n});\n')
    for seat in common.seats(lab):
        run(seat, f"printf '{rule}' > /etc/polkit-1/rules.d/50-network.rules && "
                  "systemctl try-restart polkit.service")


@mutant("tar reads every file on the seats (CAP_DAC_READ_SEARCH, for a backup job): /etc/shadow too")
def pas_tar_reads_everything(lab: Lab) -> None:
    for seat in common.seats(lab):
        run(seat, "setcap cap_dac_read_search+ep /usr/bin/tar")


@mutant("the seats' network unit is world-writable: a contestant rewrites the seat's network")
def pas_network_unit_writable(lab: Lab) -> None:
    for seat in common.seats(lab):
        run(seat, f"chmod 666 /etc/systemd/network/10-{room_interface()}.network")


@mutant("/usr/local/bin is world-writable on the seats: one contestant plants a program for the next")
def pas_shared_tree_writable(lab: Lab) -> None:
    for seat in common.seats(lab):
        run(seat, "chmod 1777 /usr/local/bin")


@mutant("/etc/shadow is world-readable on the seats: every contestant's password hash is anyone's")
def pas_shadow_readable(lab: Lab) -> None:
    for seat in common.seats(lab):
        run(seat, "chmod 644 /etc/shadow")
