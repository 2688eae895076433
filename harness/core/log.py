"""Progress of long work: named steps with elapsed times.

Everything goes through the ``harness`` logger, so pytest captures it into reports and
the plugin or CLI decide where the live lines go. `step()` is also the hook point for
step listeners (the pytest plugin turns steps into allure steps). A step's records carry
``step``, ``depth`` and ``phase`` (start, done, failed), so that a terminal can show them
as one live status line instead of two lines each (`Progress`); every other record is a
headline (a stage built or reused, a lab up) and is always shown.

A stage's build writes its records to a log file of its own (`kept_in`): the terminal still
shows them, but a test's report, whose setup happened to trigger the build, shows the
headline and the file's path instead of the build's many lines (`kept_elsewhere`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger("harness")

StepListener = Callable[[str], AbstractContextManager[object]]
_listeners: list[tuple[int, StepListener]] = []
_depth = 0
T = TypeVar("T")
_kept = threading.local()  # .path: the file the calling thread's records go to (kept_in)


def add_step_listener(listener: StepListener) -> Callable[[], None]:
    """Wrap every future `step()` of the calling thread in ``listener(title)``; returns the
    remover. Steps of other threads (spare labs booting behind the tests, see
    `harness.engine.spares`) belong to no test: an allure step must not land in the one running."""
    entry = (threading.get_ident(), listener)
    _listeners.append(entry)
    return lambda: _listeners.remove(entry)


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
    extra = {"step": title, "depth": _depth}
    logger.info("%s%s ...", indent, title, extra={**extra, "phase": "start"})
    start = time.monotonic()
    _depth += 1
    try:
        with contextlib.ExitStack() as stack:
            for thread, listener in list(_listeners):
                if thread == threading.get_ident():
                    stack.enter_context(listener(title))
            yield
    except BaseException:
        logger.error("%s%s failed after %s", indent, title,
                     format_elapsed(time.monotonic() - start), extra={**extra, "phase": "failed"})
        raise
    finally:
        _depth -= 1
    logger.info("%s%s done in %s", indent, title, format_elapsed(time.monotonic() - start),
                extra={**extra, "phase": "done"})


@contextlib.contextmanager
def kept_in(path: Path) -> Iterator[Path]:
    """Write the calling thread's ``harness`` records to ``path`` (anew) while the block runs,
    and mark them as kept there: a report leaves them out (`kept_elsewhere`) and names the
    file. Other threads' records (a spare lab booting behind the tests) are not the block's,
    but for the work it hands them (`carried`: its machines booting side by side)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")  # anew; then appended to, by records and by `append_kept` alike
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(lambda record: getattr(_kept, "path", None) == path)  # on the emitting thread
    logger.addHandler(handler)
    outer, _kept.path = getattr(_kept, "path", None), path
    try:
        yield path
    finally:
        _kept.path = outer
        logger.removeHandler(handler)
        handler.close()


def kept_path() -> Path | None:
    """The file the calling thread's records are kept in (`kept_in`), if any: where a build
    appends what is not a record (a failed build's journals). Both write in append mode, so
    neither overwrites the other."""
    return getattr(_kept, "path", None)


def carried(function: Callable[..., T]) -> Callable[..., T]:
    """``function``, to run on another thread (a pool's worker) as part of the calling
    thread's work: its records go where the caller's do (`kept_in`)."""
    path = getattr(_kept, "path", None)

    def run(*args: Any, **kwargs: Any) -> T:
        outer, _kept.path = getattr(_kept, "path", None), path
        try:
            return function(*args, **kwargs)
        finally:
            _kept.path = outer

    return run


def kept_elsewhere(record: logging.LogRecord) -> bool:
    """Whether ``record`` is a harness record written to a log file of its own (`kept_in`,
    on the thread that emits it): a filter for the handler that fills a test's report."""
    return getattr(_kept, "path", None) is not None and record.name.split(".")[0] == logger.name


class Progress(logging.Handler):
    """Shows harness records on a terminal: headlines as lines, steps as one live status line.

    ``write_line(text)`` prints a whole line; ``status(text)`` replaces the live line (None if
    the output is not a terminal: then steps are not shown at all, as in a CI log); ``clear()``
    erases it. With ``verbose``, every step start and end is a line of its own.
    """

    def __init__(self, write_line: Callable[[str], None], status: Callable[[str], None] | None,
                 clear: Callable[[], None], verbose: bool = False) -> None:
        super().__init__(logging.INFO)
        self.write_line, self.status, self.clear = write_line, status, clear
        self.verbose = verbose
        self.open: list[tuple[str, float]] = []  # steps under way: title, start
        self.shown = False

    def emit(self, record: logging.LogRecord) -> None:
        title = getattr(record, "step", None)
        if title is None or self.verbose or record.levelno >= logging.ERROR:
            if self.shown:
                self.clear()
                self.shown = False
            self.write_line(f"[harness] {record.getMessage()}")
            if title is None or self.verbose:
                return
        phase = getattr(record, "phase", "")
        depth = int(getattr(record, "depth", 0))
        del self.open[depth:]
        if phase == "start":
            self.open.append((title, time.monotonic()))
        if self.status is None:
            return
        if not self.open:
            if self.shown:
                self.clear()
                self.shown = False
            return
        outer, since = self.open[0]
        if len(self.open) > 1:  # what it waits for now matters most: the outer step, shortened
            outer = (outer if len(outer) <= 32 else outer[:31] + "…") + f" > {self.open[-1][0]}"
        self.status(f"[harness] {format_elapsed(time.monotonic() - since):>6} {outer}")
        self.shown = True
