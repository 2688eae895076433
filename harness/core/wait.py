"""The one way the harness waits: `retry()` on the monotonic clock.

A check is called as ``check(last_try)`` until it returns true or the deadline passes.
On its final call (``last_try=True``) it may raise with full detail of the state it saw;
at any call it may raise `Unrecoverable` for a state that cannot get better (a unit that
reached ``failed``, a machine whose nspawn exited), which ends the wait at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.core.errors import WaitTimeout


class Unrecoverable(Exception):
    """Raised by a check when waiting longer cannot help; carries the reason."""


def retry(check: Callable[[bool], bool], timeout: float, what: str, *,
          first_interval: float = 0.05, max_interval: float = 0.25) -> None:
    """Wait until ``check`` holds, for at most ``timeout`` seconds.

    Raises `WaitTimeout` naming ``what`` (or whatever the check raised on its last try),
    or `WaitTimeout` from an `Unrecoverable` raised by the check.
    The interval between tries grows from ``first_interval`` to ``max_interval``. The cap is
    short: what a lab waits for (a lease after a router solicitation's random delay, a unit)
    mostly comes within a second or two, and a check seen late by up to the interval is
    time lost by every test that waits; a try costs a few milliseconds of CPU.
    """
    deadline = time.monotonic() + timeout
    interval = first_interval
    while True:
        last_try = time.monotonic() >= deadline
        try:
            if check(last_try):
                return
        except Unrecoverable as exc:
            raise WaitTimeout(f"gave up waiting for {what}: {exc}") from None
        if last_try:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(min(interval, max(deadline - time.monotonic(), 0)))
        interval = min(interval * 2, max_interval)
