"""``harness bisect GOOD BAD -- PYTEST-ARGS``: the commit that broke a scenario, found with
``git bisect run``, at the cost of the stages that commit's neighbours changed.

At every commit git checks out, one step (``python -m harness.cli.bisect step``) runs pytest with
PYTEST-ARGS, on the run's store. A stage's snapshot is stored under a key that hashes its
inputs (`harness.model.keys`), not the commit: a commit that left a stage's files alone finds its
snapshot in the store and restores it, and only a stage whose inputs the commit changed is
built (once per distinct key: a later step with the same key restores it too). A bisect
over fifty commits that touched one stage builds that stage a few times and nothing else.

pytest's verdict becomes git's: passed is good (0), failed is bad (1); a commit whose tests
cannot run (a usage error, nothing collected, pytest's own error) is skipped (125); an
interrupted run stops the bisect. Each step appends what it saw to
``.git/harness-bisect.jsonl``: the commit, the verdict, the stages it built, and every
stage's key and inputs there. At the end, the first bad commit is named with the stages
whose key it changed (and which of their inputs), and the bisect's builds are counted. The
repository goes back to where it was (``git bisect reset``), whatever happened.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.cli import args as cli_args
from harness.core import proc
from harness.core.errors import HarnessError, UsageError
from harness.model.keys import changes

RECORD = "harness-bisect.jsonl"
GOOD, BAD, SKIP, ABORT = 0, 1, 125, 128
VERDICT = {0: GOOD, 1: BAD, 2: ABORT}  # pytest's exit code -> git bisect run's; others: SKIP
BUILT = re.compile(r"stage (\S+): (?:built \S+ in|build failed)")


def git(directory: Path, *args: str, check: bool = True) -> str:
    """``git ARGS`` in ``directory``; its stdout, stripped (a `UsageError` with git's words)."""
    with proc.spawn(["git", *args], cwd=directory, env=dict(os.environ)) as child:
        out, err = child.communicate()
    if check and child.returncode != 0:
        raise UsageError(f"`git {' '.join(args)}` in {directory} failed: "
                         f"{(err or out).decode(errors='replace').strip()[-500:]}")
    return out.decode(errors="replace").strip()


def stage_inputs(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """Every stage's inputs at the checked-out commit (`harness.model.stage.Pipeline.inputs`), with
    its key under ``"key"``; empty when the pipeline does not load there."""
    try:
        pipeline = cli_args.pipeline(args)
        keys = pipeline.keys()
        return {name: {**pipeline.inputs(name), "key": keys[name]} for name in pipeline.names}
    except (HarnessError, ImportError, SyntaxError):
        return {}


def step(record: Path, words: Sequence[str], store: str | None) -> int:
    """One step of ``git bisect run``: pytest ``words`` at the checked-out commit; append what
    it saw to ``record``; git's verdict."""
    here = Path.cwd()
    commit = git(here, "rev-parse", "HEAD")
    seen = stage_inputs(argparse.Namespace(command="bisect", store=store, pipeline=None))
    argv = [sys.executable, "-m", "pytest", *([f"--store={store}"] if store else []), *words]
    print(f"harness bisect: {commit[:12]}: {' '.join(argv[1:])}", flush=True)
    lines: list[str] = []
    with proc.spawn(argv, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stderr=subprocess.STDOUT,
                    stdin=None) as child:
        assert child.stdout is not None
        for raw in child.stdout:
            line = raw.decode(errors="replace")
            lines.append(line)
            sys.stdout.write(line)
        status = child.wait()
    # a stage is built once per run; its line shows again in a failed test's captured log
    built = list(dict.fromkeys(m.group(1) for line in lines for m in [BUILT.search(line)] if m))
    verdict = VERDICT.get(status, SKIP)
    with record.open("a") as out:
        out.write(json.dumps({"commit": commit, "pytest": status, "verdict": verdict, "built": built,
                              "stages": seen}) + "\n")
    return verdict


@dataclass(frozen=True)
class Outcome:
    """A bisect's end: the first bad commit, what it changed, what the steps built."""

    first_bad: str
    subject: str
    changed: Mapping[str, list[str]]  # stage -> its own inputs that changed (empty: chained only)
    tested: int
    builds: Mapping[str, int]  # stage -> how many times a step built it


def run(directory: Path, good: str, bad: str, words: Sequence[str], store: str | None,
        say: Callable[[str], None] = print) -> Outcome:
    """Bisect ``good``..``bad`` of the repository holding ``directory`` (the project's): see
    the module's documentation."""
    top = Path(git(directory, "rev-parse", "--show-toplevel"))
    if git(top, "status", "--porcelain", "--untracked-files=no"):
        raise UsageError(f"{top} has uncommitted changes: commit or stash them first (git bisect "
                         "checks out other commits)")
    good, bad = git(top, "rev-parse", "--verify", f"{good}^{{commit}}"), \
        git(top, "rev-parse", "--verify", f"{bad}^{{commit}}")
    record = Path(git(top, "rev-parse", "--absolute-git-dir")) / RECORD
    record.unlink(missing_ok=True)
    step_argv = [sys.executable, "-m", "harness.cli.bisect", "step", str(record),
                 *([f"--store={store}"] if store else []), "--", *words]
    git(top, "bisect", "start", bad, good)
    try:
        with proc.spawn(["git", "bisect", "run", *step_argv], cwd=directory, env=dict(os.environ),
                        stdout=None, stderr=None, stdin=None) as child:
            status = child.wait()
        first = git(top, "rev-parse", "--verify", "-q", "refs/bisect/bad", check=False)
        if status != 0 or not first:
            raise HarnessError(f"git bisect run stopped (exit code {status}) before it found the first "
                               f"bad commit: see its output above; `git bisect log` in {top}")
        steps = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
        seen = {s["commit"]: s["stages"] for s in steps}
        parent = git(top, "rev-parse", f"{first}^")
        for commit in (first, parent):  # bisect may conclude on a commit it never tested
            if commit not in seen:
                git(top, "checkout", "-q", "--detach", commit)
                seen[commit] = _inputs_in(directory, store)
        changed = {}
        for stage, now in seen[first].items():
            before = seen[parent].get(stage)
            if before is None or before.get("key") != now.get("key"):
                changed[stage] = [c for c in changes(before or {}, now) if not c.startswith(
                    ("parent stage", "harness build code", "key"))]
        builds = collections.Counter(stage for s in steps for stage in s["built"])
        return Outcome(first, git(top, "log", "-1", "--format=%s", first), changed, len(steps), builds)
    finally:
        git(top, "bisect", "reset", check=False)


def _inputs_in(directory: Path, store: str | None) -> dict[str, dict[str, str]]:
    """`stage_inputs` at the commit checked out in ``directory``, in a process of its own (this
    one imported the pipeline of another commit)."""
    argv = [sys.executable, "-m", "harness.cli.bisect", "inputs", *([f"--store={store}"] if store else [])]
    with proc.spawn(argv, cwd=directory, env=dict(os.environ)) as child:
        out, _ = child.communicate()
    return dict(json.loads(out or b"{}"))


def report(outcome: Outcome) -> list[str]:
    """What `harness bisect` prints at its end."""
    lines = [f"first bad commit: {outcome.first_bad[:12]} {outcome.subject}"]
    own = {s: c for s, c in outcome.changed.items() if c}
    chained = [s for s, c in outcome.changed.items() if not c]
    if own:
        lines += [f"  it changed the key of stage {s}: {'; '.join(c)}" for s, c in own.items()]
        if chained:
            lines.append(f"  and so of the stages built on it: {', '.join(chained)}")
    elif chained:
        lines.append(f"  it changed the keys of stages {', '.join(chained)} through the harness's build code")
    else:
        lines.append("  it changed no stage's key: the regression is in the scenarios or the harness")
    built = ", ".join(f"{s} {n} time(s)" for s, n in outcome.builds.items()) or "nothing"
    lines.append(f"{outcome.tested} commit(s) tested; built {built}; every other stage was restored "
                 "from the store")
    return lines


def main(argv: Sequence[str]) -> int:
    """``python -m harness.cli.bisect step RECORD [--store DIR] -- PYTEST-ARGS`` (one step of
    ``git bisect run``) or ``inputs [--store DIR]`` (the stages' inputs here, as JSON)."""
    words = list(argv)
    pytest_args = words[words.index("--") + 1:] if "--" in words else []
    words = words[: words.index("--")] if "--" in words else words
    store = next((w.split("=", 1)[1] for w in words if w.startswith("--store=")), None)
    if words[:1] == ["inputs"]:
        print(json.dumps(stage_inputs(argparse.Namespace(command="bisect", store=store, pipeline=None))))
        return 0
    try:
        return step(Path(words[1]), pytest_args, store)
    except KeyboardInterrupt:
        return ABORT


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
