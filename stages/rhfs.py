"""Stage rhfs: rhfs0 (192.168.1.1 by DHCP reservation), and the contestants' root filesystem.

rhfs0 serves the users' home directories over SFTP (OpenSSH): this kernel has no NFS,
nbd or 9p, so homes travel in user space (sshfs on the contestant machines). The stage
also builds ``rfs``, the tree every contestant machine boots read-only, from the base
image: a DHCP client (a machine booting it learns who it is from DHCP), the lab's users,
and a login hook that mounts the user's home from rhfs0, creating it on first use.
"""

from __future__ import annotations

from pathlib import Path

from harness import Build, Stage
from harness.machines import rootfs
from stages import spec
from stages.common import add_users, configure_dhcp_tree, configure_network, room_interface
from stages.inventory import INVENTORY

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

