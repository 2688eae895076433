"""The harness's progress on pytest's terminal: lines logged by other threads (a spare lab
booting in the background) reach it through the main thread, never by suspending pytest's
capture from another thread (which raced pytest's own and closed its files)."""

from __future__ import annotations

import pytest

THREADED = '''
import threading

from harness.core.log import logger


def test_a_thread_logs_while_the_test_prints():
    threads = [threading.Thread(target=lambda i=i: [logger.warning("from thread %d line %d", i, n)
                                                    for n in range(200)]) for i in range(4)]
    for thread in threads:
        thread.start()
    for n in range(2000):
        print("captured", n)
    for thread in threads:
        thread.join()


def test_after():
    logger.warning("from the main thread")
'''


def test_lines_of_other_threads_are_written_by_the_main_thread_in_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_threads=THREADED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    lines = [line for line in result.outlines if line.startswith("[harness] from")]
    assert len(lines) == 4 * 200 + 1
    for i in range(4):
        assert [line for line in lines if f"thread {i} " in line] == \
            [f"[harness] from thread {i} line {n}" for n in range(200)]
    assert lines[-1] == "[harness] from the main thread"
    assert "captured" not in result.stdout.str()  # the test's own output stayed captured
