"""The mutation run: every mutant against the scenarios, and which scenario killed it.

Each mutant gets a pytest run of its own (``pytest SCENARIOS --mutant=NAME -x``), several
at once (one per core by default), all on the same store: the stages are built once and
restored for every run, a build-time mutant's variant is built once and cached. A run
stops at its first failing scenario. A mutant is

- KILLED when a scenario *failed* (an assertion: the lab misbehaved and a test saw it) and,
  run again on the lab without any mutant, passed (`confirm`);
- SURVIVED when every selected scenario passed: no scenario watches what it breaks;
- BROKEN when its lab could not be built, booted or mutated, a test ended in a harness
  error, or the test that failed also fails without the mutant (that failure is the suite's,
  not the mutant's): never counted as killed;
- EQUIVALENT when its declaration says no scenario can tell it apart (not run, not counted).

The table goes to the terminal, to ``reports/mutants.json`` and, as one allure result per
mutant (suite "mutation run"), into the HTML report.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import enum
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.core import proc
from harness.core.log import format_elapsed
from harness.model.mutant import Mutant

BASELINE = "_without-mutant"  # reports/mutants/<this>: the killers' run on the unmutated lab
PYTEST = (sys.executable, "-m", "pytest")
RESULT_PREFIX = "mutant-"  # allure result files of the mutation run: mutant-<name>-result.json
MUTANT_TIMEOUT = 900.0  # one mutant's pytest run; a hung lab must not hold the whole run


class Status(enum.StrEnum):
    """What a mutant's run ended as."""

    KILLED = "killed"
    SURVIVED = "SURVIVED"
    BROKEN = "broken"
    EQUIVALENT = "equivalent"


@dataclass(frozen=True)
class Outcome:
    """One row of the table: a mutant, how its run ended, by which test, in how long."""

    mutant: str
    stage: str
    regression: str
    status: Status
    test: str = ""      # the scenario that killed it, or that broke
    message: str = ""   # what that scenario said (or why it broke, or why it is equivalent)
    seconds: float = 0.0


def judge(mutant: str, stage: str, regression: str, exit_code: int, lines: Iterable[str],
          output: str = "", seconds: float = 0.0) -> Outcome:
    """The outcome of one mutant's pytest run, from its exit code and its ``--mutant-log`` lines.

    >>> line = '{"test": "t", "when": "call", "outcome": "failed", "message": "x"}'
    >>> judge("m", "gw", "r", 1, [line]).status
    <Status.KILLED: 'killed'>
    """
    records = _records(lines)

    def row(status: Status, test: str = "", message: str = "") -> Outcome:
        return Outcome(mutant, stage, regression, status, test, message, round(seconds, 1))

    for record in records:
        if record["outcome"] == "failed":
            return row(Status.KILLED, record["test"], record["message"])
        if record["outcome"] == "broken":
            return row(Status.BROKEN, record["test"], f"{record['when']}: {record['message']}")
    passed = sum(r["outcome"] == "passed" for r in records)
    if exit_code == 0 and passed:
        return row(Status.SURVIVED, message=f"{passed} scenario(s) passed")
    tail = " | ".join(line.strip() for line in output.strip().splitlines()[-3:])
    why = "no scenario ran" if exit_code in (0, 5) else f"pytest exited {exit_code}"
    return row(Status.BROKEN, message=f"{why}: {tail}"[:500])


def _records(lines: Iterable[str]) -> list[dict[str, str]]:
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:  # a line cut short by a killed run: what it said is lost anyway
            continue
    return records


def confirmed(outcomes: Sequence[Outcome], baseline: Iterable[str]) -> list[Outcome]:
    """``outcomes`` with each kill checked against ``baseline``, the ``--mutant-log`` lines of
    the killing tests run on the lab without any mutant: a kill stands only if its test passed
    there; a test that failed there too (or never ran) makes the mutant BROKEN, since what
    failed is the suite (a flaky or broken test), not the mutant.

    >>> killed = Outcome("m", "gw", "r", Status.KILLED, "t", "x")
    >>> [o.status for o in confirmed([killed], ['{"test": "t", "outcome": "failed", "when": "call"}'])]
    [<Status.BROKEN: 'broken'>]
    """
    verdict: dict[str, str] = {}
    for record in _records(baseline):
        if verdict.get(record["test"], "passed") == "passed":  # a failed phase outweighs a pass
            verdict[record["test"]] = record["outcome"]
    result = []
    for o in outcomes:
        seen = verdict.get(o.test, "not run")
        if o.status is Status.KILLED and seen != "passed":
            said = {"failed": "fails too", "broken": "breaks too"}.get(seen, "did not run")
            o = dataclasses.replace(o, status=Status.BROKEN,
                                    message=f"{o.message} -- without any mutant, this test {said}")
        result.append(o)
    return result


@dataclass(frozen=True)
class Summary:
    """The ratio that decides the run: killed over counted (equivalent mutants not counted)."""

    outcomes: tuple[Outcome, ...]
    min_kill: float

    @property
    def counted(self) -> int:
        return sum(o.status is not Status.EQUIVALENT for o in self.outcomes)

    @property
    def killed(self) -> int:
        return sum(o.status is Status.KILLED for o in self.outcomes)

    @property
    def ratio(self) -> float:
        return self.killed / self.counted if self.counted else 1.0

    @property
    def passed(self) -> bool:
        return self.ratio >= self.min_kill


def table(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as a plain-text table, one line per mutant."""
    width = max([len(o.mutant) for o in outcomes] + [6])
    lines = [f"{'MUTANT':{width}}  {'STAGE':6}  {'RESULT':10}  {'TIME':>6}  KILLED BY / WHY"]
    for o in outcomes:
        detail = o.test + (f": {o.message}" if o.message else "") if o.test else o.message
        lines.append(f"{o.mutant:{width}}  {o.stage:6}  {o.status.value:10}  "
                     f"{format_elapsed(o.seconds):>6}  {detail[:160]}")
    return "\n".join(lines)


def write_reports(summary: Summary, reports: Path, *, seconds: float) -> Path:
    """``reports/mutants.json`` and one allure result per mutant; returns the JSON's path."""
    reports.mkdir(parents=True, exist_ok=True)
    path = reports / "mutants.json"
    path.write_text(json.dumps({
        "killed": summary.killed, "counted": summary.counted, "ratio": round(summary.ratio, 4),
        "min_kill": summary.min_kill, "passed": summary.passed, "seconds": round(seconds, 1),
        "mutants": [asdict(o) for o in summary.outcomes]}, indent=2) + "\n")
    results = reports / "allure-results"
    results.mkdir(parents=True, exist_ok=True)
    for old in results.glob(f"{RESULT_PREFIX}*-result.json"):
        old.unlink()
    now = int(time.time() * 1000)
    status = {Status.KILLED: "passed", Status.SURVIVED: "failed", Status.BROKEN: "broken",
              Status.EQUIVALENT: "skipped"}
    for o in summary.outcomes:
        detail = {Status.KILLED: f"killed by {o.test}: {o.message}",
                  Status.SURVIVED: f"SURVIVED: {o.message}; no scenario watches this behaviour",
                  Status.BROKEN: f"broken ({o.test or 'run'}): {o.message}",
                  Status.EQUIVALENT: f"equivalent: {o.message}"}[o.status]
        result = {"uuid": f"{RESULT_PREFIX}{o.mutant}", "historyId": f"{RESULT_PREFIX}{o.mutant}",
                  "name": f"{o.mutant}: {o.regression}", "fullName": f"mutation run::{o.mutant}",
                  "status": status[o.status], "statusDetails": {"message": detail},
                  "description": o.regression, "start": now, "stop": now + int(o.seconds * 1000),
                  "labels": [{"name": "parentSuite", "value": "mutation run"},
                             {"name": "suite", "value": f"stage {o.stage}"},
                             {"name": "tag", "value": o.status.value}]}
        (results / f"{RESULT_PREFIX}{o.mutant}-result.json").write_text(json.dumps(result))
    return path


def load(reports: Path) -> dict[str, Outcome]:
    """The outcomes of the last mutation run written under ``reports``, by mutant (none: {})."""
    try:
        rows = json.loads((reports / "mutants.json").read_text())["mutants"]
        return {r["mutant"]: Outcome(**{**r, "status": Status(r["status"])}) for r in rows}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def markdown(mutants: Sequence[tuple[str, Mutant]], last: Mapping[str, Outcome]) -> str:
    """A reference page: every mutant, what it stands for, and how the last run judged it."""
    lines = ["| mutant | stage | made | regression | last run |", "| --- | --- | --- | --- | --- |"]
    for stage, m in mutants:
        found = last.get(m.name)
        if m.equivalent:
            verdict = f"equivalent: {m.equivalent}"
        elif found is None:
            verdict = "not run yet"
        elif found.status is Status.KILLED:
            verdict = f"killed by `{found.test.rsplit('/', 1)[-1]}`"
        else:
            verdict = f"**{found.status.value}**: {found.message}"
        made = "at build" if m.at_build else "on the booted lab"
        lines.append(f"| `{m.name}` | {stage} | {made} | {m.regression} | "
                     f"{verdict.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def previous_killers(reports: Path) -> dict[str, str]:
    """The test that killed each mutant in the last run (run first this time: a quick kill)."""
    return {name: o.test for name, o in load(reports).items() if o.status is Status.KILLED and o.test}


@dataclass(frozen=True)
class Run:
    """How to run one mutant's scenarios: the pytest arguments every run shares."""

    scenarios: tuple[str, ...]
    pipeline: str
    store: str | None
    reports: Path
    extra: tuple[str, ...] = ()

    def argv(self, name: str, log: Path, first: str | None) -> list[str]:
        argv = [*PYTEST, *self.scenarios, f"--mutant={name}", "-x",
                *self._options(log, self.reports / "mutants" / name)]
        if first:
            argv.append(f"--first={first}")
        return [*argv, *self.extra]

    def baseline_argv(self, tests: Sequence[str], log: Path) -> list[str]:
        """``tests`` (node ids) on the lab as built, without any mutant, each to its end."""
        return [*PYTEST, *tests, *self._options(log, self.reports / "mutants" / BASELINE), *self.extra]

    def _options(self, log: Path, reports: Path) -> list[str]:
        options = [f"--mutant-log={log}", f"--pipeline={self.pipeline}", "-q", f"--reports={reports}"]
        return [*options, f"--store={self.store}"] if self.store else options


class _Runner:
    """Runs mutants' pytest runs side by side; an interrupt stops every one still running
    (SIGTERM: each tears its labs down as on Ctrl-C)."""

    def __init__(self, run: Run, first: Mapping[str, str]) -> None:
        self.run = run
        self.first = first
        self.children: set[subprocess.Popen[bytes]] = set()
        self.stopping = False
        self.lock = threading.Lock()

    def one(self, stage: str, mutant: Mutant) -> Outcome:
        """Run the scenarios against ``mutant``; output in reports/mutants/<name>/pytest.log."""
        if mutant.equivalent:
            return Outcome(mutant.name, stage, mutant.regression, Status.EQUIVALENT,
                           message=mutant.equivalent)
        directory = self.run.reports / "mutants" / mutant.name
        directory.mkdir(parents=True, exist_ok=True)
        log, output = directory / "outcomes.jsonl", directory / "pytest.log"
        log.unlink(missing_ok=True)
        argv = self.run.argv(mutant.name, log, self.first.get(mutant.name))
        began = time.monotonic()
        code = self.pytest(argv, output)
        lines = log.read_text().splitlines() if log.exists() else []
        return judge(mutant.name, stage, mutant.regression, code, lines, output.read_text(),
                     time.monotonic() - began)

    def pytest(self, argv: Sequence[str], output: Path) -> int:
        """Run ``argv`` (a pytest run), its output into ``output``; its exit code, -1 if it
        gave none within `MUTANT_TIMEOUT`."""
        with open(output, "w") as out:
            out.write(f"$ {shlex.join(argv)}\n")
            out.flush()
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            # its own process group: Ctrl-C reaches this process, which stops each run once
            # (SIGTERM: it tears its labs down), instead of interrupting their teardown twice
            with proc.spawn(list(argv), env=env, stdout=out.fileno(), stderr=out.fileno(), grace=30.0,
                            own_group=True) as child:
                with self.lock:
                    if self.stopping:
                        raise KeyboardInterrupt
                    self.children.add(child)
                try:
                    return child.wait(timeout=MUTANT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    out.write(f"\nharness mutate: no result within {MUTANT_TIMEOUT:.0f}s: stopped\n")
                    return -1
                finally:
                    with self.lock:
                        self.children.discard(child)

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            for child in self.children:
                child.send_signal(signal.SIGTERM)


def run_all(run: Run, mutants: Sequence[tuple[str, Mutant]], *, jobs: int,
            first: Mapping[str, str] | None = None,
            progress: Callable[[int, int, Outcome], None] | None = None) -> list[Outcome]:
    """Every mutant of ``mutants`` ((stage, mutant) pairs), ``jobs`` at a time; in their order.

    ``first`` names, per mutant, a test to run before the others (the one that killed it last
    time: most mutants then die in seconds)."""
    runner = _Runner(run, first or {})
    done: dict[str, Outcome] = {}

    def one(stage: str, mutant: Mutant) -> None:
        try:
            outcome = runner.one(stage, mutant)
        except Exception as exc:  # one mutant's trouble is its row, not the end of the run
            outcome = Outcome(mutant.name, stage, mutant.regression, Status.BROKEN,
                              message=f"harness mutate: {exc}")
        with runner.lock:
            done[mutant.name] = outcome
            if progress is not None:
                progress(len(done), len(mutants), outcome)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs))
    futures = [pool.submit(one, stage, m) for stage, m in mutants]
    try:
        for future in concurrent.futures.as_completed(futures):
            future.result()
    except BaseException:
        for future in futures:
            future.cancel()
        runner.stop()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [done[m.name] for _, m in mutants]


def confirm(run: Run, outcomes: Sequence[Outcome]) -> list[Outcome]:
    """`confirmed` ``outcomes``: every killing test, once more, on the lab without a mutant, in
    one pytest run (output in reports/mutants/_without-mutant/)."""
    killers = sorted({o.test for o in outcomes if o.status is Status.KILLED})
    if not killers:
        return list(outcomes)
    runner = _Runner(run, {})
    directory = run.reports / "mutants" / BASELINE
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "outcomes.jsonl"
    log.unlink(missing_ok=True)
    try:
        runner.pytest(run.baseline_argv(killers, log), directory / "pytest.log")
    except BaseException:
        runner.stop()
        raise
    return confirmed(outcomes, log.read_text().splitlines() if log.exists() else [])
