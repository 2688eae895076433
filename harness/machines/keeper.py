"""The keeper of a detached machine's console: a process of its own that holds the terminal.

A lab left running (``harness up``, a lab kept or left warm) outlives the process that booted
it, and nspawn's pseudo-terminal must stay open and drained meanwhile, or the machine blocks on
a full console. A keeper per machine does that until a process adopting the lab asks for the
terminal back (`harness.machines.console.receive`). It is run as a script, by path, with the
standard library alone (``python -I -S``): one starts per machine, and a bare interpreter costs
about a third of the CPU of one that imports the harness (20 ms against 70).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sys
from pathlib import Path


def keep(log: Path, listener: socket.socket | None = None) -> None:
    """Drain a detached machine's terminal (this process's stdin) into ``log`` until it hangs
    up, or, once a process connects to ``listener``, hand the terminal over to it
    (``SCM_RIGHTS``; `harness.machines.console.receive`) and exit: the adopter drains it from then on.

    Run as ``python -I -S keeper.py LOG [--listen-fd N]`` by
    `harness.machines.console.start_keeper` (for `harness.machines.machine.Machine.detach`): it
    holds the terminal open, so the machine outlives the harness process that booted it.
    """
    poller = select.poll()
    poller.register(0, select.POLLIN | select.POLLPRI)
    if listener is not None:
        poller.register(listener.fileno(), select.POLLIN)
    with open(log, "ab") as out:
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if 0 in ready:
                try:
                    data = os.read(0, 65536)
                except OSError:  # EIO: the machine is gone
                    return
                if not data:
                    return
                out.write(data)
                out.flush()
            if listener is not None and listener.fileno() in ready and _hand_over(listener):
                return


def _hand_over(listener: socket.socket) -> bool:
    """Send the terminal to the process connecting to ``listener``; whether it took it (an
    adopter that went away before acknowledging leaves the terminal to this keeper)."""
    try:
        conn, _ = listener.accept()
    except OSError:
        return False
    with conn:
        conn.settimeout(10)
        try:
            socket.send_fds(conn, [b"t"], [0])
            taken = conn.recv(1) == b"k"
        except OSError:
            return False
    if taken:
        with contextlib.suppress(OSError):
            os.unlink(listener.getsockname())
    return taken


if __name__ == "__main__":
    args = sys.argv[1:]
    keep(Path(args[0]), socket.socket(fileno=int(args[2])) if args[1:2] == ["--listen-fd"] else None)
