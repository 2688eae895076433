"""bench/soak.py: a run's failures read from its junit.xml, and the table (no root)."""

from __future__ import annotations

from pathlib import Path

from bench.soak import Failure, Run, failures, markdown

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
    page = markdown(runs, {"t": Failure("t", ["n2-01"], "no answer")}, "2026-12-05", ["-k", "x"])
    assert "| 1 | 2 | 0 | 363 | 91.0 s |" in page and "| 2 | 2 | 1 | 363 | 60.5 s |" in page
    assert "| `t` | n2-01 | no answer |" in page
    assert "(none)" in markdown(runs[:1], {}, "2026-12-05", [])
