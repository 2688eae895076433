"""What every stage of the reference lab does to the machines it adds, before they boot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import Build, Family, HarnessError
from harness.engine.build.debian import HOSTS
from harness.machines import rootfs
from harness.model.inventory import Config
from stages.generate import dhcp_unit, network_units, resolver
from stages.inventory import INVENTORY

if TYPE_CHECKING:
    from harness import Machine


def configure_network(build: Build, machine: str) -> None:
    """Write ``machine``'s network units from the inventory and let systemd-networkd apply
    them; a DHCP client gets its resolver through systemd-resolved.

    systemd-networkd-wait-online is masked: a link that never becomes routable (a gateway's
    with no default route) would stall every boot until wait-online gives up; scenarios wait
    for what they need instead.
    """
    host, member = INVENTORY[machine], machine
    write_all(build, member, network_units(INVENTORY, host))
    # A machine knows its own name without asking DNS (Debian's 127.0.1.1 convention):
    # daemons that look themselves up at start would otherwise wait on DNS not yet up.
    build.write(member, "/etc/hosts", f"{HOSTS}127.0.1.1\t{machine}.{INVENTORY.domain} {machine}\n")
    if all(nic.config is Config.STATIC for nic in host.nics):
        build.write(member, "/etc/resolv.conf", resolver(INVENTORY, host))
    else:
        _resolve_by_dhcp(build, member)
    _enable_networkd(build, member)


def configure_dhcp_tree(build: Build, tree: str, ifname: str) -> None:
    """Make ``tree`` (booted by the rooms' machines) take everything from DHCP on ``ifname``:
    its addresses, route, resolver, domains and name, in every family the seats have. Nothing
    in it is specific to one machine."""
    nics = [INVENTORY[seat].nics[0] for seat in INVENTORY.seats()]
    write_all(build, tree, dhcp_unit(ifname, ipv4=any(nic.address for nic in nics),
                                     ipv6=any(nic.config6 is not None for nic in nics)))
    build.write(tree, "/etc/hosts", HOSTS)
    _resolve_by_dhcp(build, tree)
    _enable_networkd(build, tree)


def _resolve_by_dhcp(build: Build, member: str) -> None:
    rootfs.systemctl(build.root(member), "enable", "systemd-resolved.service")
    # Names come from gw's DNS only: resolved would otherwise answer single-label names
    # over LLMNR with link-local IPv6 addresses.
    build.write(member, "/etc/systemd/resolved.conf.d/lab.conf", "[Resolve]\nLLMNR=no\nMulticastDNS=no\n")


def _enable_networkd(build: Build, member: str) -> None:
    rootfs.systemctl(build.root(member), "enable", "systemd-networkd.service")
    rootfs.systemctl(build.root(member), "mask", "systemd-networkd-wait-online.service")


def room_interface() -> str:
    """The one interface name every seat of every room has (the tree they boot names it)."""
    names = {nic.name for seat in INVENTORY.seats() for nic in INVENTORY[seat].nics}
    if len(names) != 1:
        raise HarnessError(f"the rooms' machines must share one interface name to boot one tree; "
                           f"they have {sorted(names)}: give every room the same interface")
    return names.pop()


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


def wait_for_lease(machine: Machine, nic: str, since: str, timeout: float = 30,
                   families: tuple[Family, ...] = tuple(Family)) -> None:
    """Wait until ``machine`` took a lease on ``nic`` of each of ``families`` it has an address
    of, after ``since`` (its own clock, ``date +%s.%N``), and holds the address."""
    held = next(n for n in INVENTORY[machine.name].nics if n.name == nic).families()
    for family in (f for f in families if f in held):
        protocol = "DHCPv4" if family is Family.IPV4 else "DHCPv6"
        machine.wait_until_succeeds(f"journalctl -q -u systemd-networkd --since=@{since} | grep -q "
                                    f"'{nic}: {protocol} address' && ip -{family.version} -o addr show "
                                    f"dev {nic} scope global -tentative | grep -q inet", timeout=timeout)
