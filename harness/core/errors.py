"""The two roots of every error the harness raises.

`HarnessError` means the harness or its host broke (no root, no btrfs, a machine that
would not boot); `CheckFailed` means the system under test misbehaved. allure reports
the first as *broken* and the second as *failed*, so a reader knows whose fault it is.
This module imports nothing of the package.
"""

from typing import TypeVar

T = TypeVar("T")


class HarnessError(Exception):
    """The harness or the host it runs on cannot do what was asked.

    The message is one line that says what to do about it.
    """


class CheckFailed(AssertionError):
    """The lab did not behave as a scenario or a wait required."""


class CommandFailed(HarnessError):
    """A host-side command exited non-zero.

    Carries the command line, its exit status and its output so callers can decide.
    """

    def __init__(self, message: str, *, status: int, stdout: str, stderr: str) -> None:
        super().__init__(message)
        self.status = status
        self.stdout = stdout
        self.stderr = stderr


class WaitTimeout(CheckFailed):
    """A condition awaited with a deadline did not come true in time."""


def present(value: T | None, what: str) -> T:
    """``value``, which cannot be None unless the harness has a bug or its store changed under
    it: then a `HarnessError` (reported as broken), never a bare ``assert`` (reported as failed)."""
    if value is None:
        raise HarnessError(f"{what} is missing: the store changed under this run, or this is a "
                           "harness bug; run again, and report it if it persists")
    return value


class UsageError(HarnessError):
    """The user asked for something that does not exist or cannot be combined."""
