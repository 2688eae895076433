"""What every stage of the reference lab does to the machines it adds, before they boot."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness import rootfs
from harness.build import Build
from harness.debian import HOSTS
from harness.errors import HarnessError
from harness.inventory import Config
from harness.mutant import read, run, write
from harness.network import Family
from stages import spec
from stages.generate import (
    dhcp_unit,
    network_units,
    resolver,
    reverse_name,
    reverse_zones,
)
from stages.inventory import INVENTORY

if TYPE_CHECKING:
    from harness.lab import Lab
    from harness.machine import Machine


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


def seats(lab: Lab) -> list[Machine]:
    """The machines of every room that ``lab`` holds, room by room."""
    return [lab[seat] for seat in INVENTORY.seats() if seat in lab.machines]


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


# -- after a change to a running lab (a mutant): wait until the lab is steady again ---------------


def dhcp_clients(lab: Lab) -> list[tuple[Machine, str]]:
    """Each machine of ``lab`` that takes an address by DHCP, with the interface it takes it on."""
    return [(lab[host.name], nic.name) for host in INVENTORY.hosts.values() if host.name in lab.machines
            for nic in host.nics if nic.config is Config.DHCP]


def renew_leases(lab: Lab, timeout: float = 30, families: tuple[Family, ...] = tuple(Family)) -> None:
    """Make every DHCP client of ``lab`` drop its leases and ask again, as after a reboot, wait
    until each has a new one of each of ``families`` it has an address of (DHCPv6 for IPv6:
    leave IPv6 out when no lease of it will come), and empty their DNS caches: they then hold
    what gw hands out now."""
    clients = dhcp_clients(lab)
    marks = [run(machine, f"date +%s.%N && networkctl reconfigure {nic}").strip()
             for machine, nic in clients]
    for (machine, nic), mark in zip(clients, marks, strict=True):
        wait_for_lease(machine, nic, mark, timeout, families)
    flush_dns_caches(lab)


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


def flush_dns_caches(lab: Lab) -> None:
    """Empty the resolver cache of each machine of ``lab`` that has one (systemd-resolved on the
    DHCP clients), so that a change to DNS shows at once."""
    for machine, _ in dhcp_clients(lab):
        run(machine, "resolvectl flush-caches")


KEA = {Family.IPV4: ("/etc/kea/kea-dhcp4.conf", "Dhcp4", "kea-dhcp4-server", 67),
       Family.IPV6: ("/etc/kea/kea-dhcp6.conf", "Dhcp6", "kea-dhcp6-server", 547)}


def change_dhcp(lab: Lab, change: Callable[[dict[str, Any]], None], forget_leases: bool = False,
                family: Family = Family.IPV4) -> None:
    """Apply ``change`` to the ``Dhcp4`` (``Dhcp6``) object of gw's Kea configuration, restart
    that Kea (with no lease in its database if ``forget_leases``), and renew every client's
    leases."""
    path, key, unit, port = KEA[family]
    gw = lab[INVENTORY.router().name]
    config = json.loads(read(gw, path))
    change(config[key])
    leases = f"/var/lib/kea/kea-leases{family.version}.csv*"
    run(gw, f"systemctl stop {unit}" + (f" && rm -f {leases}" if forget_leases else ""))
    write(gw, path, json.dumps(config, indent=2) + "\n")
    run(gw, f"systemctl start {unit}")
    gw.wait_for_unit(f"{unit}.service")
    gw.wait_for_open_port(port, gw_address() if family is Family.IPV4 else "ff02::1:2", "udp")
    renew_leases(lab)


def dhcp_option(dhcp: dict[str, Any], name: str) -> dict[str, Any]:
    """The option ``name`` that the LAN's subnet hands out, in Kea's ``Dhcp4`` or ``Dhcp6`` object."""
    subnets: list[dict[str, Any]] = dhcp.get("subnet4") or dhcp["subnet6"]
    options: list[dict[str, Any]] = subnets[0]["option-data"]
    for option in options:
        if option["name"] == name:
            return option
    raise HarnessError(f"gw's Kea hands out no option {name!r}: update the mutant")


def gw_address() -> str:
    """The router's LAN address: the lab's DNS and DHCP server."""
    return str(INVENTORY.router().nic(spec.LAN).address)


def restart_dns(lab: Lab, zones: tuple[str, ...] | None = None, server: str | None = None) -> None:
    """Restart BIND on gw after a change, wait until each of ``zones`` (by default every zone it
    serves) answers its SOA on ``server`` (by default its LAN address), and empty the clients'
    DNS caches."""
    gw = lab[INVENTORY.router().name]
    run(gw, "systemctl restart named")
    gw.wait_for_unit("named.service")
    zones = zones if zones is not None else (
        INVENTORY.domain, f"{spec.DYNAMIC}.{INVENTORY.domain}", *map(reverse_name, reverse_zones(INVENTORY)))
    for zone in zones:
        gw.wait_until_succeeds(f"dig +short +norecurse @{server or gw_address()} {zone} SOA | grep -q .")
    flush_dns_caches(lab)
