"""rhfs0, the home server, as its users and an intruder see it: a home and its files are its
user's alone, wherever they are read from, and rhfs0's SSH server lets no one log in as root with
a password."""

from __future__ import annotations

import secrets
import shlex

import pytest

from harness import Family, Machine
from scenarios.conftest import address, by_family
from stages.inventory import INVENTORY
from stages.rhfs import KEY
from stages.spec import logins_at_once


def login(machine: Machine, user: str, command: str) -> tuple[int, str]:
    """Log ``user`` in on ``machine`` (a PAM session: on pas, the login hook mounts their home)
    and run ``command``; its status and output, errors included."""
    result = machine.run(f"su - {user} -c {shlex.quote(command)}")
    return result.status, (result.stdout + result.stderr).strip()


@pytest.mark.fresh_lab
def test_a_home_is_its_users_alone(pas: Machine, rhfs: Machine) -> None:
    secret = f"secret-{secrets.token_hex(4)}"
    status, seen = login(pas, "alice", f"findmnt -no SOURCE ~ && echo {secret} > ~/private.txt && "
                                       "cat ~/private.txt")
    assert status == 0 and seen.split() == ["root@rhfs0:/home/alice", secret], (
        f"alice, logged in on pas, could not write and read back a file in her home from rhfs0: {seen}")
    owner = rhfs.succeed("stat -c '%U %G' /home/alice /home/alice/private.txt").split("\n")[:2]
    assert owner == ["alice alice"] * 2, f"on rhfs0, alice's home and file belong to {owner}, not alice"
    # Her home stays mounted on pas after she leaves: the next user there must not read it.
    status, seen = login(pas, "bob", "ls /home/alice; cat /home/alice/private.txt")
    assert secret not in seen and "Permission denied" in seen, (
        f"bob, logged in on pas after alice, read her home: {seen!r}")
    status, seen = login(rhfs, "bob", "ls /home/alice; cat /home/alice/private.txt")
    assert secret not in seen and "Permission denied" in seen, f"bob read alice's home on rhfs0: {seen!r}"


def ssh_with_password(client: Machine, user: str, password: str, server: str) -> tuple[int, str]:
    """Try to log in to ``server`` as ``user`` with ``password`` (and nothing else) from ``client``."""
    askpass = f"/tmp/askpass-{user}"
    client.succeed(f"printf '#!/bin/sh\\necho %s\\n' {shlex.quote(password)} > {askpass} "
                   f"&& chmod 700 {askpass}")
    result = client.run(f"SSH_ASKPASS={askpass} SSH_ASKPASS_REQUIRE=force ssh -o BatchMode=no "
                        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                        "-o PubkeyAuthentication=no -o PreferredAuthentications=password "
                        f"-o NumberOfPasswordPrompts=1 -o ConnectTimeout=5 {user}@{server} "
                        "'echo logged in as $(id -un)' < /dev/null", timeout=30)
    return result.status, (result.stdout + result.stderr).strip()


@pytest.mark.fresh_lab
def test_sshd_refuses_root_password_logins(pas: Machine, rhfs: Machine) -> None:
    rhfs.succeed("printf 'root:Root-pw-1\\nalice:Alice-pw-1\\n' | chpasswd")
    status, seen = ssh_with_password(pas, "alice", "Alice-pw-1", "rhfs0")
    assert status == 0 and "logged in as alice" in seen, (
        f"alice could not log in to rhfs0 with her password (so the check below would prove "
        f"nothing): {seen}")
    status, seen = ssh_with_password(pas, "root", "Root-pw-1", "rhfs0")
    assert status != 0 and "Permission denied" in seen, (
        f"rhfs0 let root log in with a password over SSH (from pas); expected a refusal: {seen}")


@by_family
def test_contestant_machines_reach_rhfs0_over_ssh(pas: Machine, rhfs: Machine, family: Family) -> None:
    # The key the login hook mounts homes with; rhfs0 says where the connection came from.
    result = pas.run(f"ssh -{family.version} -i {KEY} -o BatchMode=yes -o StrictHostKeyChecking=no "
                     "-o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 root@rhfs0 'echo $SSH_CLIENT'",
                     timeout=30)
    seen, wanted = result.stdout.split()[:1], address(pas.name, family)
    assert result.status == 0 and seen == [wanted], (
        f"pas asked rhfs0 over {family} SSH: expected rhfs0 to see the connection come from {wanted}, "
        f"exit {result.status}: {(result.stdout + result.stderr).strip()}")


STARTUPS = r"""
ulimit -n $(( {full} + 64 ))
greet() {{  # one connection to rhfs0's sshd, kept open if it greets us: a login not yet authenticated
    exec {{fd}}<>/dev/tcp/rhfs0/22 || return 2
    if read -r -t 5 -u $fd line && [ "${{line#SSH-}}" != "$line" ]; then return 0; fi
    exec {{fd}}<&-; return 1
}}
early=0; held=0; tries=0; past=0
for i in $(seq {start}); do greet && held=$((held + 1)) || early=$((early + 1)); done
while [ $held -lt {full} ] && [ $tries -lt $(( 50 * {full} )) ]; do  # past start, sshd refuses more and more
    tries=$((tries + 1)); greet && held=$((held + 1))
done
for i in $(seq {beyond}); do greet && past=$((past + 1)); done
echo "$early $held $past"
"""


def test_rhfs0_holds_every_login_at_once_and_refuses_past_its_limit(pas: Machine) -> None:
    # From a seat, as many SSH connections at once as the plan says rhfs0 must hold before any
    # is refused (every seat's login, twice over), each greeted by sshd and kept unauthenticated;
    # then more, up to twice that; past it, every new one is refused (MaxStartups start:rate:full).
    start, full = logins_at_once(len(INVENTORY.seats()))
    beyond = 10  # sshd refuses those between start and full at random: ten in a row past full are not luck
    early, held, past = (int(n) for n in pas.succeed(
        "bash -s", input=STARTUPS.format(start=start, full=full, beyond=beyond)).split())
    assert early == 0, f"rhfs0 refused {early} of the first {start} logins at once (the plan: none)"
    assert held == full, f"rhfs0 held {held} unauthenticated logins at once; the plan's limit is {full}"
    assert past == 0, f"rhfs0 greeted {past} of {beyond} logins past its limit of {full} at once"
