"""The verbs of a running machine, all built on one: `run`, a shell command as root, its status
and output.

They are the NixOS test driver's (`succeed`, `fail`, `execute`, `wait_until_succeeds`,
`wait_for_unit`, `wait_for_open_port`) and a few a network lab needs (`addresses`,
`wait_for_address`, `journal`, `journal_cursor`, `wait_for_journal`).
`harness.machines.machine.Machine` runs commands by entering its PID 1's namespaces;
anything else that can run a command in a machine (a machine attached to from a lab's
record, say) gets the same verbs by defining `run`.
"""

from __future__ import annotations

import json
import shlex
from abc import ABC, abstractmethod

from harness.core import proc
from harness.core.errors import CheckFailed
from harness.core.links import Family
from harness.core.log import step
from harness.core.wait import Unrecoverable, retry
from harness.machines.sockets import listening_on

DEFAULT_WAIT_TIMEOUT = 60.0


class Commands(ABC):
    """Verbs on a running machine named ``name``, over its `run`."""

    name: str

    @abstractmethod
    def run(self, command: str, *, timeout: float | None = 120.0,
            input: str | None = None) -> proc.Result:
        """Run shell ``command`` in the machine as root; its status and output (a status never raises)."""

    def execute(self, command: str, timeout: float | None = 120.0) -> tuple[int, str]:
        """(exit status, stdout) of ``command`` in the machine."""
        result = self.run(command, timeout=timeout)
        return result.status, result.stdout

    def succeed(self, command: str, timeout: float | None = 120.0, input: str | None = None) -> str:
        """stdout of ``command`` (fed ``input``); `CheckFailed` showing command, status and stderr
        if it fails."""
        __tracebackhide__ = True
        result = self.run(command, timeout=timeout, input=input)
        if result.status != 0:
            raise CheckFailed(f"{self.name}: command `{command}` failed (exit code {result.status}):"
                              f" {(result.stderr or result.stdout).strip()[-1500:]}")
        return result.stdout

    def fail(self, command: str, timeout: float | None = 120.0) -> str:
        """stdout of ``command``, which must fail; `CheckFailed` if it succeeds."""
        __tracebackhide__ = True
        result = self.run(command, timeout=timeout)
        if result.status == 0:
            raise CheckFailed(f"{self.name}: command `{command}` unexpectedly succeeded:"
                              f" {result.stdout.strip()[-1500:]}")
        return result.stdout

    def wait_until_succeeds(self, command: str, timeout: float = DEFAULT_WAIT_TIMEOUT) -> str:
        """Retry ``command`` until it exits 0; return its stdout. On timeout, show its last result."""
        __tracebackhide__ = True
        last = proc.Result((), -1, "", "")

        def check(last_try: bool) -> bool:
            nonlocal last
            last = self.run(command, timeout=timeout)
            return last.status == 0

        try:
            with step(f"{self.name}: wait until `{command}` succeeds"):
                retry(check, timeout, f"{self.name}: `{command}` to succeed")
        except CheckFailed as exc:
            raise CheckFailed(f"{exc}; last exit code {last.status}: "
                              f"{(last.stderr or last.stdout).strip()[-1000:]}") from None
        return last.stdout

    def wait_for_unit(self, unit: str, timeout: float = DEFAULT_WAIT_TIMEOUT) -> None:
        """Wait until ``unit`` is active; fail at once if it reaches ``failed``, showing its status."""
        __tracebackhide__ = True
        state = ""

        def active(last_try: bool) -> bool:
            nonlocal state
            state = self.run(f"systemctl is-active {shlex.quote(unit)}").stdout.strip()
            if state == "failed":
                raise Unrecoverable(f"{unit} failed:\n{self._status(unit)}")
            return state == "active"

        try:
            with step(f"{self.name}: wait for unit {unit}"):
                retry(active, timeout, f"{self.name}: unit {unit} to be active")
        except CheckFailed as exc:
            if "failed:" in str(exc):
                raise
            raise CheckFailed(f"{exc}; last state {state or 'unknown'}:\n{self._status(unit)}") from None

    def _status(self, unit: str) -> str:
        return self.run(f"systemctl status --no-pager --lines=15 {shlex.quote(unit)}").stdout

    def wait_for_open_port(self, port: int, address: str | None = None, protocol: str = "tcp",
                           timeout: float = DEFAULT_WAIT_TIMEOUT) -> None:
        """Wait until something in the machine listens on ``port`` (``protocol`` tcp or udp),
        on ``address`` if given (a service can be up before it has bound a new address)."""
        __tracebackhide__ = True
        flag = {"tcp": "-t", "udp": "-u"}[protocol]
        where = f"{address}:{port}" if address else f":{port}"
        command = f"ss -Hln {flag} 'sport = :{int(port)}'"
        try:
            with step(f"{self.name}: wait for {protocol.upper()} port {where}"):
                retry(lambda _: listening_on(self.run(command).stdout, port, address), timeout,
                      f"{self.name}: {protocol.upper()} {where} to be listening")
        except CheckFailed as exc:
            listening = self.run(f"ss -Hln {flag}").stdout.strip() or "nothing"
            raise CheckFailed(f"{exc}; listening now: {listening}") from None

    def addresses(self, ifname: str, family: Family | None = None, dynamic: bool = False) -> list[str]:
        """The usable addresses on ``ifname`` (of ``family``, else both): global scope, and for
        IPv6 past duplicate address detection (a tentative address cannot be bound to yet);
        with ``dynamic``, only those leased by DHCP or learnt from router advertisements."""
        flag = f" -{family.version}" if family else ""
        links = json.loads(self.succeed(f"ip -j{flag} addr show dev {shlex.quote(ifname)}"))
        return [a["local"] for link in links for a in link.get("addr_info", [])
                if a.get("scope") == "global" and not a.get("tentative") and not a.get("dadfailed")
                and (not dynamic or a.get("dynamic"))]

    def wait_for_address(self, ifname: str, address: str,
                         timeout: float = DEFAULT_WAIT_TIMEOUT) -> None:
        """Wait until ``ifname`` holds ``address`` (a DHCP lease, a static address being applied),
        usable: an IPv6 address once duplicate address detection is over."""
        __tracebackhide__ = True
        family = Family.of(address)
        try:
            with step(f"{self.name}: wait for {address} on {ifname}"):
                retry(lambda _: address in self.addresses(ifname, family), timeout,
                      f"{self.name}: {address} on {ifname}")
        except CheckFailed as exc:
            held = self.run(f"ip -o -{family.version} addr show dev {shlex.quote(ifname)}").stdout.strip()
            raise CheckFailed(f"{exc}; it holds {held or 'none'}") from None

    def journal(self, since: float | None = None, unit: str | None = None, *, lines: int | None = None,
                timeout: float | None = 120.0) -> str:
        """The machine's journal, from ``since`` (seconds since the epoch) if given, its last
        ``lines`` only if given; `CheckFailed` with journalctl's words if it cannot be read."""
        argv = ["journalctl", "--no-pager", "-o", "short-precise"]
        if since is not None:
            argv.append(f"--since=@{int(since)}")  # rounded down: nothing of that second is lost
        if unit:
            argv.append(f"--unit={unit}")
        if lines is not None:
            argv.append(f"--lines={lines}")
        return self.succeed(shlex.join(argv), timeout=timeout)

    def journal_cursor(self) -> str:
        """Where the machine's journal ends now: `wait_for_journal` ``after`` it sees only what
        is logged later (a daemon restarted says again what it said at boot)."""
        return parse_cursor(self.succeed("journalctl --quiet --lines=0 --show-cursor"))

    def wait_for_journal(self, text: str, unit: str | None = None, after: str | None = None,
                         timeout: float = DEFAULT_WAIT_TIMEOUT) -> None:
        """Wait until a line of the journal (of ``unit``) holds ``text``: past the cursor ``after``
        if given, else of this boot. How to wait for a daemon that says it serves only in its log:
        Kea binds its sockets some milliseconds before it starts to serve, and a request that comes
        in between is never answered, so an open port is not yet a DHCP server."""
        __tracebackhide__ = True
        argv = ["journalctl", "--quiet", "--no-pager", "--output=cat",
                f"--after-cursor={after}" if after else "--boot"]
        if unit:
            argv.append(f"--unit={unit}")
        where = f"{self.name}: `{text}` in the journal" + (f" of {unit}" if unit else "")
        try:
            with step(f"{self.name}: wait for {text!r} in the journal"):
                retry(lambda _: text in self.succeed(shlex.join(argv)), timeout, where)
        except CheckFailed as exc:
            last = self.run(shlex.join([*argv, "--lines=10"])).stdout.strip()
            raise CheckFailed(f"{exc}; its last lines: {last or 'none'}") from None


def parse_cursor(show_cursor: str) -> str:
    """The cursor in ``journalctl --show-cursor``'s output (``-- cursor: s=...``)."""
    for line in show_cursor.splitlines():
        if line.startswith("-- cursor: "):
            return line.removeprefix("-- cursor: ").strip()
    raise CheckFailed(f"journalctl --show-cursor printed no cursor: {show_cursor.strip() or 'nothing'}")
