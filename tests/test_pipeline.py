"""The stage pipeline end to end: the toy pipeline (tests/toy.py) run by pytest (pytester)
on real btrfs and nspawn."""

from __future__ import annotations

import json
import re
import sys

import pytest

from harness.core import proc
from tests.toy import Toy

pytestmark = pytest.mark.integration


def test_first_run_builds_and_second_reuses(toy: Toy) -> None:
    first = toy.run()
    first.assert_outcomes(passed=5)
    assert first.built == ["alpha", "beta"]
    first.stdout.fnmatch_lines(["*restored bootstrap; built alpha, beta*"])
    assert toy.published() == ["alpha", "beta", "bootstrap"]
    second = toy.run()
    second.assert_outcomes(passed=5)
    assert second.built == []
    second.stdout.fnmatch_lines(["*restored bootstrap, alpha, beta; built nothing*"])


def test_editing_a_stage_rebuilds_it_and_the_later_ones_only(toy: Toy) -> None:
    toy.run().assert_outcomes(passed=5)
    toy.write(alpha=1, beta=2)
    assert toy.run().built == ["beta"]
    toy.write(alpha=2, beta=2)
    result = toy.run()
    result.assert_outcomes(passed=5)
    assert result.built == ["alpha", "beta"]


def test_needs_come_from_the_selected_tests(toy: Toy) -> None:
    result = toy.run("-k", "test_alpha")
    result.assert_outcomes(passed=1, deselected=4)
    assert result.built == ["alpha"]
    assert toy.published() == ["alpha", "bootstrap"]


def test_from_snapshot_rebuilds_exactly_the_later_stages(toy: Toy) -> None:
    toy.run().assert_outcomes(passed=5)
    result = toy.run("--from-snapshot=alpha")
    result.assert_outcomes(passed=5)
    assert result.built == ["beta"]
    result.stdout.fnmatch_lines(["*restored bootstrap, alpha; built beta*"])
    only_alpha = toy.run("-k", "test_alpha", "--from-snapshot=bootstrap")
    assert only_alpha.built == ["alpha"]


def test_from_snapshot_of_an_unknown_stage_lists_stages_and_snapshots(toy: Toy) -> None:
    result = toy.run("--from-snapshot=gamma")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--from-snapshot=gamma: unknown stage; the stages are "
                                 "bootstrap, alpha, beta; with snapshots: bootstrap*"])


def test_a_failing_stage_publishes_nothing(toy: Toy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOY_FAIL", "beta")
    failed = toy.run()
    failed.assert_outcomes(passed=1, errors=4)  # test_alpha still ran, on the alpha snapshot
    failed.stdout.fnmatch_lines(["*beta: command `logger -t toy * exit 3` failed (exit code 3)*",
                                 "*each machine's journal (or, if it died, its console) is in the build log*",
                                 f"*stage beta's build log: {toy.store.root}/logs/beta/*.log"])
    assert toy.published() == ["alpha", "bootstrap"]
    # why it failed, from the machine's own journal, read before its lab went; every machine's
    # whole, and the build's later lines after them (appended, not written over them)
    build_log = next((toy.store.root / "logs/beta").glob("*.log")).read_text()
    header = r"\n---- (\w+)'s journal since the build's lab booted \(last \d+ lines\) ----\n"
    sections = re.split(header, build_log)
    journals = dict(zip(sections[1::2], sections[2::2], strict=True))
    assert sorted(journals) == ["alpha", "beta"]
    assert re.search(r"beta toy\[\d+\]: beta gives up: no frobnicator", journals["beta"])
    assert "Startup finished" in journals["alpha"]  # alpha's from its boot on
    assert "stage beta: build failed after" in sections[-1].splitlines()[-1]
    assert not list((toy.store.root / ".tmp").iterdir())
    assert toy.store.owners() == []  # no lab, no clone left
    monkeypatch.delenv("TOY_FAIL")
    healed = toy.run()
    healed.assert_outcomes(passed=5)
    assert healed.built == ["beta"]


def test_a_build_writes_its_lines_to_a_log_of_its_own_and_the_report_names_it(toy: Toy) -> None:
    result = toy.run("-k", "test_alpha", "-rP")  # -rP: a passed test's captured sections too
    result.assert_outcomes(passed=1)
    [kept] = (toy.store.root / "logs" / "alpha").glob("*.log")  # logs/<stage>/<key>.log
    assert "stage alpha: mark alpha as built done in" in kept.read_text()
    setup = result.stdout.str().split("Captured log setup", 1)[1]  # what test_alpha's report holds
    assert f"log {kept})" in setup and "stage alpha: built alpha/" in setup
    assert "mark alpha as built" not in setup  # the build's own lines are in the file only
    assert "alpha: boot done" in kept.read_text()  # its machines booting side by side, too
    assert setup.count("alpha: boot done") == 1  # in the report: the test's lab's boot alone


def test_xdist_workers_build_each_stage_once(toy: Toy) -> None:
    result = toy.run("-n", "2")
    result.assert_outcomes(passed=5)
    assert sorted(result.built) == ["alpha", "beta"]  # once each, though both workers need both


def test_keep_lab_leaves_it_running_until_destroy(toy: Toy) -> None:
    from harness.machines import lab as labs
    from tests.conftest import NOTHING, traces_of

    result = toy.run("-k", "test_alpha", "--keep-lab")
    result.assert_outcomes(passed=1, deselected=4)
    result.stdout.fnmatch_lines(["*kept running*", "*alpha: nsenter --target=* --all -- /bin/bash -l*"])
    kept = [r for r in labs.recorded_labs() if r["store"] == str(toy.store.root)]
    assert len(kept) == 1 and kept[0]["pid"] is None
    lab_id, leader = str(kept[0]["id"]), kept[0]["machines"]["alpha"]  # type: ignore[index]
    work = toy.store.root / "work" / lab_id
    try:  # pytest has exited; the machine still runs and still has its state
        marker = proc.run(["nsenter", f"--target={leader}", "--all", "--", "cat", "/etc/alpha-built"])
        assert marker.stdout == "1\n"
        assert len(traces_of(lab_id, work).nspawn) == 1
    finally:
        destroyed = proc.run([sys.executable, "-m", "harness.cli", "--store", str(toy.store.root),
                              "destroy"], check=False)
    assert lab_id in destroyed.stdout, destroyed.stderr
    assert traces_of(lab_id, work) == NOTHING


def test_stage_steps_and_waits_are_allure_steps(toy: Toy) -> None:
    toy.pytester.makepyfile(test_wait="""
def test_waits(alpha):
    alpha.wait_for_unit("systemd-journald.service")
""")
    results = toy.pytester.path / "allure"
    run = toy.run("test_wait.py", f"--alluredir={results}", "-v")  # -v: every step, as lines
    run.assert_outcomes(passed=1)
    run.stdout.fnmatch_lines(["*stage alpha: mark alpha as built done in *s",
                              "*alpha: wait for unit systemd-journald.service done in *s"])
    quiet = toy.run("test_wait.py")  # by default: one line per stage and per lab, no steps
    quiet.stdout.fnmatch_lines(["[[]harness[]] stage bootstrap: reused bootstrap/*",
                                "[[]harness[]] stage alpha: reused alpha/*",
                                "[[]harness[]] lab *: 1 machine(s) up from alpha/* in *s"])
    assert "wait for unit" not in quiet.stdout.str().split("= FAILURES =")[0]
    steps = []
    for path in results.glob("*-result.json"):
        report = json.loads(path.read_text())
        steps += _step_names(report)
        steps += [name for f in report.get("befores", []) for name in _step_names(f)]
    containers = [json.loads(p.read_text()) for p in results.glob("*-container.json")]
    steps += [name for c in containers for f in c.get("befores", []) for name in _step_names(f)]
    assert "stage alpha: build" in steps and "stage alpha: mark alpha as built" in steps
    assert "alpha: wait for unit systemd-journald.service" in steps


def _step_names(node: dict) -> list[str]:  # type: ignore[type-arg]
    names = []
    for child in node.get("steps", []):
        names.append(child["name"])
        names += _step_names(child)
    return names
