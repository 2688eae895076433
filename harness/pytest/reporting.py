"""What a pytest run reports: progress on the terminal, allure steps, where the reports go,
each room's distribution (table and plot) that a test measured, and, for a failing test
with a lab, its evidence, its kept lab (``--keep-failed``) and its line in the mutant log
(``--mutant-log``); environment.properties at the end.

The hooks here are registered through `harness.plugin`, which imports them.
"""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.core import log
from harness.core.errors import HarnessError
from harness.core.names import SnapshotRef
from harness.engine import distribution, evidence
from harness.machines import spread, store
from harness.machines.lab import Lab
from harness.pytest import flaky
from harness.pytest.session import PIPELINE_KEY, STORE_KEY, TARGET_KEY, settings_of, store_of


def point_reports(config: pytest.Config) -> None:
    """Point allure and junitxml into the reports directory (before they read their options)."""
    reports = reports_dir(config)
    if reports is None:
        return
    if not config.option.allure_report_dir:
        results = reports / "allure-results"
        if not hasattr(config, "workerinput"):  # the controller cleans; workers only add
            shutil.rmtree(results, ignore_errors=True)
            shutil.rmtree(reports / "evidence", ignore_errors=True)
        config.option.allure_report_dir = str(results)
    if not config.option.xmlpath:
        config.option.xmlpath = str(reports / "junit.xml")


def reports_dir(config: pytest.Config) -> Path | None:
    """``--reports``, else env ``HARNESS_REPORTS``, else ini ``harness_reports`` (relative to
    the rootdir), else None."""
    given = settings_of(config).reports
    return config.rootpath / given if given else None


def terminal_progress(config: pytest.Config) -> log.Progress:
    """Harness progress on pytest's terminal, even while output is captured: headlines as lines,
    steps as one status line (on a terminal; every step as lines with -v)."""

    pending: queue.SimpleQueue[str] = queue.SimpleQueue()  # lines of other threads, for the main one

    def terminal() -> tuple[Any, Any]:
        return (config.pluginmanager.get_plugin("terminalreporter"),
                config.pluginmanager.get_plugin("capturemanager"))

    def uncaptured(write: Callable[..., None], deferred: bool = False) -> Callable[..., None]:
        """``write`` with pytest's capture suspended. Only the main thread may suspend and
        resume it (from a spare lab's thread, it raced pytest's own and closed its files):
        another thread's lines wait for the main thread's next write, or the session's end;
        its status lines are dropped."""

        def run(*args: Any) -> None:
            if threading.current_thread() is not threading.main_thread():
                if deferred:
                    pending.put(args[0])
                return
            reporter, capture = terminal()
            if reporter is None:
                return
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                while not pending.empty():
                    reporter.write_line(pending.get())
                write(reporter, *args)
        return run

    def status(reporter: Any, text: str) -> None:
        reporter.ensure_newline()
        reporter.rewrite(text[: reporter._tw.fullwidth - 1], erase=True)
        reporter.flush()

    def clear(reporter: Any) -> None:
        reporter.rewrite("", erase=True)
        reporter.write("\r", flush=True)

    reporter, _ = terminal()
    tty = reporter is not None and reporter._tw.hasmarkup  # a terminal, not a CI log
    write_line = uncaptured(lambda r, line: r.write_line(line), deferred=True)
    config.add_cleanup(uncaptured(lambda r: None))  # the lines still waiting
    return log.Progress(write_line, uncaptured(status) if tty else None, uncaptured(clear),
                        verbose=config.option.verbose >= 1)


def allure_step(title: str) -> Any:
    import allure

    return allure.step(title)


@dataclass
class Watched:
    """A test's lab under watch: since when, which snapshot it came from, the running capture."""

    lab: Lab
    snapshot: store.Snapshot
    since: float
    capture: evidence.Capture


WATCHED_KEY = pytest.StashKey[Watched]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Attach each room distribution the test measured (`harness.machines.fleet.timed_each`)
    to its allure result, passed or failed: one table of every check, one plot per check."""
    measured: dict[int, distribution.Measured] = {}

    def keep(room: spread.Spread, k: float | None, floor: float) -> None:
        known = measured.get(id(room))
        if k is not None or known is None:  # a check's allowance replaces the bare measure
            measured[id(room)] = distribution.Measured(room, k, floor)

    remove = spread.add_recorder(keep)
    try:
        yield
    finally:
        remove()
    if measured and item.config.option.allure_report_dir:
        import allure

        checks = list(measured.values())
        allure.attach(distribution.table(checks), name="rooms: p50, p95, max and outliers",
                      attachment_type=allure.attachment_type.HTML)
        for check in checks:
            allure.attach(distribution.plot(check), name=f"room plot: {check.spread.what}",
                          attachment_type=allure.attachment_type.SVG)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """On a failing test with a lab: gather its evidence, attach it, keep the lab if asked."""
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    _log_outcome(item.config, report, call)
    watched = item.stash.get(WATCHED_KEY, None)
    if report.when != "call" or not report.failed or watched is None:
        return
    if item.stash.get(flaky.RERUN_KEY, 0):
        return  # a --flake-check rerun: the first failure's evidence and lab are the ones kept
    config = item.config
    reports = reports_dir(config)
    directory = (reports / "evidence" if reports else watched.capture.directory.parent / "evidence") \
        / evidence.safe_name(item.nodeid)
    pipeline = config.stash[PIPELINE_KEY]
    declared = pipeline.evidence if pipeline else {}
    with log.step(f"evidence of {item.nodeid}"):
        found = [*evidence.collect(watched.lab, directory, since=watched.since, declared=declared),
                 *watched.capture.since(watched.since, directory)]
    for piece in found:
        _allure_attach(piece)
    report.sections.append(("harness evidence", f"written to {directory}"))
    if config.option.keep_failed:
        try:
            kept = _keep_failed(config, item, watched, directory)
        except (HarnessError, OSError) as exc:  # the test's own result must still be reported
            report.sections.append(("harness kept lab", f"could not keep the lab: {exc}"))
            return
        report.sections.append(("harness kept lab", f"snapshot {kept}: resume it with "
                                f"`harness up --from-snapshot {kept}`"))


def _log_outcome(config: pytest.Config, report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
    """With ``--mutant-log``: one JSON line per phase that did not pass, and per passed test.

    A failure is ``failed`` when the test's assertion failed (the lab misbehaved) and
    ``broken`` when anything else was raised (the harness, the host, a mutant that did not
    apply): only the first kind kills a mutant."""
    path = config.option.mutant_log
    if path is None or (report.passed and report.when != "call") or report.skipped:
        return
    kind = "passed"
    if report.failed:
        assertion = call.excinfo is not None and call.excinfo.errisinstance(AssertionError)
        kind = "failed" if report.when == "call" and assertion else "broken"
    message = ""
    if call.excinfo is not None:
        message = call.excinfo.exconly().strip().splitlines()[0][:500] if call.excinfo.exconly() else ""
    line = json.dumps({"test": report.nodeid, "when": report.when, "outcome": kind,
                       "message": message, "duration": round(report.duration, 3)})
    with open(path, "a") as out:  # one short write with O_APPEND: xdist workers do not interleave
        out.write(line + "\n")


def _allure_attach(piece: evidence.Evidence) -> None:
    import allure

    kinds = {".svg": allure.attachment_type.SVG, ".pcap": allure.attachment_type.PCAP,
             ".dot": allure.attachment_type.TEXT, ".txt": allure.attachment_type.TEXT}
    allure.attach.file(str(piece.path), name=piece.title,  # type: ignore[no-untyped-call]
                       attachment_type=kinds.get(piece.path.suffix, allure.attachment_type.TEXT))


def _keep_failed(config: pytest.Config, item: pytest.Item, watched: Watched,
                 directory: Path) -> str:
    ref = SnapshotRef.failure(evidence.safe_name(item.nodeid))
    held = store_of(config)
    lab = watched.lab
    meta = {"stage": watched.snapshot.meta.get("stage"), "key": watched.snapshot.meta.get("key"),
            "from": watched.snapshot.name, "test": item.nodeid, "project": str(config.rootpath)}
    # a diskless machine's writes included; the newest failure of a test replaces the older one
    with log.step(f"keep the lab of {item.nodeid} as {ref}"), lab.roots_as_seen() as roots:
        # a seat's root is its tree and what it wrote: the stage snapshot stores the tree, not
        # the seat, so an export is relative to the tree (harness.engine.bundle.bases)
        meta["shares"] = {m: lab.setups[m].shares for m in roots if lab.setups[m].shares}
        held.publish(ref, roots, meta, evidence=directory, replace=True)
    return str(ref)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write allure's environment.properties: host, versions and the stage keys of this run."""
    config = session.config
    results = config.option.allure_report_dir
    if not results or hasattr(config, "workerinput"):
        return
    pipeline = config.stash[PIPELINE_KEY]
    opened = config.stash.get(STORE_KEY, None)  # only a store this run could open
    props = evidence.environment(pipeline, opened if config.stash.get(TARGET_KEY, None) else None)
    Path(results).mkdir(parents=True, exist_ok=True)
    Path(results, "environment.properties").write_text(
        "".join(f"{k} = {v}\n" for k, v in props.items()))
