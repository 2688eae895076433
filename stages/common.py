"""What every stage of the reference lab does to the machines it adds, before they boot."""

from __future__ import annotations

from harness import rootfs
from harness.build import Build
from harness.inventory import Config
from stages.bootstrap import HOSTS
from stages.generate import network_units, resolver
from stages.inventory import INVENTORY


def configure_network(build: Build, machine: str, into: str | None = None) -> None:
    """Write ``machine``'s network units from the inventory (into the root of member ``into``,
    by default the machine's own) and let systemd-networkd apply them; a DHCP client gets its
    resolver through systemd-resolved.

    systemd-networkd-wait-online is masked: a link that never becomes routable would stall
    boot by seconds (NOTES.md); scenarios wait for what they need instead.
    """
    host, member = INVENTORY[machine], into or machine
    for path, text in network_units(INVENTORY, host).items():
        build.write(member, path, text)
    root = build.root(member)
    # A machine knows its own name without asking DNS (Debian's 127.0.1.1 convention):
    # daemons that look themselves up at start would otherwise wait on DNS not yet up.
    build.write(member, "/etc/hosts", f"{HOSTS}127.0.1.1\t{machine}.{INVENTORY.domain} {machine}\n")
    if all(nic.config is Config.STATIC for nic in host.nics):
        build.write(member, "/etc/resolv.conf", resolver(INVENTORY, host))
    else:
        rootfs.systemctl(root, "enable", "systemd-resolved.service")
        # Names come from gw's DNS only: resolved would otherwise answer single-label names
        # over LLMNR with link-local IPv6 addresses.
        build.write(member, "/etc/systemd/resolved.conf.d/lab.conf",
                    "[Resolve]\nLLMNR=no\nMulticastDNS=no\n")
    rootfs.systemctl(root, "enable", "systemd-networkd.service")
    rootfs.systemctl(root, "mask", "systemd-networkd-wait-online.service")


def add_users(build: Build, member: str, password: bool = False) -> None:
    """Create the inventory's users in ``member`` with fixed uids (10000 + their rank), so that
    every machine agrees on who owns a file; with ``password``, each one's password is its login."""
    for rank, user in enumerate(INVENTORY.users.values()):
        uid = str(10000 + rank)
        rootfs.run_in_root(build.root(member), ["useradd", "--uid", uid, "--user-group",
                                                "--comment", user.name, "--shell", "/bin/bash",
                                                "--no-create-home", user.login])
    if password:
        lines = "".join(f"{u}:{u}\n" for u in INVENTORY.users)
        rootfs.run_in_root(build.root(member), ["sh", "-c", f"printf '{lines}' | chpasswd"])


def write_all(build: Build, machine: str, files: dict[str, str]) -> None:
    """Write every ``path: content`` of ``files`` into ``machine``."""
    for path, text in files.items():
        build.write(machine, path, text)
