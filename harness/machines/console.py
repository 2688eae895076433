"""A machine's console: everything it prints goes to a log, and a pexpect session can attach.

systemd-nspawn runs with ``--console=interactive`` on a pseudo-terminal that the harness
owns. A reader thread drains that terminal at all times, so the machine never blocks on
a full console buffer, and tees it to the console log and to an attached session, if any.
A session is a pexpect object (``expect``, ``sendline``...) that reads the tee and writes
to the terminal.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pexpect
from pexpect import fdpexpect

from harness.core import proc
from harness.core.errors import CheckFailed, HarnessError
from harness.core.wait import retry
from harness.machines import keeper as keeper_script

# Where this harness is imported from: a process it starts (a warmer, a pool's owner) runs the
# same code, whatever its cwd (a worktree's, not the one installed).
HARNESS_ROOT = Path(__file__).resolve().parents[2]
CONSOLE_TIMEOUT = 30.0  # seconds each step of a console dialogue is awaited, unless told
MAX_SHELLS = 4  # shells inside shells a session exits to find login's prompt again


class Terminal(Protocol):
    """A machine's terminal as the console reads it: a pexpect ``spawn``, or a `HandedTerminal`."""

    @property
    def child_fd(self) -> int: ...

    def send(self, s: bytes) -> int: ...


class ConsoleSession(fdpexpect.fdspawn):  # type: ignore[misc]
    """pexpect on a machine's console. Output comes from the tee, input goes to the terminal."""

    def __init__(self, read_fd: int, terminal: Terminal, machine: str, timeout: float) -> None:
        # poll(), not select(): a lab of 250 machines holds descriptors past select()'s 1024
        super().__init__(read_fd, timeout=timeout, encoding="utf-8", codec_errors="replace", use_poll=True)
        self.terminal = terminal
        self.machine = machine
        self._at_prompt = False  # a refused login just left login's own prompt on the console

    def send(self, s: Any) -> int:
        data = s.encode() if isinstance(s, str) else bytes(s)
        self._log(s, "send")
        return int(self.terminal.send(data))

    def wait_for(self, pattern: str, timeout: float | None = None) -> str:
        """Expect regex ``pattern``; on timeout raise `CheckFailed` quoting what the console showed."""
        __tracebackhide__ = True
        try:
            self.expect(pattern, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            seen = (self.before or "")[-600:]
            what = "timed out" if isinstance(exc, pexpect.TIMEOUT) else "console closed"
            raise CheckFailed(f"{self.machine} console: {what} waiting for {pattern!r}; "
                              f"last output:\n{seen}") from None
        return str(self.before)

    def login(self, user: str = "root", password: str | None = None,
              timeout: float = CONSOLE_TIMEOUT) -> None:
        """Log in at the ``login:`` prompt and wait for a shell, whose prompt becomes ``harness# ``."""
        self._type_user(user, timeout)
        if password is not None:
            self.wait_for(r"[Pp]assword: ", timeout)
            self.sendline(password)
        self.wait_for(r"[#$] ", timeout)
        # The quotes keep the echo of this very line from matching the new prompt.
        self.sendline("stty -echo; PS1='harness''# '")
        self.wait_for(r"harness# ", timeout)

    def refuses(self, user: str, password: str, timeout: float = CONSOLE_TIMEOUT) -> str | None:
        """Try to log in as ``user`` with ``password`` (typed if asked for): None if the console
        refused (``Login incorrect``), else what it showed instead: a shell's prompt, as text.
        Either way the console is back at ``login:`` (a shell it gave is exited)."""
        self._type_user(user, timeout)
        if self._either(r"[Pp]assword: ", r"[#$] ", timeout) == 0:
            self.sendline(password)
            if self._either(r"Login incorrect", r"[#$] ", timeout) == 0:
                # login asks again, after its delay; a line sent meanwhile would be a name
                self.wait_for(r"login: ", timeout)
                self._at_prompt = True
                return None
        shown = f"{self.before}{self.after}"[-300:]
        self.sendline("exit")
        return shown

    def to_login(self, timeout: float = CONSOLE_TIMEOUT) -> None:
        """Bring the console back to ``login:``, whatever an earlier session left on it.

        A console outlives its sessions: a test that logged in and never logged out leaves a
        shell there (perhaps a shell inside a shell, after ``su``), one that stopped mid-login
        leaves ``Password:``. Each open shell is exited and a pending password answered
        empty (refused), until login asks for a name; the first prompt may also simply have
        gone by before this session attached, which an empty line brings back.
        """
        self.sendline("")
        for _ in range(MAX_SHELLS + 2):
            seen = self._which((r"login: ", r"[Pp]assword: ", r"[#$] "), timeout)
            if seen == 0:
                self._at_prompt = True
                return
            # a password asked for is answered empty (refused); a shell is exited: what comes
            # next is login's prompt, or an outer shell's
            self.sendline("" if seen == 1 else "exit")
        raise CheckFailed(f"{self.machine} console: still at a shell after exiting {MAX_SHELLS}; "
                          f"last output:\n{(self.before or '')[-600:]}")

    def _which(self, patterns: tuple[str, ...], timeout: float) -> int:
        """The index of the regex of ``patterns`` the console shows first; `CheckFailed` if none."""
        try:
            return int(self.expect(list(patterns), timeout=timeout))
        except (pexpect.TIMEOUT, pexpect.EOF):
            raise CheckFailed(f"{self.machine} console: none of {', '.join(map(repr, patterns))} "
                              f"within {timeout:.0f}s; last output:\n{(self.before or '')[-600:]}") from None

    def _either(self, first: str, second: str, timeout: float) -> int:
        """0 if regex ``first`` comes before ``second``, else 1; `CheckFailed` if neither does."""
        return self._which((first, second), timeout)

    def _type_user(self, user: str, timeout: float) -> None:
        """Type ``user`` at the ``login:`` prompt, and return.

        agetty discards pending input ~100 ms *after* printing its prompt, so a name typed at
        once can vanish. The name counts as typed only once agetty has echoed it back.
        """
        if not self._at_prompt:
            self.to_login(timeout)
        self._at_prompt = False

        def typed(last_try: bool) -> bool:
            self.send(user)
            try:
                self.expect_exact(user, timeout=1)
            except pexpect.TIMEOUT:
                return False
            return True

        retry(typed, timeout, f"{self.machine} console to echo the user name")
        self.sendline("")

    def shell(self, command: str, timeout: float = CONSOLE_TIMEOUT) -> str:
        """Run ``command`` at the logged-in shell and return its output."""
        self.sendline(command)
        return self.wait_for(r"harness# ", timeout).replace("\r\n", "\n").strip()


class ConsoleTap:
    """Drains a machine's terminal into ``log`` and into attached sessions."""

    def __init__(self, terminal: Terminal, log: Path, machine: str) -> None:
        self.terminal = terminal
        self.log = log
        self.machine = machine
        self._sinks: list[int] = []
        self._lock = threading.Lock()
        self._wake_read, self._wake = os.pipe()  # join() writes here: the reader stops at once
        self._thread = threading.Thread(target=self._drain, name=f"console-{machine}", daemon=True)

    def start(self) -> None:
        """Start draining (call once, right after the terminal's process started)."""
        self._thread.start()

    def _drain(self) -> None:
        # Raw reads on the terminal's fd: pexpect's own reads would waitpid() the child
        # from this thread, racing the owner's isalive()/wait().
        fd = self.terminal.child_fd
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        poller.register(self._wake_read, select.POLLIN)
        try:
            with open(self.log, "ab") as out:
                while True:
                    ready = {polled for polled, _ in poller.poll()}
                    if fd in ready:  # read even once woken: the last lines a machine printed
                        try:
                            data = os.read(fd, 65536)
                        except (OSError, ValueError):  # EIO: nspawn exited and the terminal hung up
                            break
                        if not data:
                            break
                        out.write(data)
                        out.flush()
                        with self._lock:
                            for sink in self._sinks:
                                with contextlib.suppress(OSError):
                                    os.write(sink, data)
                    if self._wake_read in ready:
                        break
        finally:
            os.close(self._wake_read)
            with self._lock:
                for sink in self._sinks:
                    with contextlib.suppress(OSError):
                        os.close(sink)
                self._sinks.clear()

    def join(self, timeout: float) -> None:
        """Stop the reader (the machine's process is gone, or a keeper takes the terminal
        over), and wait for it: it is woken, not polled, so this takes no time."""
        if self._wake >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake, b"x")
            os.close(self._wake)
            self._wake = -1
        if self._thread.ident is None:  # never started: nobody else closes its end
            os.close(self._wake_read)
        elif self._thread.is_alive():
            self._thread.join(timeout)

    def tail(self, chars: int = 2000) -> str:
        """The last ``chars`` characters the machine printed on its console."""
        try:
            return self.log.read_bytes()[-chars:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    @contextlib.contextmanager
    def session(self, timeout: float) -> Iterator[ConsoleSession]:
        """Attach a pexpect session that sees everything printed from now on."""
        read_fd, write_fd = os.pipe()
        with self._lock:
            self._sinks.append(write_fd)
        session = ConsoleSession(read_fd, self.terminal, self.machine, timeout)
        try:
            yield session
        finally:
            with self._lock:
                if write_fd in self._sinks:
                    self._sinks.remove(write_fd)
                    os.close(write_fd)
            os.close(read_fd)


class HandedTerminal:
    """A machine's terminal handed back by its keeper (`receive`): the pty master ``child_fd``
    of a systemd-nspawn process ``pid`` that is not this process's child, watched through a
    pidfd (no ``waitpid``: only its parent, or init, reaps it). What `Machine` asks of a
    pexpect ``spawn``: ``pid``, ``child_fd``, ``isalive``, ``kill``, ``send``, ``close``."""

    exitstatus = None  # not our child: its status is its parent's to read

    def __init__(self, pid: int, child_fd: int) -> None:
        self.pid = pid
        self.child_fd = child_fd
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            os.close(child_fd)
            raise HarnessError(f"systemd-nspawn {pid} is gone: nothing to adopt") from None
        self.closed = False

    def isalive(self) -> bool:
        return not self.closed and not proc.readable(self._pidfd, 0)

    def kill(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, sig)

    def send(self, data: bytes) -> int:
        return os.write(self.child_fd, data)

    def close(self) -> None:
        """Close the terminal and the pidfd (once the machine is stopped, or handed on)."""
        if not self.closed:
            self.closed = True
            os.close(self.child_fd)
            os.close(self._pidfd)


def receive(sock: Path, machine: str, timeout: float = 10.0) -> int:
    """The pty master of ``machine``, received from its keeper listening on ``sock``
    (`harness.machines.keeper`), which then exits: the terminal is this process's to drain from now on."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(str(sock))
            _, fds, _, _ = socket.recv_fds(conn, 16, 1)
        except OSError as exc:
            raise HarnessError(f"machine {machine}: no console handed over by its keeper at {sock}: "
                               f"{exc}") from None
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise HarnessError(f"machine {machine}: its keeper at {sock} sent {len(fds)} descriptors, not 1")
        with contextlib.suppress(OSError):
            conn.sendall(b"k")  # the keeper may exit now
        return fds[0]


def start_keeper(terminal: int, log: Path, sock: Path | None = None) -> int:
    """Start a keeper (`harness.machines.keeper`) of the terminal whose pty master is
    ``terminal``, logging to ``log`` and, with ``sock``, listening there to hand the terminal
    back; its pid."""
    listen: list[str] = []
    with contextlib.ExitStack() as ours:  # the listening socket is the keeper's once started
        if sock is not None:
            sock.unlink(missing_ok=True)
            listener = ours.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            listener.bind(str(sock))  # listening before the caller goes on: no race
            listener.listen(1)
            listen = ["--listen-fd", str(listener.fileno())]
        # stdlib alone, no site: a keeper per machine costs a bare interpreter (20 ms of CPU, not 70)
        keeper = subprocess.Popen([sys.executable, "-I", "-S", keeper_script.__file__, str(log), *listen],
                                  stdin=terminal, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True, pass_fds=[int(listen[1])] if listen else [],
                                  cwd="/", env=proc.host_env())
    return keeper.pid
