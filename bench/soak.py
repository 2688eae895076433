"""Soak: the whole scenario suite N times in a row, with one and with two workers, and each
test's failures counted: a suite that fails on a test no change could affect is not yet one a
nightly job can trust (bench/README.md, "Flakiness").

Run as root from the repository, on a warm store, with the machine otherwise idle:

    .venv/bin/python -m bench.soak --runs 20              # -n 1 and -n 2, one run of each in turn
    .venv/bin/python -m bench.soak --runs 5 --workers 2 -- -k faults
    .venv/bin/python -m bench.soak --runs 20 --resume      # go on with the soak.json left

A soak of 20 + 20 runs takes longer than many a machine's slot: ``--stop-by HH:MM`` starts no
run that the slowest of its kind so far says would end later, Ctrl-C or SIGTERM stops the run
under way as a user's Ctrl-C does (its labs torn down; the run not counted), and ``--resume``
goes on from the runs ``soak.json`` holds (or the file named), if they ran the same code (the
trees of ``CODE``: the harness, the reference lab and what pins their dependencies; a clean
checkout of them, untracked files included), so the count stays one of consecutive runs of
one code while commits of tests, bench or docs land (this file included: how it runs pytest
is not the code under soak). A soak that outlasts a session is committed as
``bench/soak.json`` and resumed from there (``--resume bench/soak.json``); resumed on another
machine, its count mixes hosts, and ``--stop-by`` goes by the slowest run on either.

Writes ``reports/bench/soak.json`` and ``soak.md`` (the table), keeps each run's
``timings.json`` and each failed run's ``junit.xml``, output, evidence and the host's note of
labs destroyed by another process (``destroyed.log``) under ``reports/bench/soak/<run>/``.
Nothing is asserted: the counts are the figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from harness.cli.bisect import git
from harness.core import proc
from harness.machines.records import DESTROYED_LOG

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Failure:
    """One test's failures over the soak: how many runs, and what it said the first time."""

    test: str
    runs: list[str] = field(default_factory=list)
    first: str = ""


@dataclass
class Run:
    """One pytest run of the soak."""

    name: str  # n1-03: the workers and the repetition
    seconds: float
    exit_code: int
    tests: int
    failed: list[str]


def failures(junit: Path) -> tuple[int, dict[str, str]]:
    """The number of test cases in ``junit`` and, for each that failed or errored, the first
    line of what it said."""
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    bad: dict[str, str] = {}
    for case in cases:
        for kind in ("failure", "error"):
            found = case.find(kind)
            if found is not None:
                test = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
                bad.setdefault(test, (found.get("message") or kind).strip().splitlines()[0][:300])
    return len(cases), bad


def one_run(name: str, workers: int, extra: Sequence[str], keep: Path) -> tuple[Run, dict[str, str]]:
    """One whole suite run (pytest's cache on, as a user's run is); a failed run's junit,
    output and evidence kept under ``keep/name``."""
    with tempfile.TemporaryDirectory() as reports:
        argv = [sys.executable, "-m", "pytest", "scenarios", "-q", f"--reports={reports}",
                *(["-n", str(workers)] if workers > 1 else []), *extra]
        began = time.monotonic()
        # its own group: a Ctrl-C reaches the soak alone, which hands the run one SIGTERM
        with proc.spawn(argv, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, own_group=True) as child:
            try:
                stdout, stderr = child.communicate()
            except KeyboardInterrupt:
                print(f"soak: stopping {name} (SIGTERM to {child.pid}: it tears its labs down)", flush=True)
                child.terminate()
                child.communicate()  # its output read meanwhile: a full pipe would stall its teardown
                raise
        done = subprocess.CompletedProcess(argv, child.returncode, stdout.decode(errors="replace"),
                                           stderr.decode(errors="replace"))
        seconds = time.monotonic() - began
        junit = Path(reports) / "junit.xml"
        tests, bad = failures(junit) if junit.exists() else (0, {"(no junit.xml)": done.stdout[-300:]})
        if done.returncode != 0 and not bad:
            bad = {"(the run)": f"pytest exited {done.returncode}: {done.stdout.strip()[-300:]}"}
        kept = keep / name
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir(parents=True)
        if (Path(reports) / "timings.json").exists():  # every run's: where its time went
            shutil.copy(Path(reports) / "timings.json", kept / "timings.json")
        if bad:
            (kept / "pytest.log").write_text(done.stdout + done.stderr)
            if DESTROYED_LOG.exists():  # labs destroyed by another process than their owner
                shutil.copy(DESTROYED_LOG, kept / "destroyed.log")
            for piece in ("junit.xml", "evidence"):
                source = Path(reports) / piece
                if source.is_dir():
                    shutil.copytree(source, kept / piece)
                elif source.exists():
                    shutil.copy(source, kept / piece)
    return Run(name, round(seconds, 1), done.returncode, tests, sorted(bad)), bad


# What a scenario run imports or installs: a soak counts runs of this code, whatever else lands.
CODE = ("harness", "stages", "scenarios", "conftest.py", "pyproject.toml", "requirements.lock")


def checkout(repo: Path = REPO) -> tuple[str, str]:
    """The commit the soak runs, and its code: the git trees of ``CODE`` in one hash, with
    ``+dirty`` if a file there differs from them or is untracked (a soak resumed must be of the
    same code)."""
    dirty = git(repo, "status", "--porcelain", "--untracked-files=all", "--", *CODE)
    trees = git(repo, "ls-tree", "HEAD", "--", *CODE)  # names and object ids; a path gone: left out
    code = hashlib.sha256(trees.encode()).hexdigest()[:16]
    return git(repo, "rev-parse", "HEAD"), code + ("+dirty" if dirty else "")


def resumed(path: Path, code: str, extra: Sequence[str]) -> tuple[str, str, list[Run], dict[str, Failure]]:
    """The soak left in ``path``: when and at which commit it began, its runs and failures;
    SystemExit with what to do if there is none, or it ran other code or other arguments."""
    if not path.exists():
        raise SystemExit(f"bench.soak: --resume, but there is no {path}: start without --resume")
    left = json.loads(path.read_text())
    if "code" not in left:
        raise SystemExit(f"bench.soak: {path} was written before soaks recorded their code: its runs "
                         "cannot be matched to this checkout's; start without --resume")
    if left["code"] != code or code.endswith("+dirty"):
        raise SystemExit(f"bench.soak: {path} is a soak of code {left.get('code')} (commit "
                         f"{str(left.get('commit'))[:12]}), the checkout's is {code}: resume from a clean "
                         f"checkout of that code ({', '.join(CODE)}), or start without --resume")
    if list(left.get("pytest_args", [])) != list(extra):
        raise SystemExit(f"bench.soak: {path} ran pytest with {left.get('pytest_args')}, not {list(extra)}: "
                         "give the same arguments, or start without --resume")
    runs = [Run(**r) for r in left["runs"]]
    found = {f["test"]: Failure(**f) for f in left["failures"]}
    return left["when"], left["commit"], runs, found


def deadline(clock: str, now: datetime) -> datetime:
    """``HH:MM`` (the host's local time) as the next such moment after ``now``, within a day."""
    try:
        hour, minute = (int(part) for part in clock.split(":"))
        then = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError:
        raise SystemExit(f"bench.soak: --stop-by {clock}: give a time of day as HH:MM, e.g. 05:30") from None
    return then if then > now else then + timedelta(days=1)


def fits(runs: Sequence[Run], name: str, now: datetime, stop_by: datetime | None) -> bool:
    """Whether run ``name`` (n2-07) would end by ``stop_by``, if it takes as long as the
    slowest earlier run of its worker count (none yet: it is started)."""
    kind = name.split("-")[0]
    slowest = max((r.seconds for r in runs if r.name.startswith(f"{kind}-")), default=0.0)
    return stop_by is None or now + timedelta(seconds=slowest) <= stop_by


def markdown(runs: Sequence[Run], found: dict[str, Failure], when: str, extra: Sequence[str],
             commit: str) -> str:
    """The soak as a page: runs per worker count, and every test that failed, how often."""
    command = " ".join(["pytest scenarios", *extra])
    lines = [f"Soak of {when} at {commit[:12]}: `{command}`\n",
             "| workers | runs | failed runs | tests per run | median wall time |",
             "| --- | --- | --- | --- | --- |"]
    for workers in sorted({r.name.split("-")[0] for r in runs}):
        mine = [r for r in runs if r.name.startswith(f"{workers}-")]
        lines.append(f"| {workers[1:]} | {len(mine)} | {sum(bool(r.failed) for r in mine)} | "
                     f"{max(r.tests for r in mine)} | {statistics.median(r.seconds for r in mine):.1f} s |")
    lines += ["", "| test | failed in | first message |", "| --- | --- | --- |"]
    lines += [f"| `{f.test}` | {', '.join(f.runs)} | {f.first.replace('|', '/')} |"
              for f in sorted(found.values(), key=lambda f: -len(f.runs))]
    if not found:
        lines.append("| (none) | | |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per worker count (default 20)")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default 1,2)")
    parser.add_argument("--out", default=str(REPO / "reports" / "bench"))
    parser.add_argument("--resume", nargs="?", const="", metavar="SOAK_JSON",
                        help="go on from the runs in OUT/soak.json or SOAK_JSON (same code and arguments)")
    parser.add_argument("--stop-by", metavar="HH:MM",
                        help="start no run that would end after this time of day (then --resume)")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments (-k, --store...)")
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commit, code = checkout()
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    runs: list[Run] = []
    found: dict[str, Failure] = {}
    if args.resume is not None:
        when, commit, runs, found = resumed(Path(args.resume or out / "soak.json"), code, args.pytest_args)
    stop_by = deadline(args.stop_by, datetime.now()) if args.stop_by else None
    done = {r.name for r in runs}
    proc.interrupt_on_sigterm()  # SIGTERM (a job's end) stops the run under way as Ctrl-C does
    order = [(f"n{c}-{rep:02d}", c) for rep in range(1, args.runs + 1) for c in workers]
    for name, count in order:  # one run of each in turn: a slow spell weighs on both
        if name in done:
            continue
        if not fits(runs, name, datetime.now(), stop_by):
            print(f"soak: stopped before {name}, which would end after {args.stop_by}; "
                  "go on with --resume", flush=True)
            break
        try:
            run, bad = one_run(name, count, args.pytest_args, out / "soak")
        except KeyboardInterrupt:
            print(f"soak: interrupted during {name}, which is not counted; go on with --resume", flush=True)
            return 130
        runs.append(run)
        for test, message in bad.items():
            found.setdefault(test, Failure(test, first=message)).runs.append(run.name)
        print(f"soak {run.name}: {run.tests} tests, {len(run.failed)} failed, {run.seconds:.0f}s"
              + (f": {', '.join(run.failed)}" if run.failed else ""), flush=True)
        (out / "soak.json").write_text(json.dumps(
            {"when": when, "commit": commit, "code": code, "pytest_args": args.pytest_args,
             "runs": [asdict(r) for r in runs],
             "failures": [asdict(f) for f in found.values()]}, indent=2) + "\n")
        (out / "soak.md").write_text(markdown(runs, found, when, args.pytest_args, commit))
    print(f"soak: {sum(bool(r.failed) for r in runs)} of {len(runs)} runs failed; table in {out / 'soak.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
