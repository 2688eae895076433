"""DNS, as a LAN client sees it: every machine and alias resolves forward and reverse through gw,
unknown names do not, recursion works for the LAN and is refused to the uplink."""

from __future__ import annotations

import pytest

from harness.inventory import Host
from harness.lab import Lab
from harness.machine import Machine
from scenarios.conftest import Answer, dig
from stages.generate import UPLINK_ZONE
from stages.inventory import INVENTORY

DNS = str(INVENTORY["gw"].nic("lan").address)
LAN_HOSTS = INVENTORY.on("lan")
NAMES = [(h.name, h.name, str(h.nic("lan").address)) for h in LAN_HOSTS] + [
    (alias, h.name, str(h.nic("lan").address)) for h in LAN_HOSTS for alias in h.aliases]


@pytest.mark.parametrize("name, target, address", NAMES, ids=[n for n, _, _ in NAMES])
def test_forward_lookup(web: Machine, name: str, target: str, address: str) -> None:
    answer = dig(web, f"{name}.{INVENTORY.domain}", "A", server=DNS)
    if name == target:
        assert answer == Answer("NOERROR", [address])
    else:  # aliases are CNAMEs to the machine
        assert answer == Answer("NOERROR", [f"{target}.{INVENTORY.domain}.", address])


@pytest.mark.parametrize("host", LAN_HOSTS, ids=[h.name for h in LAN_HOSTS])
def test_reverse_lookup(web: Machine, host: Host) -> None:
    answer = dig(web, "-x", str(host.nic("lan").address), server=DNS)
    assert answer == Answer("NOERROR", [f"{host.name}.{INVENTORY.domain}."])


def test_short_names_resolve_through_the_dhcp_search_domain(web: Machine) -> None:
    assert web.succeed("getent hosts mdb").split()[0] == DNS


def test_unknown_name_is_nxdomain(web: Machine) -> None:
    assert dig(web, f"nosuchmachine.{INVENTORY.domain}", server=DNS) == Answer("NXDOMAIN", [])


def test_lan_gets_recursion_through_the_uplink(web: Machine) -> None:
    assert dig(web, f"www.{UPLINK_ZONE}", server=DNS) == Answer("NOERROR", ["10.0.0.1"])


def test_uplink_is_refused_recursion(gw: Machine, lab: Lab) -> None:
    assert dig(lab["internet"], f"www.{UPLINK_ZONE}", server="10.0.0.254") == Answer("REFUSED", [])
