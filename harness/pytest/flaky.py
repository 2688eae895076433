"""``--flake-check=N``: tell a flaky test from a failing one.

A test that fails is run again, up to N times, each time in a private lab booted from the
snapshot it started from (nothing of its first lab carries over). It stays failed either
way, with a verdict: ``fails N/N`` (it failed again every time: a real failure) or
``flaky k/N`` (it failed again k times out of N: it depends on timing, load or luck).
The verdict goes into the test's report, the terminal summary and junit.xml, and Allure
marks a flaky test as flaky.
"""

from __future__ import annotations

from typing import Any

import pytest
from _pytest.runner import runtestprotocol

RERUN_KEY = pytest.StashKey[int]()  # on an item being rerun: which attempt (1..N)


class FlakeCheck:
    """The pytest plugin behind ``--flake-check``; registered by `harness.plugin`."""

    def __init__(self, reruns: int) -> None:
        self.reruns = reruns
        self.verdicts: dict[str, str] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool:
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        # as pytest-rerunfailures: each run sets the test up and tears it down whole
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        call = next((r for r in reports if r.when == "call"), None)
        if call is not None and call.failed:
            first = _allure_result(item)
            kept = (first.status, first.statusDetails) if first is not None else None
            failures = 0
            for attempt in range(1, self.reruns + 1):
                item.stash[RERUN_KEY] = attempt
                _reset(item)
                again = runtestprotocol(item, nextitem=nextitem, log=False)
                failures += any(r.failed for r in again)
            if failures == self.reruns:
                verdict = f"fails {failures}/{self.reruns}"
                why = f"failed again in each of {self.reruns} fresh lab(s): a real failure"
            else:
                verdict = f"flaky {failures}/{self.reruns}"
                why = f"failed again in {failures} of {self.reruns} fresh lab(s): flaky"
            self.verdicts[item.nodeid] = verdict
            call.sections.append(("harness flake check", f"{verdict}: {why}"))
            call.user_properties.append(("flake-check", verdict))
            if first is not None and kept is not None:
                # allure-pytest rewrote the result with each rerun: the first run is the one reported
                first.status, first.statusDetails = kept
                if first.statusDetails is not None:
                    first.statusDetails.flaky = failures < self.reruns
        for report in reports:  # the first run is the one reported
            item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Under xdist, the controller learns each verdict from the reports the workers send."""
        for key, value in report.user_properties:
            if key == "flake-check":
                self.verdicts[report.nodeid] = str(value)

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        verdict = self.verdicts.get(report.nodeid)
        if report.when == "call" and report.failed and verdict:
            return "failed", "F", f"FAILED ({verdict})"
        return None

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.verdicts:
            terminalreporter.section("harness flake check")
            for nodeid, verdict in self.verdicts.items():
                terminalreporter.line(f"{verdict:12} {nodeid}")


def _reset(item: pytest.Item) -> None:
    """Forget the function-scoped fixture values of the last run (as pytest-rerunfailures does)."""
    init = getattr(item, "_initrequest", None)
    if init is not None:
        init()


def _allure_result(item: pytest.Item) -> Any:
    """The allure result being written for ``item`` (allure-pytest has no API for it), or None."""
    listener = item.config.pluginmanager.get_plugin("allure_listener")
    if listener is None:
        return None
    return listener.allure_logger.get_test(listener._cache.get(item.nodeid))
