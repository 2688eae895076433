"""harness.core.log: a build's lines kept in a file of their own (no root)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from harness.core import log


def test_a_kept_block_writes_its_threads_records_to_its_file_and_marks_them(tmp_path: Path) -> None:
    seen: list[bool] = []

    class Marks(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(log.kept_elsewhere(record))

    marks = Marks()
    log.logger.addHandler(marks)
    level = log.logger.level
    log.logger.setLevel(logging.INFO)
    try:
        with log.kept_in(tmp_path / "logs" / "alpha" / "k1.log") as kept:
            log.logger.info("inside")
            other = threading.Thread(target=lambda: log.logger.info("another thread"))
            other.start()
            other.join()
            handed = threading.Thread(target=log.carried(lambda: log.logger.info("handed over")))
            handed.start()
            handed.join()
        log.logger.info("after")
    finally:
        log.logger.removeHandler(marks)
        log.logger.setLevel(level)
    text = kept.read_text()
    assert "inside" in text and "handed over" in text  # the block's, and the work it handed out
    assert "another thread" not in text and "after" not in text
    assert seen == [True, False, True, False]  # only those are kept elsewhere
