"""Stopping inside a failure (harness/pytest/debugger.py): a toy run driven through a terminal
(pexpect), stopped by a ``breakpoint()`` or by ``--pdb`` at a failure, with its lab up."""

from __future__ import annotations

import os
import subprocess
import sys

import pexpect
import pytest

from harness.core.wait import retry
from tests.conftest import NOTHING, traces_of
from tests.toy import Toy

pytestmark = pytest.mark.integration

STOPS = '''
def test_stops(alpha, lab):
    breakpoint()
    assert alpha.succeed("cat /etc/alpha-built").strip() == "1"

def test_stops_then_runs_long(alpha):
    breakpoint()
    alpha.succeed("sleep 3171")

def test_fails(alpha):
    alpha.succeed("cat /etc/not-there")
'''
PROMPT = r"\(Pdb\) "


def debug(toy: Toy, *args: str) -> tuple[pexpect.spawn, str]:
    """The toy's pytest on a terminal, run to its debugger's prompt; the lab's id it printed."""
    toy.pytester.makepyfile(test_debug=STOPS)
    child = pexpect.spawn(sys.executable, ["-m", "pytest", "--pipeline=toystages",
                                           f"--store={toy.store.root}", "-p", "no:cacheprovider", *args],
                          cwd=str(toy.pytester.path), env=dict(os.environ), encoding="utf-8", timeout=300)
    child.expect(r"enter a machine from another terminal:\r\n  harness shell alpha --lab (\w+)\r\n")
    lab_id = child.match.group(1)
    child.expect(PROMPT)
    return child, lab_id


def shell(toy: Toy, lab_id: str, *command: str) -> str:
    """`harness shell alpha --lab ID -- COMMAND` from another process, as another terminal would."""
    done = subprocess.run([sys.executable, "-m", "harness.cli", "shell", "alpha", "--lab", lab_id, "--",
                           *command], cwd=toy.pytester.path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def gone(toy: Toy, lab_id: str) -> bool:
    return traces_of(lab_id, toy.store.root / "work" / lab_id) == NOTHING


def test_a_breakpoint_stops_with_the_lab_up_and_continue_tears_it_down(toy: Toy) -> None:
    child, lab_id = debug(toy, "test_debug.py::test_stops")
    assert "here, the test's machines are alpha" in str(child.before)
    child.sendline('alpha.succeed("cat /etc/alpha-built")')
    child.expect(r"'1\\n'\r\n")
    child.expect(PROMPT)
    assert shell(toy, lab_id, "cat", "/etc/alpha-built") == "1\n"  # from another terminal
    assert not gone(toy, lab_id)
    child.sendline("c")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert gone(toy, lab_id)


def test_pdb_stops_at_a_failure_with_the_lab_up_and_quit_tears_it_down(toy: Toy) -> None:
    child, lab_id = debug(toy, "--pdb", "test_debug.py::test_fails")
    child.sendline('alpha.succeed("hostname")')
    child.expect(r"'alpha\\n'\r\n")
    child.expect(PROMPT)
    assert shell(toy, lab_id, "hostname") == "alpha\n"
    child.sendline("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2, child.before  # interrupted: the debugger was quit
    assert gone(toy, lab_id)


def test_ctrl_c_once_continued_ends_the_run_and_tears_the_lab_down(toy: Toy) -> None:
    child, lab_id = debug(toy, "test_debug.py::test_stops_then_runs_long")
    child.sendline("c")
    retry(lambda last: subprocess.run(["pgrep", "-f", "^sleep 3171$"], capture_output=True).returncode == 0,
          timeout=60, what="the test's command to run in alpha")
    child.sendintr()  # what a terminal sends on Ctrl-C
    child.expect(pexpect.EOF)
    child.close()
    assert "KeyboardInterrupt" in str(child.before)
    assert child.exitstatus == 2, child.before
    assert gone(toy, lab_id)

