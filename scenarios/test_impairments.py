"""The LAN on links that misbehave: slow, jittery, lossy and reordering (lab.network.impair).

Each impairment holds both ways on one machine's link, so a round trip through it takes
twice its delay. Its random draws are seeded: the same frames meet the same fates on every
run. Each scenario has a private lab (fresh_lab): an impairment would slow every later test.
"""

from __future__ import annotations

import re
import secrets
import time

import allure
import pytest

from harness.core.errors import CheckFailed
from harness.machines.console import CONSOLE_TIMEOUT
from harness.machines.fleet import deadline, timed_each
from harness.machines.lab import Lab
from harness.machines.machine import Machine
from harness.probes import console_login
from scenarios.conftest import FAMILIES, address
from stages.common import wait_for_lease
from stages.inventory import INVENTORY
from stages.spec import DYNAMIC

UPLINK_DELAY = 0.3  # each way, on the internet's link: a trip over the uplink takes 0.6 s
LOCAL_NAMES = ("mdb", "concours", "wiki", "rhfs0", "mdb.prolo", "web.prolo")
# name -> machine, for a seat behind a lossy link: each looked up in each family, three times
NAMED = {"mdb": "gw", "ns": "gw", "udb": "gw", "netboot": "gw", "rhfs0": "rhfs0", "hfs0": "rhfs0",
         "concours": "web", "wiki": "web", "docs": "web", "web.prolo": "web"}
ROUNDS = 3
STORM_RATE = "10mbit"  # gw's links, both ways: the one way a booting seat reaches its DHCP and DNS
# CPU-seconds a seat may take to boot (poweroff included) and then log a user in with a home
# from rhfs0, both ends: as scenarios/test_rooms.py allows each (2.0 and 1.0)
STORM_CPU = 3.0
_TOOK = re.compile(r"acquired via protocol DNS in ([\d.]+)(us|ms|s)\b")
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def lookup_time(machine: Machine, name: str) -> float:
    """Seconds ``machine``'s resolver took to get ``name`` from the network, as it reports it
    (resolvectl: its own clock, from the query to the answer, search domains included)."""
    out = machine.succeed(f"resolvectl query --cache=no {name}")
    found = _TOOK.search(out)
    assert found, f"{machine.name}: resolvectl query {name} said nothing of where its answer came from: {out}"
    return float(found.group(1)) * _SECONDS[found.group(2)]


@pytest.mark.fresh_lab
def test_the_uplink_at_300ms_does_not_stall_the_lans_local_names(pas: Machine, gw: Machine,
                                                                  lab: Lab) -> None:
    lab.network.impair("internet", delay=UPLINK_DELAY)
    gw.succeed("rndc flush")  # nothing the uplink answered before stays in gw's cache
    slow = lookup_time(pas, "example.org")
    assert slow >= 2 * UPLINK_DELAY, \
        f"pas resolved example.org in {slow:.3f}s, under one trip over the uplink: is it impaired?"
    for name in LOCAL_NAMES:
        took = lookup_time(pas, name)
        assert took < UPLINK_DELAY, (f"pas took {took:.3f}s to resolve the LAN's {name} while the uplink "
                                     f"takes {2 * UPLINK_DELAY:g}s a trip: the lookup waited on the uplink")


@pytest.mark.fresh_lab
def test_a_login_mounts_its_home_from_rhfs0_over_a_slow_reordering_link(pas: Machine, rhfs: Machine,
                                                                        lab: Lab) -> None:
    # 1.2 s a round trip, and a quarter of the frames overtaking the others
    lab.network.impair(pas.name, delay="600ms", reorder=25, seed=1)
    text = f"written-{secrets.token_hex(4)}"
    with console_login(pas, "alice", timeout=90) as tty:
        mounted = tty.shell("findmnt -no FSTYPE,SOURCE /home/alice")
        assert "fuse.sshfs" in mounted, f"alice logged in on pas over a slow, reordering link; her home is " \
                                        f"not from rhfs0: {mounted!r}"
        tty.shell(f"echo {text} > ~/notes.txt; sync", timeout=90)
    on_rhfs = rhfs.succeed("cat /home/alice/notes.txt").strip()
    assert on_rhfs == text, f"alice wrote {text!r} in her home over the slow link; rhfs0 has {on_rhfs!r}"


@pytest.mark.fresh_lab
def test_a_seat_behind_200ms_jitter_and_1pct_loss_renews_its_leases_and_resolves_the_lan(
        pas: Machine, lab: Lab) -> None:
    lab.network.impair(pas.name, delay="200ms", jitter="50ms", loss=1, seed=2)
    since = pas.succeed("date +%s.%N").strip()
    pas.succeed("networkctl reconfigure lan0")  # DHCPv4 and DHCPv6 from the start, over the link
    wait_for_lease(pas, "lan0", since, timeout=60)
    for _ in range(ROUNDS):  # each round from an empty cache: every lookup crosses the link
        pas.succeed("resolvectl flush-caches")
        for name, machine in NAMED.items():
            for family in FAMILIES:
                got = pas.execute(f"getent ahostsv{family.version} {name}")[1].split()[:1]
                wanted = address(machine, family)
                assert got == [wanted], (f"pas, behind 200 ms ±50 ms and 1% loss, resolved {name} in "
                                         f"{family} to {got or 'nothing'}, not {wanted}")


def counters(machine: Machine, ifname: str) -> tuple[int, int]:
    """Bytes ``machine`` has received and sent on ``ifname``, as its kernel counts them."""
    for line in machine.succeed("cat /proc/net/dev").splitlines():
        name, _, figures = line.partition(":")
        if name.strip() == ifname:
            fields = figures.split()
            return int(fields[0]), int(fields[8])
    raise AssertionError(f"{machine.name} has no interface {ifname} in /proc/net/dev")


@pytest.mark.fresh_lab
def test_a_boot_storm_through_10mbit_to_gw_gives_every_seat_its_lease_name_and_login_in_time(
        rooms: dict[str, list[Machine]], gw: Machine, lab: Lab) -> None:
    """Every seat of every room reboots at once with gw's links held to 10 Mbit/s, and each
    has its reserved addresses, the name DHCP gives it and a login with its home from rhfs0
    within the rooms' deadline (one for all, sized by `harness.machines.fleet.deadline`).

    A seat boots its root from the rooms' shared tree on the host's disk, not over the
    network (docs/lab.md: this kernel has no NFS, nbd or 9p), and a home comes from rhfs0
    over the LAN: what a booting seat sends through gw's link is its DHCPv4, DHCPv6, router
    solicitations and DNS (rhfs0's name, at login). gw's counters say how much that was: a few
    kB a seat (bench/README.md), which 10 Mbit/s carries in milliseconds. The limit holds the
    storm's path as a slow uplink to gw would; it cannot bind on this lab's boot, whose root
    never crosses the network."""
    nic = INVENTORY["gw"].nic("lan").name
    limit = lab.network.impair("gw", rate=STORM_RATE)
    before = counters(gw, nic)
    seats = [seat.name for machines in rooms.values() for seat in machines]
    lab.reboot_all(seats)
    back = [lab[name] for name in seats]
    timeout = deadline(back, STORM_CPU, base=CONSOLE_TIMEOUT)
    end = time.monotonic() + timeout

    def ready(seat: Machine) -> None:
        def left() -> float:
            return max(end - time.monotonic(), 0.1)

        own = INVENTORY[seat.name].nics[0]
        for family in own.families():
            seat.wait_for_address(own.name, str(own.address_of(family)), timeout=left())
        name = f"{seat.name}.{DYNAMIC}.{INVENTORY.domain}"
        try:
            seat.wait_until_succeeds(f"test \"$(hostnamectl --transient)\" = {name}", timeout=left())
        except CheckFailed:
            seen = seat.succeed("hostnamectl --transient").strip()
            raise AssertionError(f"{seat.name} is named {seen} after the storm, not {name} by DHCP") from None
        user = INVENTORY.room_of(seat.name).user_of(seat.name)
        with console_login(seat, user, left()) as tty:
            home = tty.shell("findmnt -no SOURCE ~", left()).strip()
        assert home == f"root@rhfs0:/home/{user}", f"{user} logged in after the storm: home from {home!r}"

    storm = timed_each(back, ready, threads=len(back),
                       what=f"{len(back)} seats rebooted at once, gw at {STORM_RATE}: lease, name, login "
                            f"(one deadline of {timeout:.0f} s)")
    after = counters(gw, nic)
    allure.attach(f"{storm.table()}\ngw's {nic} during the storm: {(after[0] - before[0]) / 1e3:.1f} kB in, "
                  f"{(after[1] - before[1]) / 1e3:.1f} kB out; gw's links: {limit.describe()}\n",
                  name="boot storm through gw", attachment_type=allure.attachment_type.TEXT)
    assert after[0] > before[0], f"gw's {nic} received nothing while {len(back)} seats booted: did they?"
