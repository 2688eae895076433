"""The LAN on links that misbehave: slow, jittery, lossy and reordering (lab.network.impair).

Each impairment holds both ways on one machine's link, so a round trip through it takes
twice its delay. Its random draws are seeded: the same frames meet the same fates on every
run. Each scenario has a private lab (fresh_lab): an impairment would slow every later test.
"""

from __future__ import annotations

import re
import secrets

import pytest

from harness.machines.lab import Lab
from harness.machines.machine import Machine
from harness.probes import console_login
from scenarios.conftest import FAMILIES, address
from stages.common import wait_for_lease

UPLINK_DELAY = 0.3  # each way, on the internet's link: a trip over the uplink takes 0.6 s
LOCAL_NAMES = ("mdb", "concours", "wiki", "rhfs0", "mdb.prolo", "web.prolo")
# name -> machine, for a seat behind a lossy link: each looked up in each family, three times
NAMED = {"mdb": "gw", "ns": "gw", "udb": "gw", "netboot": "gw", "rhfs0": "rhfs0", "hfs0": "rhfs0",
         "concours": "web", "wiki": "web", "docs": "web", "web.prolo": "web"}
ROUNDS = 3
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
