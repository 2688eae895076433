"""The contestant's side of the lab: what a person at a seat, with a shell, must NOT be able
to do. It is the one statement of that policy; scenarios/test_contestant.py tries every
promise from a seat of each room, as that seat's contestant, and walks every machine as each
kind of unprivileged user the lab has.

A *refusal* is an attempt the contestant makes (a shell command run as them) that prints
``GRANTED`` only if it got what it must not. Each one proves it could have seen a success,
since a probe that cannot succeed passes for the wrong reason: either the same attempt made
by root on the seat is granted (``control``), or the contestant's own output shows the
refusal (``refused``: what the seat or the server answered, alternatives separated by ``|``).

The other promises are lists: the programs that run as root for whoever starts them, the
directories a contestant may write to, and the machines where each kind of user exists (the
secrets walk runs as each of them there, and as ``nobody`` everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass

from stages.inventory import INVENTORY
from stages.policy import SERVICES

GRANTED = "GRANTED"
# The password each contestant types at their seat: their login (stages.common.add_users).
OWN_PASSWORD = "{login}"
SERVERS = ("rhfs0", "gw", "web", "apps")  # where a contestant must not get a shell, as anyone
# What refuses an SSH login there: sshd itself where the machine serves SSH, else nothing listens.
SSH_REFUSED = {server: "Permission denied" if any(s.machine == server and s.name == "ssh" for s in SERVICES)
               else "Connection refused" for server in SERVERS}


@dataclass(frozen=True)
class Refusal:
    """One thing the contestant cannot do, and how they try."""

    name: str
    promise: str
    attempt: str  # a shell command, with {login}: prints GRANTED if it got through
    control: bool = False  # the same attempt by root on the seat is granted
    refused: str = ""  # else: what the contestant's output shows of the refusal (texts, |-separated)

    def command(self, login: str) -> str:
        return self.attempt.replace("{login}", login)


def _ssh(target: str, password: str) -> str:
    """An SSH login to ``target`` with ``password`` typed at its prompt (SSH_ASKPASS: no
    terminal needed), no key offered."""
    return (f"a=$(mktemp) && printf '#!/bin/sh\\necho %s\\n' '{password}' > $a && chmod 700 $a && "
            f"SSH_ASKPASS=$a SSH_ASKPASS_REQUIRE=force DISPLAY=: setsid -w ssh -o PubkeyAuthentication=no "
            "-o PreferredAuthentications=password,keyboard-interactive -o NumberOfPasswordPrompts=1 "
            "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 "
            f"{target} true </dev/null && echo {GRANTED}; rm -f $a")


REFUSALS = (
    Refusal("root-by-su", "cannot become root with su (root's password is not empty)",
            f"su -c 'id -u' root </dev/null | grep -qx 0 && echo {GRANTED}", control=True),
    Refusal("homes-key", "cannot read the key that mounts homes (it is root on rhfs0)",
            f"cat /etc/harness/homes_key >/dev/null && echo {GRANTED}", control=True),
    Refusal("root-on-rhfs0-by-homes-key", "cannot log into rhfs0 as root with the seat's homes key",
            "ssh -i /etc/harness/homes_key -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=5 "
            f"-o UserKnownHostsFile=/dev/null root@rhfs0 true </dev/null && echo {GRANTED}", control=True),
    Refusal("network-reload", "cannot make networkd reload the seat's network configuration",
            f"networkctl reload && echo {GRANTED}", control=True),
    Refusal("address", "cannot add an address to the seat's interfaces",
            f"ip address add 127.0.0.99/32 dev lo && echo {GRANTED}; ip address del 127.0.0.99/32 dev lo",
            control=True),
    *(Refusal(f"ssh-{server}-as-self", f"cannot log into {server} with their own login and password",
              _ssh(f"{{login}}@{server}", OWN_PASSWORD), refused=SSH_REFUSED[server])
      for server in SERVERS),
    *(Refusal(f"ssh-{server}-as-root", f"cannot log into {server} as root with an empty password",
              _ssh(f"root@{server}", ""), refused=SSH_REFUSED[server])
      for server in SERVERS),
)

# Programs that run with root's powers for whoever starts them (set-user-id root, or file
# capabilities), as Debian ships them on a seat: changing one's own password and shell,
# mounting what fstab allows, sshfs's fusermount3, polkit's authentication helper, ping's raw
# socket. Anything more is a way to root that nobody reviewed.
ROOT_PROGRAMS = frozenset({
    "/usr/bin/chfn", "/usr/bin/chsh", "/usr/bin/fusermount3", "/usr/bin/gpasswd", "/usr/bin/mount",
    "/usr/bin/newgrp", "/usr/bin/passwd", "/usr/bin/ping", "/usr/bin/su", "/usr/bin/umount",
    "/usr/lib/openssh/ssh-keysign", "/usr/lib/polkit-1/polkit-agent-helper-1",
})
# Where a contestant may write on a seat's root filesystem: no file or directory of the shared
# tree (the system, its configuration: the seat's network's too). Their home is rhfs0's: once a
# login mounted it (it stays mounted after the logout), it is theirs to write.
WRITABLE = frozenset({"/tmp", "/var/tmp"})


def writable(login: str) -> frozenset[str]:
    """Where contestant ``login`` may write on a seat: `WRITABLE`, and their home's mount point."""
    return WRITABLE | {f"/home/{login}"}

# Where the inventory's users exist: the seats (the rfs tree) and the home server.
USERS_ON = frozenset({*INVENTORY.seats(), "rhfs0"})


def unprivileged(machine: str) -> tuple[str, ...]:
    """The users the secrets walk runs as on ``machine``: ``nobody``, and one user of each
    kind the inventory has where its users exist."""
    kinds: dict[str, str] = {}
    if machine in USERS_ON:
        for user in INVENTORY.users.values():
            kinds.setdefault(user.kind, user.login)
    return ("nobody", *kinds.values())


def contestant(seat: str) -> str:
    """The login of the contestant whose seat ``seat`` is."""
    return INVENTORY.room_of(seat).user_of(seat)
