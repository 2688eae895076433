"""A SLAAC segment on real machines: the router's advertisement, as the reference lab's
generator writes it, gives a client the very address the inventory computes from its MAC
(so DNS, the firewall and the scenarios can name it), and its DNS server and search domain.

The reference lab's LAN is DHCPv6 (managed flag); this is the other mode an inventory
offers (``ipv6 = "slaac"``), run on two machines cloned from the bootstrap root, the
router's and the client's systemd-networkd configured with the generated units.
"""

from __future__ import annotations

import ipaddress
import json
import tomllib

import pytest

from harness.core.links import Family
from harness.machines.lab import MachineSetup
from harness.machines.machine import Machine
from harness.model.inventory_file import parse
from stages.generate import network_units

pytestmark = pytest.mark.integration

PLAN = """
[lab]
domain = "slaac.test"

[segments.lan]
cidr6 = "2001:db8:5::/64"
ipv6 = "slaac"

[machines.r]
router = true
interfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:05:01", address6 = "2001:db8:5::1" }]

[machines.c]
interfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:05:02", config = "dhcp" }]
"""
INVENTORY = parse(tomllib.loads(PLAN), PLAN, "slaac plan")


def configure(machine: Machine) -> None:
    """Write ``machine``'s generated networkd units and (re)start networkd with them."""
    for path, text in network_units(INVENTORY, INVENTORY[machine.name]).items():
        machine.succeed(f"mkdir -p /etc/systemd/network && cat > {path}", input=text)
    machine.succeed("systemctl restart systemd-networkd")


def test_a_slaac_client_takes_the_address_the_inventory_computes_and_the_advertised_dns(
        make_lab, base) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab([MachineSetup(name, base, INVENTORY.interfaces(name), sysctls=INVENTORY.sysctls(name))
                    for name in ("r", "c")])
    router, client = lab["r"], lab["c"]
    configure(router)
    configure(client)
    nic = INVENTORY["c"].nic("lan")
    client.wait_for_address(nic.name, str(nic.address6))  # the prefix and the MAC's EUI-64, past DAD
    assert client.addresses(nic.name, Family.IPV6, dynamic=True) == [str(nic.address6)]
    link = json.loads(client.wait_until_succeeds(
        f"networkctl --json=short status {nic.name} | grep -q SearchDomains && "
        f"networkctl --json=short status {nic.name}"))
    router6 = INVENTORY["r"].nic("lan").address6
    assert [s["Domain"] for s in link["SearchDomains"]] == [INVENTORY.domain], link["SearchDomains"]
    servers = [(ipaddress.ip_address(bytes(s["Address"])), s.get("ConfigSource")) for s in link["DNS"]]
    assert servers == [(router6, "NDisc")], f"expected the router's advertised DNS server, got {servers}"
    assert "1 received" in client.succeed(f"ping -6 -c1 -W5 {router6}")
