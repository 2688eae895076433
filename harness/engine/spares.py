"""Spare labs: private labs booted ahead, in the background, for the tests that need one.

A ``fresh_lab`` test used to boot its own lab in its set-up: seconds of every such test,
while the machine had cores to spare during the other tests' waits. `Spares` keeps up to
``size`` labs booted from one snapshot, ready, on a thread of its own; `take` hands one
over at once when it is ready (and the next starts behind it), or boots one in the
caller's thread when none is. It never boots more labs than it was told could be taken.

The spares are ordinary `Lab` s: recorded under this process, torn down by `close` (the
end of the session, Ctrl-C or SIGTERM included) and swept by `harness.machines.lab.sweep_stale`
after a run killed outright. A spare that fails to boot is torn down by its own ``with``,
logged, and the filling stops: the next `take` boots in the test, where the error is
reported against the test that needed the lab.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from harness.core.log import logger
from harness.machines.lab import Lab


class Spares:
    """Up to ``size`` labs made by ``make`` and entered ahead of need, at most ``wanted`` in all.

    >>> spares = Spares(lambda: builder.lab(snapshot), size=1, wanted=3)
    >>> with spares.take() as lab:   # booted behind the previous test, or now
    ...     lab["gw"].succeed("true")
    >>> spares.close()
    """

    def __init__(self, make: Callable[[], Lab], *, size: int, wanted: int) -> None:
        self._make = make
        self.size = size
        self._left = wanted  # labs that may still be taken
        self._ready: list[Lab] = []
        self._booting = False
        self._entering: Lab | None = None  # the spare under way, which `close` aborts
        self._closed = False
        self._failed = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self.taken_ready = 0  # labs handed over ready (the rest were booted by `take`)
        self.taken = 0

    def start(self) -> None:
        """Start booting spares in the background (once; nothing when none is wanted)."""
        with self._changed:
            if self._thread is not None or self.size < 1 or self._left < 1 or self._closed:
                return
            self._thread = threading.Thread(target=self._fill, name="harness-spares", daemon=False)
            self._thread.start()

    def _needed(self) -> bool:
        """Whether another spare should boot now (called with the lock held)."""
        on_hand = len(self._ready) + self._booting
        return not self._closed and not self._failed and on_hand < min(self.size, self._left)

    def _fill(self) -> None:
        while True:
            with self._changed:
                while not self._needed() and not self._closed and not self._failed:
                    self._changed.wait()
                if self._closed or self._failed:
                    return
                self._booting = True
            lab: Lab | None = None
            try:
                entering = self._make()
                with self._changed:
                    self._entering = entering
                    if self._closed:
                        entering.abort()
                lab = entering.__enter__()
            except BaseException as exc:  # a spare's failure: the test that takes a lab boots its own
                if not self._closed:
                    logger.warning("spare lab failed to boot (%s); fresh_lab tests boot their own", exc)
            with self._changed:
                self._booting = False
                self._entering = None
                if lab is None:
                    self._failed = True
                elif not self._closed:
                    self._ready.append(lab)
                    lab = None
                self._changed.notify_all()
            if lab is not None:  # booted while the session closed
                lab.__exit__(None, None, None)

    @contextlib.contextmanager
    def take(self) -> Iterator[Lab]:
        """A ready lab for the ``with`` block, torn down on leaving it."""
        with self._changed:
            # a spare under way, or about to be, is the quickest: counted in _left until taken
            while not self._ready and self._thread is not None and (self._booting or self._needed()):
                self._changed.wait()
            lab = self._ready.pop(0) if self._ready else None
            self._left -= 1
            self._changed.notify_all()  # room for the next spare
        self.taken += 1
        if lab is None:
            with self._make() as lab:
                yield lab
            return
        self.taken_ready += 1
        with contextlib.ExitStack() as stack:
            stack.push(lab)  # entered by the filler: only its exit is ours
            yield lab

    def close(self) -> None:
        """Stop filling, end a spare under way (`Lab.abort`: a closing session, Ctrl-C or
        SIGTERM, does not wait out a boot nobody will use), and tear down every spare not taken."""
        with self._changed:
            self._closed = True
            if self._entering is not None:
                self._entering.abort()
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
        with self._changed:
            left, self._ready = self._ready, []
        with contextlib.ExitStack() as stack:  # every one, even if one's teardown fails
            for lab in left:
                stack.push(lab)
