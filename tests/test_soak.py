"""bench/soak.py: a run's failures read from its junit.xml, and the table (no root)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import pytest

from bench.soak import CODE, Failure, Run, checkout, deadline, failures, fits, markdown, resumed

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="scenarios.test_faults" name="test_a_partition" time="3.1">
  <failure message="AssertionError: pas after the partition healed: expected gw to answer 5 of 5&#10;more"
  >x</failure>
</testcase>
<testcase classname="scenarios.test_dhcp" name="test_unknown[ipv4]" time="1.0">
  <error message="HarnessError: boot"/></testcase>
<testcase classname="scenarios.test_dns" name="test_ok" time="0.2"/>
</testsuite></testsuites>"""


def test_a_runs_failures_and_errors_are_named_with_their_first_line(tmp_path: Path) -> None:
    (tmp_path / "junit.xml").write_text(JUNIT)
    tests, bad = failures(tmp_path / "junit.xml")
    assert tests == 3
    assert bad == {"scenarios/test_faults.py::test_a_partition":
                   "AssertionError: pas after the partition healed: expected gw to answer 5 of 5",
                   "scenarios/test_dhcp.py::test_unknown[ipv4]": "HarnessError: boot"}


def test_the_table_counts_failed_runs_per_worker_count_and_failures_per_test() -> None:
    runs = [Run("n1-01", 90.0, 0, 363, []), Run("n2-01", 60.0, 1, 363, ["t"]),
            Run("n1-02", 92.0, 0, 363, []), Run("n2-02", 61.0, 0, 363, [])]
    page = markdown(runs, {"t": Failure("t", ["n2-01"], "no answer")}, "2026-12-05", ["-k", "x"],
                    "4df762f0a1b2c3")
    assert page.startswith("Soak of 2026-12-05 at 4df762f0a1b2: `pytest scenarios -k x`")
    assert "| 1 | 2 | 0 | 363 | 91.0 s |" in page and "| 2 | 2 | 1 | 363 | 60.5 s |" in page
    assert "| `t` | n2-01 | no answer |" in page
    assert "(none)" in markdown(runs[:1], {}, "2026-12-05", [], "4df762f")


def test_a_soak_resumes_only_on_the_code_and_arguments_it_ran(tmp_path: Path) -> None:
    left = tmp_path / "soak.json"
    runs = [Run("n1-01", 90.0, 0, 479, []), Run("n2-01", 60.0, 1, 479, ["t"])]
    left.write_text(json.dumps({"when": "2026-12-07 03:30 UTC", "commit": "c0ffee", "code": "abc",
                                "pytest_args": [], "runs": [asdict(r) for r in runs],
                                "failures": [asdict(Failure("t", ["n2-01"], "no answer"))]}))
    when, commit, again, found = resumed(left, "abc", [])
    assert (when, commit, again, list(found)) == ("2026-12-07 03:30 UTC", "c0ffee", runs, ["t"])
    assert found["t"].runs == ["n2-01"]
    with pytest.raises(SystemExit, match=r"soak of code abc \(commit c0ffee\), the checkout's is def: resume "
                                         r"from a clean checkout of that code \(harness, stages"):
        resumed(left, "def", [])
    with pytest.raises(SystemExit, match="the checkout's is abc\\+dirty"):
        resumed(left, "abc+dirty", [])
    with pytest.raises(SystemExit, match="ran pytest with \\[\\], not \\['-k', 'dns'\\]"):
        resumed(left, "abc", ["-k", "dns"])
    with pytest.raises(SystemExit, match=r"there is no .*: start without --resume"):
        resumed(tmp_path / "none.json", "abc", [])
    left.write_text(json.dumps({"when": "2026-12-07 03:30 UTC", "commit": "c0ffee", "pytest_args": [],
                                "runs": [], "failures": []}))
    with pytest.raises(SystemExit, match="written before soaks recorded their code"):
        resumed(left, "abc", [])


def test_a_soaks_code_is_what_a_run_imports_so_a_commit_of_tests_keeps_it(tmp_path: Path) -> None:
    def run(*argv: str) -> None:
        subprocess.run(argv, cwd=tmp_path, check=True, capture_output=True)

    run("git", "init", "-q")
    for path in CODE:
        target = tmp_path / path / "x" if "." not in path else tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.py").write_text("1")
    run("git", "add", "-A")
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    first, code = checkout(tmp_path)
    (tmp_path / "tests" / "t.py").write_text("2")
    assert checkout(tmp_path)[1] == code  # a test changed, even uncommitted: same code
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    second, same = checkout(tmp_path)
    assert second != first and same == code
    (tmp_path / "scenarios" / "test_new.py").write_text("untracked, but pytest runs it")
    assert checkout(tmp_path)[1] == code + "+dirty"
    (tmp_path / "scenarios" / "test_new.py").unlink()
    (tmp_path / "stages" / "x").write_text("changed")
    assert checkout(tmp_path)[1] == code + "+dirty"
    run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "three")
    assert checkout(tmp_path)[1] not in (code, code + "+dirty")


def test_a_soak_starts_no_run_the_slowest_of_its_kind_says_would_end_past_its_stop() -> None:
    now = datetime(2026, 12, 7, 5, 25)
    stop = deadline("05:30", now)
    assert stop == datetime(2026, 12, 7, 5, 30) and deadline("01:00", now) == datetime(2026, 12, 8, 1, 0)
    runs = [Run("n1-01", 290.0, 0, 479, []), Run("n1-02", 340.0, 0, 479, []), Run("n2-01", 200.0, 0, 479, [])]
    assert not fits(runs, "n1-03", now, stop)  # 340 s from 05:25 is past 05:30
    assert fits(runs, "n2-02", now, stop)  # 200 s is not
    assert fits(runs, "n4-01", now, stop) and fits(runs, "n1-03", now, None)  # nothing to go by; no stop
    with pytest.raises(SystemExit, match="--stop-by 5h30: give a time of day as HH:MM"):
        deadline("5h30", now)
