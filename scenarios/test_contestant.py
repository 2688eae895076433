"""The contestant's side (stages/contestant.py), promise by promise, from a seat of each room
as that seat's contestant: what they must not be able to do, tried.

The contestant's shell here is a process with their uid, gid and groups on their seat
(`harness.probes.leaks.as_user`); the console is their login prompt. Every machine is also walked
as each kind of unprivileged user it has, for a secret one could read.
"""

from __future__ import annotations

import pytest

from harness import Machine
from harness.probes import console_login
from harness.probes.leaks import as_user, readable_secrets, root_programs, writable_paths
from scenarios.conftest import one_seat_for_all
from stages.contestant import (
    GRANTED,
    REFUSALS,
    ROOT_PROGRAMS,
    Refusal,
    contestant,
    unprivileged,
    writable,
)
from stages.inventory import INVENTORY


def _seat(room: list[Machine]) -> tuple[Machine, str]:
    """The room's first seat, and its contestant."""
    return room[0], contestant(room[0].name)


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.name for r in REFUSALS])
def test_a_contestant_cannot(room: list[Machine], refusal: Refusal) -> None:
    seat, login = _seat(room)
    if refusal.control:  # the probe can see a success: root's same attempt is granted
        out = seat.execute(f"{{ {refusal.command(login)}; }} 2>&1")[1]
        assert GRANTED in out.split(), (
            f"{seat.name}: root's own attempt ({refusal.name}) was not granted either, so this "
            f"probe proves nothing; the lab broke what it relies on: {out.strip()[-400:]}")
    out = seat.execute(as_user(login, refusal.command(login)) + " 2>&1")[1]
    assert GRANTED not in out.split(), (
        f"{login} on {seat.name} was granted what the policy refuses ({refusal.name}: "
        f"{refusal.promise}): {out.strip()[-400:]}")
    if refusal.refused:
        assert any(word in out for word in refusal.refused.split("|")), (
            f"{login} on {seat.name} tried ({refusal.name}) and was not refused as expected "
            f"({refusal.refused}): {out.strip()[-400:]}")


def test_a_contestant_cannot_log_in_as_root_at_the_console(room: list[Machine]) -> None:
    seat, login = _seat(room)
    with seat.console() as tty:
        for password in ("", login):  # an empty root password, or one they know: their own
            shown = tty.refuses("root", password)
            assert shown is None, f"{seat.name}'s console let root in with password {password!r}: {shown}"


@pytest.mark.fresh_lab  # another user's login mounts their home on the seat
def test_a_contestant_cannot_read_another_users_home_on_the_seat(room: list[Machine]) -> None:
    seat, login = _seat(room)
    other = next(u for u in INVENTORY.users if u != login)
    listing = f"ls /home/{other} >/dev/null && echo {GRANTED}"
    with console_login(seat, other) as tty:
        tty.shell("touch ~/mine")
        out = seat.execute(as_user(other, listing) + " 2>&1")[1]
        assert GRANTED in out.split(), f"{other} logged in on {seat.name}, cannot list their home: {out}"
        out = seat.execute(as_user(login, listing) + " 2>&1")[1]
        assert GRANTED not in out.split(), f"{login} on {seat.name} lists {other}'s home: {out.strip()}"


def _beyond(found: list[str], allowed: frozenset[str], control: str, seat: str, what: str) -> list[str]:
    """What of ``found`` (the walk's findings on ``seat``) the policy does not allow; the walk
    must have found ``control``, which is there on every seat, or it proves nothing."""
    assert control in found, f"{seat}: the search for {what} missed {control}: {found}"
    return sorted(set(found) - allowed)


def test_only_the_reviewed_programs_run_as_root_for_a_contestant(room: list[Machine]) -> None:
    seat, login = _seat(room)
    extra = _beyond(root_programs(seat, login), ROOT_PROGRAMS, "/usr/bin/su", seat.name, "root's programs")
    assert not extra, f"{login} on {seat.name} can run as root (set-user-id or file capabilities): {extra}"


def test_a_contestant_writes_nowhere_in_the_shared_tree(room: list[Machine]) -> None:
    seat, login = _seat(room)
    # whether or not an earlier test's login left the home mounted (the order of tests varies)
    extra = _beyond(writable_paths(seat, login), writable(login), "/tmp", seat.name, "writable paths")
    assert not extra, f"{login} on {seat.name} can write to the shared tree in {extra}"


MACHINES = [h.name for h in one_seat_for_all(list(INVENTORY.hosts.values()))]


@pytest.mark.parametrize("machine", MACHINES, indirect=True)
def test_no_unprivileged_user_reads_a_secret(machine: Machine) -> None:
    found = [str(s) for user in unprivileged(machine.name) for s in readable_secrets(machine, user)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("machine", ["gw", INVENTORY.seats()[0]], indirect=True)
def test_the_secrets_walk_finds_what_root_can_read(machine: Machine) -> None:
    # the walk's own control: on these machines root reads a TSIG key or a private key
    kinds = {s.kind for s in readable_secrets(machine, "root")}
    assert kinds & {"TSIG secret", "private key"}, f"{machine.name}: root's walk found only {kinds}"
