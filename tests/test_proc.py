"""harness.core.proc and harness.core.wait: running host processes, waiting with deadlines (no root)."""

from __future__ import annotations

import os
import time

import pytest

from harness.core import proc
from harness.core.errors import CommandFailed, HarnessError, WaitTimeout
from harness.core.wait import Unrecoverable, retry


def test_run_returns_output_and_status() -> None:
    result = proc.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    assert (result.status, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_failure_names_command_status_and_stderr() -> None:
    with pytest.raises(CommandFailed) as info:
        proc.run(["sh", "-c", "echo 'no such thing' >&2; exit 7"])
    message = str(info.value)
    assert "`sh -c 'echo '\"'\"'no such thing'\"'\"' >&2; exit 7'`" in message
    assert "exit code 7" in message and "no such thing" in message
    assert info.value.status == 7


def test_missing_program_says_how_to_install() -> None:
    with pytest.raises(HarnessError, match=r"not installed.*harness setup-host"):
        proc.run(["harness-no-such-program"])


def test_environment_is_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_SECRET_TEST", "leak")
    monkeypatch.setenv("http_proxy", "http://proxy.invalid:3128")
    env = proc.run(["env"]).stdout
    assert "HARNESS_SECRET_TEST" not in env
    assert "http_proxy=http://proxy.invalid:3128" in env
    assert f"PATH={proc.PATH}" in env


def test_spawn_reaps_child_on_exception() -> None:
    with pytest.raises(KeyboardInterrupt), proc.spawn(["sleep", "60"]) as child:
        pid = child.pid
        raise KeyboardInterrupt
    assert child.returncode is not None  # reaped: no zombie left
    assert not os.path.exists(f"/proc/{pid}")


def test_run_timeout_kills_and_says_so() -> None:
    start = time.monotonic()
    with pytest.raises(HarnessError, match=r"did not finish within 0.2s"):
        proc.run(["sleep", "30"], timeout=0.2)
    assert time.monotonic() - start < 10


def test_wait_for_exit_is_told_of_the_exit() -> None:
    with proc.spawn(["sleep", "0.1"]) as child:
        assert proc.wait_for_exit(child.pid, 10)
    with proc.spawn(["sleep", "30"]) as child:
        assert not proc.wait_for_exit(child.pid, 0.1)


def test_spawn_tty_gives_a_terminal() -> None:
    with proc.spawn_tty(["sh", "-c", "test -t 0 && echo tty"]) as child:
        child.expect("tty", timeout=10)


def test_retry_returns_when_check_holds() -> None:
    calls = []
    retry(lambda last: calls.append(last) or len(calls) == 3, 10, "three calls")
    assert calls == [False, False, False]


def test_retry_timeout_names_what_was_awaited() -> None:
    with pytest.raises(WaitTimeout, match=r"timed out after 0.1s waiting for the moon"):
        retry(lambda last: False, 0.1, "the moon")


def test_retry_last_try_may_raise_with_detail() -> None:
    def check(last_try: bool) -> bool:
        if last_try:
            raise WaitTimeout("port 80 still closed; listening: 22")
        return False

    with pytest.raises(WaitTimeout, match="listening: 22"):
        retry(check, 0.1, "port 80")


def test_retry_stops_early_on_unrecoverable() -> None:
    start = time.monotonic()
    with pytest.raises(WaitTimeout, match="gave up waiting for nginx: unit failed"):
        retry(lambda last: (_ for _ in ()).throw(Unrecoverable("unit failed")), 30, "nginx")
    assert time.monotonic() - start < 5


def test_spawn_passes_stdin() -> None:
    assert proc.run(["cat"], input="hello").stdout == "hello"


def test_default_stdin_is_empty_not_the_terminal() -> None:
    assert proc.run(["cat"], timeout=10).stdout == ""


def test_readable_takes_descriptors_past_select_s_limit_of_1024() -> None:
    import os
    import resource

    from harness.core import proc

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:  # as harness.machines.limits does for a big lab
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    read_end, write_end = os.pipe()
    high = os.dup2(read_end, 1500)  # a lab of a few hundred machines gets descriptors this high
    try:
        assert proc.readable(high, 0.01) is False
        os.write(write_end, b"x")
        assert proc.readable(high, 1.0) is True
    finally:
        for fd in (high, read_end, write_end):
            os.close(fd)


def test_a_console_reads_a_descriptor_past_selects_limit() -> None:
    """A lab of 250 machines holds descriptors past 1024, where select() refuses to look: every
    console login of such a lab failed ("filedescriptor out of range in select()")."""
    import resource

    from harness.machines.console import ConsoleSession

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2048:
        pytest.skip(f"the hard limit on open files is {hard}: no descriptor past 1024 to test with")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    read, write = os.pipe()
    high = os.dup2(read, 1500)
    try:
        os.write(write, b"login: ")
        session = ConsoleSession(high, None, "seat", timeout=5)  # type: ignore[arg-type]  # reads only
        assert session.wait_for("login: ") == ""  # what came before the prompt: nothing
        assert session.after == "login: "
    finally:
        for fd in (read, write, high):
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class _ChangingEnviron(dict):  # type: ignore[type-arg]
    """An environment another thread is changing: walking it fails, as os.environ's walk
    does when a key goes between listing and reading it."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise KeyError("PYTEST_CURRENT_TEST")

    def items(self):  # type: ignore[no-untyped-def]
        raise KeyError("PYTEST_CURRENT_TEST")


def test_host_env_reads_the_proxies_without_walking_an_environment_another_thread_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", _ChangingEnviron(https_proxy="http://proxy:3128", HOME="/root"))
    env = proc.host_env({"X": "1"})
    assert env["https_proxy"] == "http://proxy:3128" and env["X"] == "1" and "HOME" not in env
