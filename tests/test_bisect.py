"""``harness bisect`` (harness/cli/bisect.py): a scratch git repository of a `harness init`
project, sixteen commits after a good one, one of which breaks the server's page; on a
scratch store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli
from harness.cli import bisect
from harness.machines.store import Store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent


def test_bisect_names_the_commit_and_the_stage_and_builds_only_that_stage(tmp_path: Path,
                                                                         seeded_store: Store) -> None:
    demo = tmp_path / "demo"
    assert cli.main(["init", str(demo)]) == 0
    env = {**os.environ, "PYTHONPATH": f"{demo}:{REPO}", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=demo, env=env, capture_output=True, text=True, timeout=1200)

    def commit(message: str, path: str, text: str) -> str:
        (demo / path).write_text(text)
        run("git", "add", "-A")
        assert run("git", "commit", "-qm", message).returncode == 0
        return run("git", "rev-parse", "HEAD").stdout.strip()

    (demo / ".gitignore").write_text("__pycache__/\nreports/\n.pytest_cache/\n")
    run("git", "init", "-q")
    good = commit("init", "README.md", (demo / "README.md").read_text())
    built = run(sys.executable, "-m", "pytest", f"--store={seeded_store.root}", "-p", "no:cacheprovider")
    assert built.returncode == 0, built.stdout[-3000:]
    culprit = ""
    for number in range(1, 17):  # sixteen commits after the good one; the eleventh breaks the page
        if number == 11:
            culprit = commit("office: a friendlier page", "stages/office/server/index.html.in",
                             "goodbye from @MACHINE@\n")
        else:
            commit(f"README: line {number}", "README.md", (demo / "README.md").read_text() + f"\n{number}.\n")
    bad = run("git", "rev-parse", "HEAD").stdout.strip()

    found = run(sys.executable, "-m", "harness.cli", "--store", str(seeded_store.root), "bisect", good, bad,
                "--", "-p", "no:cacheprovider", "-x")
    assert found.returncode == 0, found.stdout[-3000:] + found.stderr[-3000:]
    tail = found.stdout.splitlines()[-3:]
    assert tail[0] == f"first bad commit: {culprit[:12]} office: a friendlier page"
    assert tail[1] == "  it changed the key of stage office: file server/index.html.in changed"
    steps = [json.loads(line) for line in (demo / ".git" / bisect.RECORD).read_text().splitlines()]
    builds = [stage for s in steps for stage in s["built"]]
    assert set(builds) == {"office"} and len(builds) <= 5, steps  # 16 candidates: ⌈log2 16⌉ + 1
    assert tail[2] == (f"{len(steps)} commit(s) tested; built office {len(builds)} time(s); every other "
                       "stage was restored from the store")
    assert run("git", "rev-parse", "HEAD").stdout.strip() == bad  # bisect reset
    assert run("git", "bisect", "log").returncode != 0  # no bisect under way
