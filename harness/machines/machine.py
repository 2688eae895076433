"""One systemd-nspawn machine: boot, readiness, commands, waits, console, journal, stop.

The host's PID 1 need not be systemd (see `harness.machines.nspawn`): machines run with
``--register=no --keep-unit``, so there is no machined, and commands reach them with
``nsenter`` into the namespaces of the container's PID 1 (the *leader*), a child of the
nspawn process. The verbs are those of the NixOS test driver (`succeed`, `fail`,
`execute`, `wait_for_unit`, `wait_for_open_port`, `wait_until_succeeds`); `host` is a
testinfra Host for everything else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from harness.core import proc
from harness.core.errors import CheckFailed, HarnessError, present
from harness.core.log import step
from harness.core.names import LabName
from harness.core.settings import DEFAULT_BOOT_TIMEOUT
from harness.core.wait import Unrecoverable, retry
from harness.machines import nspawn, records
from harness.machines.commands import Commands
from harness.machines.console import ConsoleSession, ConsoleTap, HandedTerminal, receive, start_keeper
from harness.machines.nspawn import MachineSpec, find_leader

if TYPE_CHECKING:
    import pexpect
    import testinfra.host

GUEST_ENV = {"PATH": proc.PATH, "LANG": "C.UTF-8", "TERM": "dumb", "HOME": "/root",
             "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}


class Machine(Commands):
    """A booted nspawn machine; a context manager (boot on enter, stop on exit).

    >>> with Machine(spec, console_log=Path("gw.console")) as gw:
    ...     gw.wait_ready()
    ...     gw.succeed("hostname")
    'gw'
    """

    def __init__(self, spec: MachineSpec, *, console_log: Path,
                 boot_timeout: float = DEFAULT_BOOT_TIMEOUT) -> None:
        self.spec = spec
        self.name = spec.name
        self.console_log = console_log
        self.boot_timeout = boot_timeout
        self.leader: int | None = None
        self.ready = False
        self._stack = contextlib.ExitStack()
        self._terminal: pexpect.spawn | HandedTerminal | None = None
        self._tap: ConsoleTap | None = None
        self._host: testinfra.host.Host | None = None

    def __repr__(self) -> str:
        return f"<Machine {self.name} leader={self.leader}>"

    # -- lifetime ---------------------------------------------------------------------------------

    def __enter__(self) -> Machine:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Start systemd-nspawn and find the leader; returns as soon as PID 1 exists."""
        self.spawn()
        self.wait_started()

    def spawn(self) -> None:
        """Start systemd-nspawn, without waiting for anything: `wait_started` (or `wait_ready`)
        then finds its PID 1. A lab spawns its machines one after the other, then awaits them
        side by side."""
        if self._terminal is not None:
            raise HarnessError(f"machine {self.name} is already started")
        self.console_log.parent.mkdir(parents=True, exist_ok=True)
        self.console_log.write_bytes(b"")
        try:
            self._terminal = self._stack.enter_context(proc.spawn_tty(
                self.spec.nspawn_argv(), env=proc.host_env(self.spec.env),
                preexec=nspawn.join_cgroup(self.spec.unit, self.spec.nice)))
            self._tap = ConsoleTap(self._terminal, self.console_log, self.name)
            self._tap.start()
        except BaseException:
            self.stop()
            raise

    def wait_started(self, timeout: float | None = None) -> None:
        """Wait until the spawned machine's PID 1 exists (its leader, which commands enter)."""
        if self.leader is not None:
            return
        try:
            retry(self._check_leader, self.boot_timeout if timeout is None else timeout,
                  f"{self.name}: PID 1 to start")
        except CheckFailed as exc:
            console = self.console_tail()
            self.stop()
            raise HarnessError(f"machine {self.name} did not boot: {exc}; console:\n{console}") from None
        except BaseException:
            self.stop()
            raise

    @property
    def running(self) -> bool:
        """Whether the nspawn process is still alive."""
        return self._terminal is not None and bool(self._terminal.isalive())

    def _check_leader(self, last_try: bool) -> bool:
        terminal = present(self._terminal, f"machine {self.name}'s console")
        if not terminal.isalive():
            raise Unrecoverable(f"systemd-nspawn exited (status {terminal.exitstatus})")
        self.leader = find_leader(terminal.pid)
        return self.leader is not None

    def console_tail(self, chars: int = 2000) -> str:
        """The end of what the machine printed on its console (for error messages)."""
        return self._tap.tail(chars) if self._tap else ""

    def wait_ready(self, timeout: float | None = None) -> str:
        """Wait until boot finished (``is-system-running`` = running or degraded); return that state.

        Uses ``systemctl is-system-running --wait`` inside, so the wait is event-driven;
        the retry only covers the instant before PID 1 accepts connections.
        """
        timeout = self.boot_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self.wait_started(timeout)
        state = ""

        def booted(last_try: bool) -> bool:
            nonlocal state
            if not self.running:
                raise Unrecoverable("systemd-nspawn exited")
            left = max(deadline - time.monotonic(), 0.5)
            try:
                result = self.run("systemctl is-system-running --wait", timeout=left)
            except HarnessError as exc:  # the command itself outlived the deadline
                state = str(exc)
                return False
            state = result.stdout.strip() or result.stderr.strip()
            if state in ("stopping", "maintenance"):  # "offline": PID 1 not answering yet
                raise Unrecoverable(f"system state is {state}")
            return state in ("running", "degraded")

        with step(f"{self.name}: boot"):
            try:
                retry(booted, timeout, f"{self.name} to finish booting")
                self.ready = True
            except CheckFailed as exc:
                raise HarnessError(f"machine {self.name} did not boot: {exc} (last state: "
                                   f"{state or 'no answer'}); console:\n{self.console_tail()}") from None
        return state

    def request_stop(self, kill: bool = False) -> None:
        """Start stopping without waiting: an orderly power-off (SIGTERM to nspawn) of a ready
        machine, or with ``kill`` the end of its PID 1. `stop` or `discard` then waits; a lab
        asks all its machines first, so that they stop side by side."""
        if self._terminal is None or not self._terminal.isalive():
            return
        if kill and self.leader:
            proc.kill(self.leader)
        elif self.ready:
            self._terminal.kill(signal.SIGTERM)

    def abort(self) -> None:
        """Kill the machine now, from any thread, without waiting: its PID 1 if it has one,
        else nspawn. A boot waiting on it in another thread then ends at once ("systemd-nspawn
        exited"), and `stop` in the owning thread cleans up as after any death."""
        terminal = self._terminal
        if terminal is None or not terminal.isalive():
            return
        leader = self.leader or find_leader(terminal.pid)
        if leader:
            proc.kill(leader)
        else:
            terminal.kill(signal.SIGKILL)

    def discard(self) -> None:
        """Kill the machine at once (PID 1 first, then nspawn): for a machine whose root is
        about to be deleted, an orderly shutdown would only cost time."""
        self.stop(timeout=0)

    def stop(self, timeout: float = 20.0) -> None:
        """Power off cleanly (nspawn turns SIGTERM into an orderly shutdown), then kill at ``timeout``.

        A machine that never finished booting is killed at once: systemd may not yet
        listen for the shutdown signal, and nothing of it is worth keeping.
        """
        terminal, self._terminal = self._terminal, None
        if terminal is not None and terminal.isalive():
            if self.leader is None:  # spawned, never awaited: its PID 1 may exist all the same
                self.leader = find_leader(terminal.pid)
            grace = timeout if self.ready else 0
            if grace:
                terminal.kill(signal.SIGTERM)
            if not grace or not proc.wait_for_exit(terminal.pid, grace):
                if self.leader:
                    proc.kill(self.leader)  # PID 1 dying takes its whole namespace down
                if not proc.wait_for_exit(terminal.pid, 5):  # nspawn then exits by itself
                    terminal.kill(signal.SIGKILL)
                    proc.wait_for_exit(terminal.pid, 5)
        if self._tap is not None:
            self._tap.join(5)  # before the terminal's fd is closed under the reader
        self._stack.close()
        if terminal is not None:
            nspawn.kill(self.spec.unit)  # whatever outlived nspawn (a PID 1 it never reported)
            nspawn.forget(self.spec.unit, self.spec.root)
        self.leader = None
        self.ready = False
        self._host = None

    @property
    def pid(self) -> int | None:
        """The systemd-nspawn process's pid, while it runs."""
        return self._terminal.pid if self._terminal is not None else None

    def detach(self, console_socket: Path | None = None) -> int:
        """Leave the machine running after this process exits; return the pid keeping its console.

        A keeper process (`harness.machines.keeper`) takes over the terminal and goes on
        logging the console; this object forgets the machine without stopping it. With
        ``console_socket``, the keeper listens there and hands the terminal to the first
        process that connects (`adopt`), then exits.
        """
        terminal = self._terminal
        if terminal is None or not terminal.isalive():
            raise HarnessError(f"machine {self.name} is not running: nothing to keep")
        if self._tap is not None:
            self._tap.join(5)  # our reader lets go of the terminal first
        keeper = start_keeper(terminal.child_fd, self.console_log, console_socket)
        if isinstance(terminal, HandedTerminal):
            terminal.close()
        else:
            # Close our end by hand and mark pexpect's objects closed: their close() and
            # __del__ would otherwise terminate nspawn.
            terminal.ptyproc.fileobj.close()
            terminal.ptyproc.closed = terminal.closed = True
            terminal.ptyproc.fd = terminal.child_fd = -1
        self._stack.pop_all()
        self._terminal = None
        return keeper

    @classmethod
    def adopt(cls, spec: MachineSpec, record: Mapping[str, object], *, console_log: Path,
              boot_timeout: float = DEFAULT_BOOT_TIMEOUT) -> Machine:
        """The running machine that another process detached (`detach` with a console
        socket), taken over by this one: ``record`` holds its systemd-nspawn ``pid``, its
        ``leader`` (PID 1) and its keeper's ``console`` socket. The console is handed back
        and logged to ``console_log`` from now on; nspawn, not this process's child, is
        watched through a pidfd. Everything after (commands, console, `stop`) is as for a
        machine this process booted. `HarnessError` if the machine is not the one recorded."""
        machine = cls(spec, console_log=console_log, boot_timeout=boot_timeout)
        pid, leader = int(str(record["pid"])), int(str(record["leader"]))
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            argv = []
        if f"--machine={spec.unit}".encode() not in argv or find_leader(pid) != leader:
            raise HarnessError(f"machine {spec.name}: systemd-nspawn {pid} with PID 1 {leader} "
                               "is not running any more: nothing to adopt")
        fd = receive(Path(str(record["console"])), spec.name)
        try:
            terminal = HandedTerminal(pid, fd)
        except BaseException:
            os.close(fd)
            raise
        machine._terminal = terminal
        machine._stack.callback(terminal.close)
        machine.leader, machine.ready = leader, True
        console_log.parent.mkdir(parents=True, exist_ok=True)
        machine._tap = ConsoleTap(terminal, console_log, spec.name)
        machine._tap.start()
        return machine

    # -- commands ---------------------------------------------------------------------------------

    def _nsenter(self, argv: Sequence[str]) -> list[str]:
        if self.leader is None or not self.running:
            raise HarnessError(self._not_running())
        return nspawn.enter(self.leader, argv)

    def _not_running(self) -> str:
        """Why commands cannot enter this machine: never started (or stopped by its owner), or
        dead under it, and then how it ended, who destroyed its lab (`records.destroyed_by`)
        and the end of its console."""
        if self._terminal is None:
            return f"machine {self.name} is not running: start it first"
        signalled, status = getattr(self._terminal, "signalstatus", None), self._terminal.exitstatus
        how = f"killed by signal {signalled}" if signalled else \
            f"exit status {status}" if status is not None else "exited"  # an adopted one's is not ours
        unit = LabName.parse(self.spec.unit)
        gone = records.destroyed_by(unit.lab) if unit is not None else None
        return (f"machine {self.name} died under this run (systemd-nspawn: {how})"
                f"{f'; its lab was {gone}' if gone else ''}; console ends:\n{self.console_tail(600)}")

    def run(self, command: str, *, timeout: float | None = 120.0,
            input: str | None = None) -> proc.Result:
        """Run shell ``command`` in the machine as root; its status and output (a status never raises)."""
        return proc.run(self._nsenter(["/bin/sh", "-c", command]), check=False, timeout=timeout,
                        input=input, env=GUEST_ENV)

    @property
    def host(self) -> testinfra.host.Host:
        """A testinfra `Host` on this machine: ``gw.host.service("kea-dhcp4-server").is_running``."""
        if self._host is None:
            from harness.machines.backend import host_of

            self._host = host_of(self)
        return self._host

    @contextlib.contextmanager
    def console(self, timeout: float = 30.0) -> Iterator[ConsoleSession]:
        """A pexpect session on the machine's console, for logins and anything interactive.

        >>> with gw.console() as tty:
        ...     tty.login("root")
        ...     tty.shell("echo $((6*7))")
        '42'
        """
        if self._tap is None or not self.running:
            raise HarnessError(f"machine {self.name} is not running: start it first")
        with self._tap.session(timeout) as session:
            yield session
