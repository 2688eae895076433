"""Spare labs (`harness.engine.spares`): how many are booted, when, and that none outlives close();
and used private labs, torn down in the background (`LabPool.later`).

The labs here are stand-ins that count their entries and exits: what is tested is the
bookkeeping of the pool, which needs no machine. That real spares boot, serve a fresh_lab
test and are torn down on interrupt is tested in test_workflow.py.
"""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from harness.core import log
from harness.engine.build.builder import Builder
from harness.engine.labpool import LabPool
from harness.engine.spares import Spares
from harness.machines.lab import Lab


class Counted:
    """A lab that records being entered and left; entering can be held back by a gate."""

    def __init__(self, book: Book) -> None:
        self.book = book

    def __enter__(self) -> Counted:
        self.book.booting.set()
        self.book.gate.wait(5)
        if self.book.aborted.is_set():
            raise RuntimeError("boot aborted")
        if self.book.fail:
            raise RuntimeError("boot failed")
        with self.book.lock:
            self.book.entered += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        with self.book.lock:
            self.book.left += 1

    def abort(self) -> None:  # as `Lab.abort`: the boot under way ends now, failed
        self.book.aborted.set()
        self.book.gate.set()


class Book:
    def __init__(self, fail: bool = False) -> None:
        self.entered = self.left = 0
        self.fail = fail
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.booting = threading.Event()  # a lab's entering has begun
        self.aborted = threading.Event()

    def make(self) -> Lab:
        return cast(Lab, Counted(self))


def test_a_taken_spare_is_the_one_booted_ahead_and_the_next_boots_behind_it() -> None:
    book = Book()
    spares = Spares(book.make, size=1, wanted=3)
    spares.start()
    with spares.take():
        pass
    with spares.take():
        pass
    spares.close()
    assert spares.taken == 2 and spares.taken_ready == 2
    assert book.entered == book.left  # the third spare, booted and never taken, is gone too
    assert book.entered <= 3


def test_no_more_labs_are_booted_than_can_be_taken() -> None:
    book = Book()
    spares = Spares(book.make, size=4, wanted=2)
    spares.start()
    with spares.take(), spares.take():
        pass
    spares.close()
    assert book.entered == 2 and book.left == 2


def test_nothing_starts_when_no_test_wants_a_private_lab() -> None:
    book = Book()
    spares = Spares(book.make, size=1, wanted=0)
    spares.start()
    spares.close()
    assert book.entered == 0


def test_close_while_a_spare_boots_aborts_it_instead_of_waiting_out_its_boot() -> None:
    book = Book()
    book.gate.clear()  # the spare is held half-booted: only an abort lets it go on
    spares = Spares(book.make, size=1, wanted=5)
    spares.start()
    assert book.booting.wait(5)  # else close() may come first, and rightly boot nothing
    spares.close()
    assert book.aborted.is_set()
    assert book.entered == book.left == 0


def test_close_after_a_spare_booted_tears_it_down_without_aborting_anything() -> None:
    book = Book()
    spares = Spares(book.make, size=1, wanted=5)
    spares.start()
    with spares._changed:  # the spare is on hand
        assert spares._changed.wait_for(lambda: spares._ready, 5)
    spares.close()
    assert not book.aborted.is_set()
    assert book.entered == book.left == 1


def test_a_spare_that_fails_to_boot_leaves_the_test_to_boot_its_own(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # The run's own progress lines stay out of it: this failure is staged (pytest's caplog
    # still gets the record, through the root logger).
    monkeypatch.setattr(log.logger, "handlers", [])
    book = Book(fail=True)
    spares = Spares(book.make, size=1, wanted=2)
    spares.start()
    with pytest.raises(RuntimeError, match="boot failed"), spares.take():
        pass  # booted in the test, which gets the error itself
    spares.close()
    assert spares.taken_ready == 0 and book.entered == 0
    assert [r.getMessage() for r in caplog.records if r.name == "harness"] == \
        ["spare lab failed to boot (boot failed); fresh_lab tests boot their own"]


def test_a_used_private_lab_is_torn_down_behind_the_next_test_and_close_waits_for_it() -> None:
    pool = LabPool(cast(Builder, None), "pas")
    gate, done, threads = threading.Event(), [], []

    def teardown() -> None:
        gate.wait(5)
        threads.append(threading.current_thread().name)
        done.append(True)

    pool.later(teardown)
    assert done == []  # the caller goes on at once
    threading.Timer(0.2, gate.set).start()
    pool.close()
    assert done == [True] and threads[0].startswith("harness-teardown")


def test_a_failed_teardown_is_raised_at_close() -> None:
    pool = LabPool(cast(Builder, None), "pas")

    def broken() -> None:
        raise RuntimeError("namespace busy")

    pool.later(broken)
    with pytest.raises(RuntimeError, match="namespace busy"):
        pool.close()
