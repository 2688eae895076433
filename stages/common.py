"""What every stage of the reference lab does to the machines it adds, before they boot."""

from __future__ import annotations

from harness import rootfs
from harness.build import Build
from harness.inventory import Config
from stages.generate import network_units, resolver
from stages.inventory import INVENTORY


def configure_network(build: Build, machine: str) -> None:
    """Write ``machine``'s network units from the inventory and let systemd-networkd apply them.

    systemd-networkd-wait-online is masked: a link that never becomes routable would stall
    boot by seconds (NOTES.md); scenarios wait for what they need instead.
    """
    host = INVENTORY[machine]
    for path, text in network_units(INVENTORY, host).items():
        build.write(machine, path, text)
    if all(nic.config is Config.STATIC for nic in host.nics):
        build.write(machine, "/etc/resolv.conf", resolver(INVENTORY, host))
    rootfs.systemctl(build.root(machine), "enable", "systemd-networkd.service")
    rootfs.systemctl(build.root(machine), "mask", "systemd-networkd-wait-online.service")


def write_all(build: Build, machine: str, files: dict[str, str]) -> None:
    """Write every ``path: content`` of ``files`` into ``machine``."""
    for path, text in files.items():
        build.write(machine, path, text)
