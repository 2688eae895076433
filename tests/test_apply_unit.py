"""What `harness apply` counts as a change, and what `harness bisect` says at its end: pure
logic, no root needed."""

from __future__ import annotations

import os
from pathlib import Path

from harness.cli.bisect import Outcome, report
from harness.engine.rootdiff import is_noise, real_changes
from harness.machines import treediff


def test_a_step_s_changes_are_content_mode_and_entries_not_times_or_noise(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    for root in (before, after):
        (root / "etc").mkdir(parents=True)
        (root / "var/log").mkdir(parents=True)
        (root / "etc/same").write_text("one\n")
        (root / "etc/edited").write_text("old\n")
        (root / "etc/gone").write_text("x\n")
        (root / "etc/tool").write_text("#!/bin/sh\n")
    (after / "etc/gone").unlink()
    (after / "etc/edited").write_text("new\n")
    (after / "etc/new").write_text("made\n")
    (after / "etc/tool").chmod(0o755)
    os.utime(after / "etc/same", ns=(1, 1))  # written again, same content: no change
    (after / "var/log/syslog").write_text("noise\n")
    found = treediff.diff(before, after)
    assert real_changes(before, after, found) == ["~ etc/edited", "- etc/gone", "+ etc/new", "~ etc/tool"]


def test_what_running_machines_write_on_their_own_is_noise() -> None:
    assert is_noise("var/log/journal/x/system.journal")
    assert is_noise("usr/lib/python3.11/__pycache__/os.cpython-311.pyc")
    assert is_noise("var/lib/systemd/random-seed")
    assert not is_noise("var/www/html/index.html")
    assert not is_noise("var/logs-of-mine")


def test_the_end_of_a_bisect_names_the_commit_the_stage_and_the_builds() -> None:
    outcome = Outcome("294e19c53d25aa", "office: a warmer welcome",
                      {"office": ["file server/index.html.in changed"], "web": []}, 4, {"office": 1})
    assert report(outcome) == [
        "first bad commit: 294e19c53d25 office: a warmer welcome",
        "  it changed the key of stage office: file server/index.html.in changed",
        "  and so of the stages built on it: web",
        "4 commit(s) tested; built office 1 time(s); every other stage was restored from the store"]
    assert report(Outcome("abc", "scenarios: stricter", {}, 2, {}))[1] == \
        "  it changed no stage's key: the regression is in the scenarios or the harness"
