"""What the reference lab's mutants share: after a change to a running lab, wait until the lab
is steady again (clients renewed their leases, BIND serves its zones, caches are empty).

Only mutants use it, and no stage imports it: editing it rebuilds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness import Family, HarnessError
from harness.model.inventory import Config
from harness.model.mutant import read, run, write
from stages import spec
from stages.common import wait_for_lease
from stages.generate import reverse_name, reverse_zones
from stages.inventory import INVENTORY

if TYPE_CHECKING:
    from harness import Lab, Machine


def seats(lab: Lab) -> list[Machine]:
    """The machines of every room that ``lab`` holds, room by room."""
    return [lab[seat] for seat in INVENTORY.seats() if seat in lab.machines]


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


def flush_dns_caches(lab: Lab) -> None:
    """Empty the resolver cache of each machine of ``lab`` that has one (systemd-resolved on the
    DHCP clients), so that a change to DNS shows at once."""
    for machine, _ in dhcp_clients(lab):
        run(machine, "resolvectl flush-caches")


KEA = {Family.IPV4: ("/etc/kea/kea-dhcp4.conf", "Dhcp4", "kea-dhcp4-server", 67, "DHCP4_STARTED"),
       Family.IPV6: ("/etc/kea/kea-dhcp6.conf", "Dhcp6", "kea-dhcp6-server", 547, "DHCP6_STARTED")}


def change_dhcp(lab: Lab, change: Callable[[dict[str, Any]], None], forget_leases: bool = False,
                family: Family = Family.IPV4) -> None:
    """Apply ``change`` to the ``Dhcp4`` (``Dhcp6``) object of gw's Kea configuration, restart
    that Kea (with no lease in its database if ``forget_leases``), and renew every client's
    leases."""
    path, key, unit, port, started = KEA[family]
    gw = lab[INVENTORY.router().name]
    config = json.loads(read(gw, path))
    change(config[key])
    leases = f"/var/lib/kea/kea-leases{family.version}.csv*"
    run(gw, f"systemctl stop {unit}" + (f" && rm -f {leases}" if forget_leases else ""))
    write(gw, path, json.dumps(config, indent=2) + "\n")
    cursor = gw.journal_cursor()
    run(gw, f"systemctl start {unit}")
    gw.wait_for_unit(f"{unit}.service")
    gw.wait_for_open_port(port, gw_address() if family is Family.IPV4 else "ff02::1:2", "udp")
    gw.wait_for_journal(started, unit=f"{unit}.service", after=cursor)  # bound is not yet serving
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
