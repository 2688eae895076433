"""Mutants of stage rhfs (stages/rhfs.py): plausible regressions of what it builds, one each.

No stage imports this module, so none of it is part of a stage's key: adding or editing a
mutant rebuilds nothing. stages/__init__.py attaches these to stage rhfs (see harness.model.mutant).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import mutant
from harness.model.mutant import run
from stages.inventory import INVENTORY

if TYPE_CHECKING:
    from harness import Lab


# -- mutants: plausible mistakes on the home server (see harness.model.mutant; the login hook that
# mounts homes runs on the contestant machines: its mutants are pas's) ---------------------------


@mutant("an admin allowed root logins with a password on rhfs0, to debug, and left it so")
def rhfs_root_password_login(lab: Lab) -> None:
    rhfs0 = lab["rhfs0"]
    run(rhfs0, "echo 'PermitRootLogin yes' > /etc/ssh/sshd_config.d/debug.conf && systemctl restart ssh")
    rhfs0.wait_for_open_port(22, str(INVENTORY["rhfs0"].nic("lan").address))


@mutant("alice has another uid on rhfs0 than on the contestant machines: her files there are not hers")
def rhfs_uid_mismatch(lab: Lab) -> None:
    run(lab["rhfs0"], "usermod -u 10010 alice")


@mutant("rhfs0's sshd keeps its stock MaxStartups (10:30:100): a room logging in at once loses homes")
def rhfs_stock_max_startups(lab: Lab) -> None:
    run(lab["rhfs0"], "rm /etc/ssh/sshd_config.d/rooms.conf && systemctl restart ssh")
    lab["rhfs0"].wait_for_open_port(22, str(INVENTORY["rhfs0"].nic("lan").address))


@mutant("rhfs0 does not know the last room's users (its user list was synced before the room was added)")
def rhfs_room_users_missing(lab: Lab) -> None:
    for login in list(INVENTORY.rooms.values())[-1].users:
        run(lab["rhfs0"], f"userdel {login}")


@mutant("the contestant machines' key is no longer authorized on rhfs0: no home is mounted at login")
def rhfs_homes_key_revoked(lab: Lab) -> None:
    run(lab["rhfs0"], "rm /root/.ssh/authorized_keys")


@mutant("rhfs0's SSH server is disabled, and with it the only way homes travel")
def rhfs_sshd_disabled(lab: Lab) -> None:
    run(lab["rhfs0"], "systemctl disable --now ssh.service")


@mutant("rhfs0's sshd listens on IPv4 only (ListenAddress 0.0.0.0): no home over IPv6")
def rhfs_ssh_ipv4_only(lab: Lab) -> None:
    rhfs0 = lab["rhfs0"]
    run(rhfs0, "echo 'ListenAddress 0.0.0.0' > /etc/ssh/sshd_config.d/v4.conf && systemctl restart ssh")
    rhfs0.wait_for_open_port(22, str(INVENTORY["rhfs0"].nic("lan").address))


@mutant("rhfs0's users were given their passwords (copied from the seats): contestants SSH into rhfs0")
def rhfs_users_with_passwords(lab: Lab) -> None:
    run(lab["rhfs0"], "chpasswd", input="".join(f"{login}:{login}\n" for login in INVENTORY.users))
