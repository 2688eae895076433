"""Measure the debugging loop (issue 31) in a `harness init` project on a scratch store.

Run as root from the repository: ``.venv/bin/python -m bench.loop [--reps N] [--only WHAT]``. Writes
``reports/bench/loop.json`` and prints the figures; nothing is asserted, the targets are
printed beside them.

- apply: ``harness apply office`` of a one-line change of the script stage's page, in the
  lab ``harness up`` started, ``--reps`` times (each a new line);
- rebuild + resume: the same kind of change the other way, ``harness down`` then ``harness
  up`` (office built under its new key, the lab booted), ``--reps`` times;
- python: the same for a Python stage (``--only python``): office gets a Python step that
  writes the page, and the one-line change is the page's text in that step; ``harness apply``
  builds office again and swaps the server in (`harness.engine.swap`), against rebuild + resume;
- bisect: ``harness bisect`` over sixteen commits after a good one, the eleventh of which
  changes the page; its time, the commits tested and the stage builds, from the record of
  its steps (``.git/harness-bisect.jsonl``).

The scratch store starts with the host's base image (the bootstrap snapshot the project's
key names, from the main store, built there first if it is missing), as the project's first
``pytest`` would find it; it is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.cli.bisect import RECORD
from harness.engine.build.builder import Builder
from harness.machines.store import Store, open_store
from harness.model.pipeline import load_pipeline

REPO = Path(__file__).resolve().parent.parent
PAGE = "stages/office/server/index.html.in"


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


class Project:
    """A `harness init` project under git, run against ``store`` with this checkout's harness."""

    def __init__(self, directory: Path, store: Store) -> None:
        self.directory = directory
        self.store = store
        self.env = {**os.environ, "PYTHONPATH": f"{directory}{os.pathsep}{REPO}",
                    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}

    def run(self, *argv: str) -> str:
        done = subprocess.run(argv, cwd=self.directory, env=self.env, capture_output=True, text=True,
                              timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"bench: `{' '.join(argv)}` failed ({done.returncode}):\n"
                             f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout

    def harness(self, *args: str) -> str:
        return self.run(sys.executable, "-m", "harness.cli", "--store", str(self.store.root), *args)

    def timed(self, *args: str) -> tuple[float, str]:
        began = time.monotonic()
        out = self.harness(*args)
        return time.monotonic() - began, out

    def commit(self, message: str, path: str, text: str) -> None:
        (self.directory / path).write_text(text)
        self.run("git", "add", "-A")
        self.run("git", "commit", "-qm", message)


def summary(values: Sequence[float]) -> dict[str, Any]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "values": [round(v, 3) for v in values]}


def seed(store: Store, project: Path) -> None:
    """Put the project's base image into ``store``: the main store's, built there if missing."""
    sys.path.insert(0, str(project))
    try:
        pipeline = load_pipeline("stages")
    finally:
        sys.path.remove(str(project))
    assert pipeline is not None
    base = Builder(open_store(None), pipeline).ensure(pipeline.names[0])
    store.publish(base.ref, {"base": base.member("base")}, dict(base.meta))


def apply_against_rebuild(demo: Project, reps: int) -> dict[str, Any]:
    up = demo.harness("up")
    lab_id = up.split()[1]
    applies = []
    try:
        for rep in range(reps):
            (demo.directory / PAGE).write_text(f"hello, change {rep}, from @MACHINE@\n")
            applies.append(demo.timed("apply", "office", "--lab", lab_id)[0])
    finally:
        demo.harness("down", lab_id)
    rebuilds = []
    for rep in range(reps):
        (demo.directory / PAGE).write_text(f"hello, rebuilt {rep}, from @MACHINE@\n")
        seconds, out = demo.timed("up")
        rebuilds.append(seconds)
        demo.harness("down", out.split()[1])
    demo.run("git", "checkout", "-q", PAGE)
    a, r = summary(applies), summary(rebuilds)
    return {"apply": a, "rebuild_resume": r, "ratio": a["median"] / r["median"]}


PYTHON_STEP = '''

def page(build: Build) -> None:
    """write the page"""
    build["server"].succeed("echo 'PAGE' > /var/www/html/index.html")
'''


def python_against_rebuild(demo: Project, reps: int) -> dict[str, Any]:
    """`apply_against_rebuild` with office made a Python stage, the change one in its step."""
    office = demo.directory / "stages/office.py"
    original = office.read_text()
    scripted = 'steps=(scripts("office/server", on="server"),)'
    python = original.replace("\n\nSTAGE = ", PYTHON_STEP + "\n\nSTAGE = ").replace(
        scripted, scripted.replace(",)", ", page)"))
    office.write_text(python.replace("PAGE", "python page"))
    up = demo.harness("up")  # office built once as a Python stage
    lab_id = up.split()[1]
    applies = []
    try:
        for rep in range(reps):
            office.write_text(python.replace("PAGE", f"python change {rep}"))
            seconds, out = demo.timed("apply", "office", "--lab", lab_id)
            assert "swapped in server" in out, out
            applies.append(seconds)
    finally:
        demo.harness("down", lab_id)
    rebuilds = []
    for rep in range(reps):
        office.write_text(python.replace("PAGE", f"python rebuilt {rep}"))
        seconds, out = demo.timed("up")
        rebuilds.append(seconds)
        demo.harness("down", out.split()[1])
    office.write_text(original)
    a, r = summary(applies), summary(rebuilds)
    return {"python_apply": a, "python_rebuild_resume": r, "python_ratio": a["median"] / r["median"]}


def bisect(demo: Project) -> dict[str, Any]:
    good = demo.run("git", "rev-parse", "HEAD").strip()
    for number in range(1, 17):
        if number == 11:
            demo.commit("office: a warmer welcome", PAGE, "welcome to @MACHINE@\n")
        else:
            readme = demo.directory / "README.md"
            demo.commit(f"README: line {number}", "README.md", readme.read_text() + f"\n{number}.\n")
    seconds, out = demo.timed("bisect", good, "HEAD", "--", "-p", "no:cacheprovider", "-x")
    steps = [json.loads(line) for line in (demo.directory / ".git" / RECORD).read_text().splitlines()]
    builds: dict[str, int] = {}
    for step in steps:
        for stage in step["built"]:
            builds[stage] = builds.get(stage, 0) + 1
    return {"seconds": round(seconds, 3), "commits": 16, "tested": len(steps), "builds": builds,
            "said": out.strip().splitlines()[-3:]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.loop", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="apply and rebuild + resume runs (default 3)")
    parser.add_argument("--only", choices=("script", "python", "bisect"), action="append",
                        help="only this measure (repeatable; default: all three)")
    args = parser.parse_args(argv)
    main_store = open_store(None)
    root = main_store.root / "scratch" / f"bench-loop-{os.getpid()}-{secrets.token_hex(2)}"
    root.mkdir(parents=True)
    store = Store(root)
    figures: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "host_cores": os.cpu_count()}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
            directory = Path(tmp) / "demo"
            subprocess.run([sys.executable, "-m", "harness.cli", "init", str(directory)], check=True,
                           capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
            demo = Project(directory, store)
            (directory / ".gitignore").write_text("__pycache__/\nreports/\n.pytest_cache/\n")
            demo.run("git", "init", "-q")
            demo.run("git", "add", "-A")
            demo.run("git", "commit", "-qm", "init")
            progress("seeding the scratch store with the base image")
            seed(store, directory)
            progress("the good commit's office, built once (a developer's store holds it)")
            demo.run(sys.executable, "-m", "pytest", f"--store={root}", "-p", "no:cacheprovider")
            only = set(args.only or ("script", "python", "bisect"))
            if "script" in only:
                progress(f"apply against rebuild + resume, {args.reps} of each")
                figures.update(apply_against_rebuild(demo, args.reps))
            if "python" in only:
                progress(f"apply of a Python stage against rebuild + resume, {args.reps} of each")
                figures.update(python_against_rebuild(demo, args.reps))
            if "bisect" in only:
                progress("bisect over 16 commits")
                figures["bisect"] = bisect(demo)
    finally:
        for snap in store.snapshots():
            store.remove(snap.ref)
        for owner in store.owners():
            store.release(owner)
        shutil.rmtree(root, ignore_errors=True)
    out = REPO / "reports" / "bench" / "loop.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
    for kind, prefix in (("script", ""), ("python", "python_")):
        if f"{prefix}apply" not in figures:
            continue
        a, r = figures[f"{prefix}apply"], figures[f"{prefix}rebuild_resume"]
        print(f"apply (one-line change of a {kind} stage): "
              f"{a['min']:.2f} / {a['median']:.2f} / {a['max']:.2f} s")
        print(f"rebuild + resume of the same: {r['min']:.2f} / {r['median']:.2f} / {r['max']:.2f} s")
        print(f"apply / rebuild + resume: {figures[f'{prefix}ratio']:.1%}"
              + (" (target: at most 10%)" if kind == "script" else ""))
    if "bisect" in figures:
        b = figures["bisect"]
        print(f"bisect over {b['commits']} commits: {b['seconds']:.1f} s, {b['tested']} tested, builds "
              f"{b['builds'] or 'none'} (target: the stage at most 5 times, no other)")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
