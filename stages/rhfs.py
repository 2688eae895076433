"""Stage rhfs: rhfs0 (192.168.1.1 by DHCP reservation), and the contestants' root filesystem.

rhfs0 serves the users' home directories over SFTP (OpenSSH): this kernel has no NFS,
nbd or 9p, so homes travel in user space (sshfs on the contestant machines). The stage
also builds ``rfs``, the tree every contestant machine boots read-only, from the base
image: a DHCP client (a machine booting it learns who it is from DHCP), the lab's users,
and a login hook that mounts the user's home from rhfs0, creating it on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness import rootfs
from harness.build import Build
from harness.mutant import mutant, run
from harness.stage import Stage
from stages import spec
from stages.common import add_users, configure_dhcp_tree, configure_network, room_interface
from stages.inventory import INVENTORY

if TYPE_CHECKING:
    from harness.lab import Lab

MOUNT_HOME = Path(__file__).parent / "files" / "mount-home"
KEY = "/etc/harness/homes_key"


def max_startups() -> str:
    """rhfs0's sshd MaxStartups, as the plan says (`spec.logins_at_once`): every seat logs in at
    once, each login opening its SSH connection to rhfs0 (sshfs) before authenticating. sshd's
    stock 10:30:100 drops a third of them from the 11th on, and the user gets no home."""
    start, full = spec.logins_at_once(len(INVENTORY.seats()))
    return f"MaxStartups {start}:30:{full}"


def configure(build: Build) -> None:
    """set up rhfs0's network, users and SSH access, and the rfs tree's DHCP client, users and login hook"""
    configure_network(build, "rhfs0")
    configure_dhcp_tree(build, "rfs", room_interface())
    add_users(build, "rhfs0")
    add_users(build, "rfs", password=True)
    rfs = build.root("rfs")
    # The base image's root has an empty password (a lab machine's console lets root in), and
    # Debian's PAM takes an empty password (nullok): on a seat, any contestant's `su` was root.
    rootfs.run_in_root(rfs, ["passwd", "--lock", "root"])
    (rfs / "etc/harness").mkdir(parents=True, exist_ok=True)
    rootfs.run_in_root(rfs, ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rfs-homes",
                             "-f", KEY])
    build.write("rhfs0", "/root/.ssh/authorized_keys", (rfs / KEY.lstrip("/")).with_suffix(".pub")
                .read_text(), 0o600)
    build.write("rhfs0", "/etc/ssh/sshd_config.d/rooms.conf", f"{max_startups()}\n")
    build.write("rfs", "/usr/local/sbin/mount-home", MOUNT_HOME.read_text(), 0o755)
    with open(rfs / "etc/pam.d/common-session", "a") as pam:
        pam.write("session required pam_exec.so /usr/local/sbin/mount-home\n")


def serving(build: Build) -> None:
    """wait until rhfs0 has its DHCP addresses and serves SSH"""
    nic = INVENTORY["rhfs0"].nic("lan")
    for address in (nic.address, nic.address6):
        if address:
            build["rhfs0"].wait_for_address(nic.name, str(address))
    build["rhfs0"].wait_for_open_port(22)


# -- mutants: plausible mistakes on the home server (see harness.mutant; the login hook that
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


STAGE = Stage.here(
    "rhfs",
    machines=("rhfs0",),
    trees=("rfs",),
    packages={"rhfs0": ("systemd-resolved", "openssh-server"),
              "rfs": ("systemd-resolved", "openssh-client", "sshfs", "bind9-dnsutils", "curl",
                      "polkitd")},
    prepare=configure,
    ready=(serving,),
    files=("files/mount-home",),
    definition={"inventory": INVENTORY.fingerprint()},
)

