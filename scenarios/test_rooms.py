"""Contest rooms: every seat of every room, checked at once, as its users and the LAN see it.

Each test takes ``room`` (it runs once per room of the inventory) or ``rooms`` (all of
them together), and checks every seat with `harness.machines.fleet.on_each`: a failure names every
seat that failed and how, not the first only. ``pytest --room-size=N -k room`` runs them
on rooms of N seats.
"""

from __future__ import annotations

import secrets
import time

import allure
import pytest

from harness import Family, Lab, Machine
from harness.machines.console import CONSOLE_TIMEOUT
from harness.machines.fleet import deadline, on_each, timed_each, wait_all
from harness.model.inventory import Nic
from harness.probes import (
    Answer,
    console_login,
    dig,
    expect,
    kea_leases,
    networkd_lease6,
    no_failed_unit,
    ping,
)
from scenarios.conftest import (
    FAMILIES,
    address,
    by_family,
    gw_address,
    lease,
    seen_by_the_internet,
    source_seen_outside,
)
from stages.inventory import INVENTORY
from stages.spec import DYNAMIC

RECORD = {Family.IPV4: "A", Family.IPV6: "AAAA"}
LOGIN_CPU = 1.0  # CPU-seconds a login to a home on rhfs0 may take, both ends: about 0.33 measured
REBOOT_CPU = 2.0  # CPU-seconds a seat's reboot may take: its poweroff and its boot
# A room as a distribution: no seat may take more than ROOM_K times the others' median for
# the same work, and more than ROOM_NOISE seconds (what a busy host adds to a few commands)
ROOM_K, ROOM_NOISE = 4.0, 1.0
LOOKED_UP = ("gw", "rhfs0", "web", "concours", "wiki")


def seat_nic(seat: Machine) -> Nic:
    """The seat's interface, from the inventory."""
    return INVENTORY[seat.name].nics[0]


@by_family
def test_every_seat_holds_its_reservation_and_its_name(room: list[Machine], family: Family) -> None:
    def check(seat: Machine) -> None:
        nic = seat_nic(seat)
        address = str(nic.address_of(family))
        if family is Family.IPV4:
            held = lease(seat, nic.name)  # its HOSTNAME: the name the seat took
            got = (held.get("ADDRESS"), held.get("HOSTNAME"))
            wanted = (address, f"{seat.name}.{DYNAMIC}.{INVENTORY.domain}")
            assert got == wanted, f"expected (its lease's address, its name) {wanted}, has {got}"
        else:
            got6 = networkd_lease6(seat, nic.name).get("ADDRESS")
            assert got6 == address, f"expected the DHCPv6 lease of {address}, holds {got6 or 'none'}"
        uses = seat.addresses(nic.name, family, dynamic=True)
        assert uses == [address], f"expected to use {address}, uses {uses}"

    on_each(room, check, what=f"each seat's {family} DHCP lease")


@by_family
def test_every_seat_and_gw_reach_each_other_with_no_failed_unit(room: list[Machine], gw: Machine,
                                                                family: Family) -> None:
    def check(seat: Machine) -> None:
        for source, target in ((seat, gw_address(family)), (gw, str(seat_nic(seat).address_of(family)))):
            failed = ping(source, target)
            assert failed is None, f"{source.name} pinged {target}: no answer ({failed})"
        no_failed_unit(seat)

    on_each(room, check, what=f"each seat and gw pinging each other over {family}, and the seat's units")


@by_family
def test_every_seat_is_resolved_forward_and_reverse(room: list[Machine], web: Machine,
                                                    family: Family) -> None:
    dns, kind = gw_address(family), RECORD[family]

    def check(seat: Machine) -> None:
        address = str(seat_nic(seat).address_of(family))
        fqdn = f"{seat.name}.{INVENTORY.domain}"
        expect(dig(web, fqdn, kind, server=dns), Answer("NOERROR", [address]),
               f"web asked gw ({dns}) for {fqdn} {kind}")
        expect(dig(web, "-x", address, server=dns), Answer("NOERROR", [f"{fqdn}."]),
               f"web asked gw ({dns}) for the PTR of {address}")

    on_each(room, check, what=f"each seat's {kind} and PTR records, asked from web")


@by_family
def test_every_seat_resolves_the_lan_by_short_name(room: list[Machine], family: Family) -> None:
    web = address("web", family)

    def check(seat: Machine) -> None:
        found = seat.execute(f"getent ahostsv{family.version} concours")[1].split()[:1]
        assert found == [web], f"expected the short name concours to be {web}, got {found or 'nothing'}"

    on_each(room, check, what=f"each seat looking up concours in {family}")


@by_family
def test_every_seat_reaches_the_internet_through_gw(room: list[Machine], lab: Lab, family: Family) -> None:
    def check(seat: Machine) -> None:
        wanted, seen = source_seen_outside(seat.name, family), seen_by_the_internet(seat, lab, family)
        assert seen == wanted, f"the internet saw its {family} request come from {seen}, not {wanted}"

    on_each(room, check, what=f"each seat fetching from the internet over {family}")


def test_the_room_logs_in_at_once_each_to_a_home_of_their_own(room: list[Machine], rhfs: Machine) -> None:
    users = {seat.name: INVENTORY.room_of(seat.name).user_of(seat.name) for seat in room}
    secret = {seat.name: secrets.token_hex(4) for seat in room}
    timeout = deadline(room, LOGIN_CPU, base=CONSOLE_TIMEOUT)

    def log_in(seat: Machine) -> None:
        user = users[seat.name]
        with console_login(seat, user, timeout) as tty:
            tty.shell(f"echo {secret[seat.name]} > ~/mine", timeout)  # the room still logging in
            seen = tty.shell("findmnt -no SOURCE ~; cat ~/mine", timeout).split()
        wanted = [f"root@rhfs0:/home/{user}", secret[seat.name]]
        assert seen == wanted, f"{user} logged in: expected (home, file) {wanted}, saw {seen}"

    on_each(room, log_in, what="every user of the room logging in on their seat at once", threads=len(room))

    def private(seat: Machine) -> None:
        user = users[seat.name]
        owner = rhfs.succeed(f"stat -c '%U %a' /home/{user}").strip()
        assert owner == f"{user} 700", f"on rhfs0, /home/{user} is (owner, mode) {owner}, not {user} 700"
        neighbour = users[room[(room.index(seat) + 1) % len(room)].name]
        if neighbour != user:
            status, out = rhfs.execute(f"runuser -u {neighbour} -- cat /home/{user}/mine 2>&1")
            assert status != 0 and secret[seat.name] not in out, f"{neighbour} read {user}'s file: {out!r}"

    on_each(room, private, what="each home on rhfs0, tried by the next seat's user")


@pytest.mark.fresh_lab
def test_a_boot_storm_loses_no_lease(rooms: dict[str, list[Machine]], gw: Machine, lab: Lab) -> None:
    seats = [seat.name for machines in rooms.values() for seat in machines]
    began = time.monotonic()
    lab.reboot_all(seats)
    back = [lab[name] for name in seats]

    def leased(seat: Machine, left: float) -> None:
        nic = seat_nic(seat)
        for family in nic.families():
            seat.wait_for_address(nic.name, str(nic.address_of(family)), timeout=left)

    wait_all(back, leased, timeout=deadline(back, REBOOT_CPU), what="each seat's lease after the storm")
    took = time.monotonic() - began
    allure.attach(f"{len(back)} seats rebooted at once; every one held its reservation again after "
                  f"{took:.1f} s\n", name="boot storm", attachment_type=allure.attachment_type.TEXT)
    leases = {family: kea_leases(gw, family) for family in FAMILIES}

    def kept(seat: Machine) -> None:
        nic = seat_nic(seat)
        for family in nic.families():
            address = str(nic.address_of(family))
            mine = [row["address"] for row in leases[family] if row.get("hwaddr") == nic.mac]
            assert mine and set(mine) == {address}, \
                f"gw's {family} leases for {nic.mac}: expected only {address}, found {mine or 'none'}"

    on_each(back, kept, what="gw's lease database after the storm")


def test_no_seat_resolves_the_lan_much_slower_than_the_rest_of_its_room(room: list[Machine]) -> None:
    def lookups(seat: Machine) -> None:
        seat.succeed("resolvectl flush-caches")
        for name in LOOKED_UP:
            seat.succeed(f"getent ahosts {name}")

    spread = timed_each(room, lookups, what=f"room {INVENTORY.room_of(room[0].name).name}: "
                                           f"{len(LOOKED_UP)} lookups from an empty cache, per seat")
    spread.check(k=ROOM_K, floor=ROOM_NOISE)
