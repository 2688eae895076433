"""What an unprivileged user of a machine can reach that they should not: secrets they can
read, directories they can write, programs that run as root on their behalf.

A lab is usually checked from the side of the people who run it; the promises that matter
to the people it must resist are about what a user *cannot* do. These probes run as that
user (``setpriv``: their uid, gid and groups, a clean environment, no PAM session) on a
running machine, and report what they found; the scenario decides what is allowed.

>>> as_user("alice", "id -u")
"setpriv --reuid=alice --regid=$(id -g alice) --init-groups --reset-env -- sh -c 'id -u'"
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.machines.machine import Machine

# Where a secret would be left on a Debian machine (not /usr: its documentation quotes sample
# keys; not /proc or /sys: what they show is the kernel's, and readable by design).
SECRET_ROOTS = ("/etc", "/var", "/root", "/home", "/srv", "/opt", "/usr/local", "/run", "/tmp")
# What a secret looks like, each with the name a report gives it. POSIX extended regexes, as
# grep -E takes them; a line that is a comment (#, ;, //) never counts.
SECRETS = {
    "private key": r"-----BEGIN ([A-Z0-9]+ )?PRIVATE KEY-----",
    "password hash": r"^[a-z_][a-z0-9_-]*:\$(1|2[abxy]?|5|6|7|y|gy)\$",
    "TSIG secret": r"secret\"?[[:space:]]*:?[[:space:]]*\"[A-Za-z0-9+/]{16,}={0,2}\"",
    "database password": r"(password[[:space:]]*=[[:space:]]*[^[:space:]\"']|PASSWORD[[:space:]]+')",
}
PROGRAM_ROOTS = ("/usr", "/opt", "/etc", "/srv", "/var")  # where file capabilities are looked for
_COMMENT = re.compile(r"^\s*(#|;|//)")


def as_user(user: str, command: str) -> str:
    """``command`` as a shell command that ``user`` (a login) runs, with their primary group
    and their other groups."""
    login = shlex.quote(user)
    return (f"setpriv --reuid={login} --regid=$(id -g {login}) --init-groups --reset-env -- "
            f"sh -c {shlex.quote(command)}")


@dataclass(frozen=True)
class Secret:
    """One line of one file that ``user`` could read and that looks like ``kind``."""

    machine: str
    user: str
    path: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.machine}: {self.user} can read a {self.kind} in {self.path}:{self.line}"


def readable_secrets(machine: Machine, user: str, roots: Sequence[str] = SECRET_ROOTS) -> list[Secret]:
    """Every line under ``roots`` that ``user`` can read on ``machine`` and that looks like
    one of `SECRETS` (comments aside): what a process running as them could take."""
    patterns = " ".join(f"-e {shlex.quote(p)}" for p in SECRETS.values())
    # -s: what they cannot read is what should be; -I: binaries aside; -H -n: file and line
    command = f"grep -rsIHnE {patterns} {' '.join(roots)}; true"
    return secrets_in(machine.name, user, machine.succeed(as_user(user, command)))


def secrets_in(machine: str, user: str, grep: str) -> list[Secret]:
    """The secrets in ``grep``'s ``-H -n`` output (``path:line:text`` lines), comments aside.

    >>> secrets_in("gw", "nobody", '/etc/a.conf:3:key "k" { secret "EgpYMoZ/pxF2BzGefRJBJcO/0d="; };')
    [Secret(machine='gw', user='nobody', path='/etc/a.conf', line=3, kind='TSIG secret')]
    """
    found = []
    for line in grep.splitlines():
        path, number, text = [*line.split(":", 2), "", ""][:3]
        if not number.isdigit() or _COMMENT.match(text):
            continue
        kind = next((k for k, p in SECRETS.items() if re.search(_python(p), text)), "secret")
        found.append(Secret(machine, user, path, int(number), kind))
    return found


def _python(pattern: str) -> str:
    """A `SECRETS` pattern (POSIX classes) as a Python regex."""
    return pattern.replace("[:space:]", r"\s")


def writable_paths(machine: Machine, user: str, top: str = "/") -> list[str]:
    """Every directory and file of ``top``'s filesystem that ``user`` can write to on
    ``machine``, but what lies inside a directory they may write to anyway (a file of theirs
    in /tmp)."""
    find = f"find {shlex.quote(top)} -xdev ! -type l -writable -print -type d -prune 2>/dev/null; true"
    return sorted(machine.succeed(as_user(user, find)).split())


def root_programs(machine: Machine, user: str) -> list[str]:
    """Every program on ``machine``'s root filesystem that ``user`` may run and that runs as
    root whoever starts it: set-user-id root, or carrying file capabilities."""
    setuid = machine.succeed(as_user(user, "find / -xdev -type f -user root -perm -4000 -executable "
                                           "2>/dev/null; true")).split()
    # getcap by its path: a user's PATH lacks /usr/sbin
    capable = machine.succeed(as_user(user, f"/usr/sbin/getcap -r {' '.join(PROGRAM_ROOTS)} 2>/dev/null; "
                                            "true"))
    return sorted({*setuid, *(line.split()[0] for line in capable.splitlines() if line.strip())})
