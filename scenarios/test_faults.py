"""Faults: what the LAN does when the network misbehaves (partitions, packet loss).

Loss is deterministic: every fifth packet each way, counted from when the fault is set, not
a random share. The same packets are lost on every run, so the lookup below always loses
exactly one (the first answer after the pings) and always takes one resend of
systemd-resolved (5 s), where random loss made it take anything from 0 to 17 s.
"""

from __future__ import annotations

import re

import pytest

from harness.lab import Lab
from harness.machine import Machine
from stages.inventory import INVENTORY

GW = str(INVENTORY["gw"].nic("lan").address)
WEB = str(INVENTORY["web"].nic("lan").address)
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
    lab.network.partition(pas.name, "gw")
    got = answered(pas, GW, 5)
    assert got == 0, f"pas partitioned from gw: expected 0 of 5 pings to gw answered, got {got}"
    got = answered(pas, WEB, 5)
    assert got == 5, f"pas partitioned from gw: expected web to answer 5 of 5 pings, got {got}"
    lab.network.heal()
    got = answered(pas, GW, 5)
    assert got == 5, f"pas after the partition healed: expected gw to answer 5 of 5 pings, got {got}"


@pytest.mark.fresh_lab
def test_dns_survives_a_lossy_link_by_retrying(pas: Machine, lab: Lab) -> None:
    pas.succeed("resolvectl flush-caches")  # the lookup below asks the same queries every run
    lab.network.drop(pas.name, every=EVERY)
    got, wanted = answered(pas, GW, PINGS), survivors(PINGS, EVERY)
    assert got == wanted, f"pas losing every {EVERY}th packet each way: expected {wanted} of {PINGS} " \
                          f"pings answered, got {got}"
    pas.wait_until_succeeds("getent hosts concours", timeout=30)
    lab.network.heal()
    got = answered(pas, GW, 20)
    assert got == 20, f"pas after the loss healed: expected gw to answer 20 of 20 pings, got {got}"
