"""Faults: what the LAN does when the network misbehaves (partitions, packet loss)."""

from __future__ import annotations

import re

import pytest

from harness.lab import Lab
from harness.machine import Machine
from stages.inventory import INVENTORY

GW = str(INVENTORY["gw"].nic("lan").address)
WEB = str(INVENTORY["web"].nic("lan").address)


def loss(machine: Machine, target: str, count: int = 100) -> int:
    """Percent of ``count`` pings from ``machine`` to ``target`` that got no answer."""
    out = machine.execute(f"ping -q -n -c {count} -i 0.01 -W 1 {target}")[1]
    found = re.search(r"(\d+(?:\.\d+)?)% packet loss", out)
    assert found, out
    return round(float(found.group(1)))


@pytest.mark.fresh_lab
def test_a_partition_cuts_two_machines_apart_and_nothing_else(pas: Machine, web: Machine, lab: Lab) -> None:
    lab.network.partition("pas-r11p11", "gw")
    assert loss(pas, GW, 5) == 100
    assert loss(pas, WEB, 5) == 0
    lab.network.heal()
    assert loss(pas, GW, 5) == 0


@pytest.mark.fresh_lab
def test_dns_survives_a_lossy_link_by_retrying(pas: Machine, lab: Lab) -> None:
    lab.network.drop("pas-r11p11", 15)
    assert 8 <= loss(pas, GW) <= 55  # 1 - 0.85 * 0.85: about 28% of the round trips lose a packet
    pas.wait_until_succeeds("getent hosts concours", timeout=30)
    lab.network.heal()
    assert loss(pas, GW, 20) == 0
