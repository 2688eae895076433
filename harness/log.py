"""Progress of long work: named steps with elapsed times.

Everything goes through the ``harness`` logger, so pytest captures it into reports and
the plugin or CLI decide where the live lines go. `step()` is also the hook point for
step listeners (the pytest plugin turns steps into allure steps).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

logger = logging.getLogger("harness")

StepListener = Callable[[str], AbstractContextManager[object]]
_listeners: list[StepListener] = []
_depth = 0


def add_step_listener(listener: StepListener) -> Callable[[], None]:
    """Wrap every future `step()` in ``listener(title)``; returns the remover."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def format_elapsed(seconds: float) -> str:
    """``0.42s``, ``12.3s``, ``2m05s``: short enough for a progress line."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    """Log ``title`` when it starts and again with its elapsed time when it ends.

    >>> with step("bootstrap: debootstrap bookworm"):
    ...     pass
    """
    global _depth
    indent = "  " * _depth
    logger.info("%s%s ...", indent, title)
    start = time.monotonic()
    _depth += 1
    try:
        with contextlib.ExitStack() as stack:
            for listener in list(_listeners):
                stack.enter_context(listener(title))
            yield
    except BaseException:
        logger.error("%s%s failed after %s", indent, title,
                     format_elapsed(time.monotonic() - start))
        raise
    finally:
        _depth -= 1
    logger.info("%s%s done in %s", indent, title, format_elapsed(time.monotonic() - start))
