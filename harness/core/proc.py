"""The one way the harness runs a host process.

`spawn()` takes an argument list (never a shell string) and an explicit environment, and
terminates and reaps the child whatever happens, KeyboardInterrupt included. `run()` is
`spawn()` plus waiting and checking. `spawn_tty()` is the same discipline for a child that
needs a terminal (a machine's console). Only the testinfra backend accepts shell strings,
and it hands them to ``sh -c`` inside a machine.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pexpect

from harness.core.errors import CommandFailed, HarnessError

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Proxies are the only part of the caller's environment a host command may need
# (debootstrap and apt download through them); everything else is set explicitly.
_PASSED_THROUGH = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def host_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every host command gets: a fixed PATH and locale, proxies, ``extra``."""
    env = {"PATH": PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb"}
    # Each name read on its own: iterating os.environ races with a thread that changes it
    # (pytest sets and unsets PYTEST_CURRENT_TEST while a spare lab is torn down).
    env.update({k: v for k in _PASSED_THROUGH if (v := os.environ.get(k)) is not None})
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Result:
    """What a finished command left: its argv, exit status and decoded output."""

    argv: tuple[str, ...]
    status: int
    stdout: str
    stderr: str


def describe_failure(argv: Sequence[str], status: int, stderr: str, *, lines: int = 10) -> str:
    """``command `X` failed (exit code N): <last lines of stderr>``, copy-pasteable."""
    tail = "\n".join(stderr.strip().splitlines()[-lines:])
    message = f"command `{shlex.join(argv)}` failed (exit code {status})"
    return f"{message}: {tail}" if tail else message


def _stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    stderr: int | None = subprocess.PIPE,
    grace: float = 5.0,
    preexec: Callable[[], None] | None = None,
    cwd: Path | None = None,
    own_group: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` (in directory ``cwd``) and yield its Popen; on leaving, stop it (SIGTERM,
    then SIGKILL after ``grace``).

    ``preexec`` runs in the child before it execs (e.g. to join a cgroup). With ``own_group``
    the child gets a process group of its own: a terminal's Ctrl-C reaches only the caller,
    which then stops the child (once) as it sees fit."""
    try:
        proc = subprocess.Popen(
            list(argv), env=dict(env) if env is not None else host_env(),
            stdin=stdin, stdout=stdout, stderr=stderr, preexec_fn=preexec, cwd=cwd,
            process_group=0 if own_group else None,
        )
    except FileNotFoundError as exc:
        raise HarnessError(f"cannot run `{shlex.join(argv)}`: {argv[0]} is not installed "
                           "(run `harness setup-host` to install the host packages)") from exc
    try:
        yield proc
    finally:
        _stop(proc, grace)


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: bytes | str | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = True,
    preexec: Callable[[], None] | None = None,
) -> Result:
    """Run ``argv`` to completion; raise `CommandFailed` on a non-zero exit when ``check``.

    ``capture=False`` lets the output through to the caller's terminal (long builds).
    """
    data = input.encode() if isinstance(input, str) else input
    pipe = subprocess.PIPE if capture else None
    with spawn(argv, env=env, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
               stdout=pipe, stderr=pipe, preexec=preexec) as proc:
        try:
            out, err = proc.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(f"command `{shlex.join(argv)}` did not finish within {timeout}s") from exc
    result = Result(tuple(argv), proc.returncode,
                    (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace"))
    if check and result.status != 0:
        raise CommandFailed(describe_failure(argv, result.status, result.stderr or result.stdout),
                            status=result.status, stdout=result.stdout, stderr=result.stderr)
    return result


APT_PACKAGE = {"systemd-nspawn": "systemd-container", "nsenter": "util-linux", "nft": "nftables",
               "tcpdump": "tcpdump", "debootstrap": "debootstrap", "btrfs": "btrfs-progs"}


def require_tools(tools: Sequence[str]) -> None:
    """Raise `HarnessError` naming every tool of ``tools`` that is not on PATH, and its package."""
    missing = [t for t in tools if shutil.which(t, path=PATH) is None]
    if missing:
        packages = " ".join(dict.fromkeys(APT_PACKAGE.get(t, t) for t in missing))
        raise HarnessError(f"missing host tools: {', '.join(missing)}: install them with "
                           f"`apt-get install -y {packages}` (or `harness setup-host`)")


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Block until process ``pid`` exits (without reaping it) or ``timeout`` passes.

    Event-driven through a pidfd: no polling. True when it exited.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return readable(fd, timeout)
    finally:
        os.close(fd)


def readable(fd: int, timeout: float) -> bool:
    """Whether ``fd`` has something to read (or hung up) within ``timeout`` seconds.

    poll(), not select(): select() refuses descriptors from 1024 on, which a lab of a few
    hundred machines (a console each, pidfds, captures) reaches."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(max(timeout, 0) * 1000))


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts: its parent has not reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def interrupt_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM (a CI job cancelled, a `kill`) raise KeyboardInterrupt like Ctrl-C, so that
    every context manager cleans up (labs stopped, nothing half-published) instead of the
    interpreter dying with machines still running. Returns the function that undoes it.

    Only in this process: a forked child (pyroute2 forks one to create a namespace, then
    terminates it) inherits the handler, and must die of SIGTERM as usual, not go on running
    a copy of the caller."""
    owner = os.getpid()

    def interrupt(signum: int, frame: object) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat field 22), or None
    if it is gone or a zombie: with the pid, it names one process even after pids wrap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the name, in parentheses, may hold spaces
    return None if fields[0] == "Z" else int(fields[19])


def kill(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Send ``sig`` to ``pid``; a process that is already gone is not an error."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


@contextlib.contextmanager
def spawn_tty(argv: Sequence[str], *, env: Mapping[str, str] | None = None, grace: float = 5.0,
              preexec: Callable[[], None] | None = None) -> Iterator[pexpect.spawn]:
    """Start ``argv`` on a new pseudo-terminal (pexpect); on leaving, stop and reap it."""
    try:
        child = pexpect.spawn(argv[0], list(argv[1:]), env=dict(env) if env is not None else host_env(),
                              echo=False, dimensions=(50, 200), preexec_fn=preexec, use_poll=True)
    except pexpect.ExceptionPexpect as exc:
        raise HarnessError(f"cannot run `{shlex.join(argv)}`: {exc}") from exc
    try:
        yield child
    finally:
        # A child marked closed was handed over (see Machine.detach): no longer ours to stop.
        if not child.closed and child.isalive():
            child.kill(signal.SIGTERM)
            if not wait_for_exit(child.pid, grace):
                child.kill(signal.SIGKILL)
                wait_for_exit(child.pid, grace)
        if not child.closed:
            # pexpect sleeps 0.1 s after closing, for a child still exiting; ours has exited.
            child.delayafterclose = child.ptyproc.delayafterclose = 0
            child.close(force=True)
