"""Contest rooms: every seat of every room, checked at once, as its users and the LAN see it.

Each test takes ``room`` (it runs once per room of the inventory) or ``rooms`` (all of
them together), and checks every seat with `harness.fleet.on_each`: a failure names every
seat that failed and how, not the first only. ``pytest --room-size=N -k room`` runs them
on rooms of N seats.
"""

from __future__ import annotations

import secrets
import time

import allure
import pytest

from harness.fleet import on_each, wait_all
from harness.lab import Lab
from harness.machine import DEFAULT_WAIT_TIMEOUT, Machine
from scenarios.conftest import Answer, console_login, dig, expect, lease, no_failed_unit, ping
from stages.generate import DYNAMIC, router
from stages.inventory import INVENTORY

GW = router(INVENTORY)
DNS = str(GW.nic("lan").address)
WAN = str(GW.nic("uplink").address)
INTERNET = str(INVENTORY["internet"].nic("uplink").address)


def seat_nic(seat: Machine) -> tuple[str, str, str]:
    """The seat's interface, reserved address and MAC, from the inventory."""
    nic = INVENTORY[seat.name].nics[0]
    return nic.name, str(nic.address), nic.mac


def test_every_seat_holds_its_reservation_and_its_name(room: list[Machine]) -> None:
    def check(seat: Machine) -> None:
        ifname, address, _ = seat_nic(seat)
        held = lease(seat, ifname)
        got = (held.get("ADDRESS"), held.get("HOSTNAME"))
        wanted = (address, f"{seat.name}.{DYNAMIC}.{INVENTORY.domain}")
        assert got == wanted, f"expected the lease (address, name) {wanted}, holds {got}"
        assert seat.addresses(ifname, dynamic=True) == [address], \
            f"expected to use {address}, uses {seat.addresses(ifname, dynamic=True)}"

    on_each(room, check, what="each seat's DHCP lease")


def test_every_seat_and_gw_reach_each_other_with_no_failed_unit(room: list[Machine], gw: Machine) -> None:
    def check(seat: Machine) -> None:
        _, address, _ = seat_nic(seat)
        for source, target in ((seat, DNS), (gw, address)):
            failed = ping(source, target)
            assert failed is None, f"{source.name} pinged {target}: no answer ({failed})"
        no_failed_unit(seat)

    on_each(room, check, what="each seat and gw pinging each other, and the seat's units")


def test_every_seat_is_resolved_forward_and_reverse(room: list[Machine], web: Machine) -> None:
    def check(seat: Machine) -> None:
        _, address, _ = seat_nic(seat)
        fqdn = f"{seat.name}.{INVENTORY.domain}"
        expect(dig(web, fqdn, "A", server=DNS), Answer("NOERROR", [address]), f"web asked gw for {fqdn} A")
        expect(dig(web, "-x", address, server=DNS), Answer("NOERROR", [f"{fqdn}."]),
               f"web asked gw for the PTR of {address}")

    on_each(room, check, what="each seat's A and PTR records, asked from web")


def test_every_seat_resolves_the_lan_by_short_name(room: list[Machine]) -> None:
    web = str(INVENTORY["web"].nic("lan").address)

    def check(seat: Machine) -> None:
        found = seat.execute("getent hosts concours")[1].split()[:1]
        assert found == [web], f"expected the short name concours to be {web}, got {found or 'nothing'}"

    on_each(room, check, what="each seat looking up concours")


def test_every_seat_reaches_the_internet_through_gw_s_nat(room: list[Machine], lab: Lab) -> None:
    marks = {seat.name: f"{seat.name}-{secrets.token_hex(3)}" for seat in room}

    def fetch(seat: Machine) -> None:
        status = seat.execute(f"curl -s --max-time 5 -o /dev/null -w '%{{http_code}}' "
                              f"'http://{INTERNET}/generate_204?{marks[seat.name]}'")[1]
        assert status == "204", f"the internet did not answer (HTTP {status or 'none'})"

    on_each(room, fetch, what="each seat fetching from the internet")
    log = lab["internet"].succeed("cat /var/log/nginx/clients.log").splitlines()

    def seen_from(seat: Machine) -> None:
        sources = [line.split()[0] for line in log if marks[seat.name] in line]
        assert sources == [WAN], f"the internet saw its request come from {sources}, not gw's {WAN}"

    on_each(room, seen_from, what="the internet's view of each seat's request")


def test_the_room_logs_in_at_once_each_to_a_home_of_their_own(room: list[Machine], rhfs: Machine) -> None:
    users = {seat.name: INVENTORY.room_of(seat.name).user_of(seat.name) for seat in room}
    secret = {seat.name: secrets.token_hex(4) for seat in room}

    def log_in(seat: Machine) -> None:
        user = users[seat.name]
        with console_login(seat, user) as tty:
            tty.shell(f"echo {secret[seat.name]} > ~/mine")
            seen = tty.shell("findmnt -no SOURCE ~; cat ~/mine").split()
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
        ifname, address, _ = seat_nic(seat)
        seat.wait_for_address(ifname, address, timeout=left)

    wait_all(back, leased, timeout=DEFAULT_WAIT_TIMEOUT + len(back), what="each seat's lease after the storm")
    took = time.monotonic() - began
    allure.attach(f"{len(back)} seats rebooted at once; every one held its reservation again after "
                  f"{took:.1f} s\n", name="boot storm", attachment_type=allure.attachment_type.TEXT)
    leases = gw.succeed("cat /var/lib/kea/kea-leases4.csv").splitlines()

    def kept(seat: Machine) -> None:
        _, address, mac = seat_nic(seat)
        mine = [line.split(",")[0] for line in leases if f",{mac}," in line]
        assert mine and set(mine) == {address}, \
            f"gw's leases for {mac}: expected only {address}, found {mine or 'none'}"

    on_each(back, kept, what="gw's lease database after the storm")
