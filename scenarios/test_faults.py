"""Faults: what the LAN does when the network misbehaves (partitions, packet loss).

Loss is deterministic: every fifth packet each way (IPv4 and IPv6 alike, neighbour discovery
spared), counted from when the fault is set, not a random share. The same packets are lost on
every run, so the lookup below takes the same resends of systemd-resolved every time, where
random loss made it take anything from 0 to 17 s. A partition and a loss hold for both
families.
"""

from __future__ import annotations

import re

import pytest

from harness import Family, Lab, Machine
from scenarios.conftest import FAMILIES, address, gw_address

GW = gw_address(Family.IPV4)
EVERY = 5
PINGS = 30


def answered(machine: Machine, target: str, count: int) -> int:
    """How many of ``count`` pings from ``machine`` to ``target`` got an answer."""
    out = machine.execute(f"ping -q -n -c {count} -i 0.01 -W 1 {target}")[1]
    found = re.search(r"(\d+) received", out)
    assert found, f"{machine.name}: ping {target} printed no summary: {out}"
    return int(found.group(1))


def survivors(count: int, every: int) -> int:
    """Round trips that survive when each way drops its every-th packet: requests first, then
    the replies to those that passed."""
    passed = count - count // every
    return passed - passed // every


@pytest.mark.fresh_lab
def test_a_partition_cuts_two_machines_apart_and_nothing_else(pas: Machine, web: Machine, lab: Lab) -> None:
    for family in FAMILIES:
        gw, web_address = gw_address(family), address("web", family)
        lab.network.partition(pas.name, "gw")
        got = answered(pas, gw, 5)
        assert got == 0, f"pas partitioned from gw: expected 0 of 5 pings to gw ({gw}) answered, got {got}"
        got = answered(pas, web_address, 5)
        assert got == 5, f"pas partitioned from gw: expected web ({web_address}) to answer 5 of 5 pings, " \
                         f"got {got}"
        lab.network.heal()
        got = answered(pas, gw, 5)
        assert got == 5, f"pas after the partition healed: expected gw ({gw}) to answer 5 of 5 pings, " \
                         f"got {got}"


@pytest.mark.fresh_lab
def test_dns_survives_a_lossy_link_by_retrying(pas: Machine, lab: Lab) -> None:
    pas.succeed("resolvectl flush-caches")  # the lookup below asks the same queries every run
    for family in FAMILIES:  # each family's count from its first packet on
        lab.network.heal()
        lab.network.drop(pas.name, every=EVERY)
        got, wanted = answered(pas, gw_address(family), PINGS), survivors(PINGS, EVERY)
        assert got == wanted, f"pas losing every {EVERY}th packet each way: expected {wanted} of {PINGS} " \
                              f"pings over {family} answered, got {got}"
    # The loss stays: the first answer pas gets next is a dropped one, so the lookup must resend.
    pas.wait_until_succeeds("getent hosts concours", timeout=30)
    lab.network.heal()
    got = answered(pas, GW, 20)
    assert got == 20, f"pas after the loss healed: expected gw to answer 20 of 20 pings, got {got}"
