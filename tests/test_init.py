"""``harness init``: a new project that passes pytest as it is, built on the shared base image."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import cli
from harness.core.names import SnapshotRef
from harness.machines.store import Snapshot, Store

REPO = Path(__file__).resolve().parent.parent


def test_init_refuses_a_directory_that_holds_something(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    assert cli.main(["init", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith("exists and is not an empty directory: give a new one")
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]




def test_an_unknown_template_is_one_line_naming_the_templates(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["init", "--template", "ofice", str(tmp_path / "x")])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == \
        "harness init: error: argument --template: invalid choice: 'ofice' (choose from 'basic', 'office')"
    assert not (tmp_path / "x").exists()


def run_in(directory: Path, store: Store, *args: str) -> subprocess.CompletedProcess[str]:
    """``pytest ARGS`` in ``directory`` on ``store``; ``harness ARGS`` when ARGS start with "harness"."""
    command = [sys.executable, "-m", "harness.cli", "--store", str(store.root), *args[1:]] \
        if args[:1] == ("harness",) else \
        [sys.executable, "-m", "pytest", f"--store={store.root}", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=900)


@pytest.mark.integration
def test_a_new_project_passes_pytest_and_reuses_the_shared_base(tmp_path: Path,
                                                               seeded_store: Store) -> None:
    demo = tmp_path / "demo"
    assert cli.main(["init", str(demo)]) == 0
    began = time.monotonic()
    run = run_in(demo, seeded_store)
    print(f"harness init -> green run: {time.monotonic() - began:.1f}s")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "2 passed" in run.stdout
    assert "restored bootstrap; built office" in run.stdout  # the plain base, already in the store
    for written in ("junit.xml", "timings.md", "allure-results"):  # as the README says every run does
        assert (demo / "reports" / written).exists(), written
    (demo / "stages/office/server/index.html.in").write_text("hello again from @MACHINE@\n")
    why = run_in(demo, seeded_store, "harness", "ls", "--why", "office")
    assert why.stdout.splitlines() == ["office: no snapshot for its current key; since this project's "
                                       "last one:", "  file server/index.html.in changed"], why.stderr


@pytest.mark.integration
def test_gc_and_rebuild_touch_only_the_projects_own_snapshots(tmp_path: Path, seeded_store: Store,
                                                              base_bootstrap: Snapshot) -> None:
    demo = tmp_path / "demo"
    assert cli.main(["init", str(demo)]) == 0
    base = {"base": base_bootstrap.member("base")}
    others, ours = SnapshotRef.of_stage("gw", "1" * 16), SnapshotRef.of_stage("office", "0" * 16)
    seeded_store.publish(others, base, {"stage": "gw", "project": "/elsewhere/sadm"})
    seeded_store.publish(ours, base, {"stage": "office", "project": str(demo)})  # stale
    run = run_in(demo, seeded_store, "--rebuild")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "restored bootstrap; built office" in run.stdout  # the shared base is not rebuilt
    gc = run_in(demo / "scenarios", seeded_store, "harness", "gc")  # from anywhere in the project
    assert gc.returncode == 0, gc.stderr
    assert gc.stdout.splitlines() == ["removed 1 snapshot(s)", f"  office/{'0' * 16}"]
    groups = {SnapshotRef.parse(s.name).group for s in seeded_store.snapshots()}
    assert groups == {"bootstrap", "gw", "office"}


@pytest.mark.integration
def test_the_office_template_passes_pytest(tmp_path: Path, seeded_store: Store) -> None:
    """The first lab most teams write (issue 27): a router with DHCP, DNS and NAT, a printer with
    a reserved address, a laptop from the pool, an observer on the uplink; scripts and TOML."""
    office = tmp_path / "office"
    assert cli.main(["init", "--template", "office", str(office)]) == 0
    python = [p.relative_to(office) for p in office.rglob("*.py")]
    assert sorted(map(str, python)) == ["scenarios/test_office.py", "stages/__init__.py", "stages/office.py"]
    began = time.monotonic()
    run = run_in(office, seeded_store)
    print(f"harness init --template office -> green run: {time.monotonic() - began:.1f}s")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "5 passed" in run.stdout


def walkthrough(page: Path, project: Path) -> None:
    """Do to ``project`` what ``page``'s walk-through says: each ``<!-- walkthrough: write|append
    PATH -->`` takes the fenced block after it, ``replace PATH "OLD" "NEW"`` edits the file."""
    lines = page.read_text().splitlines()
    for number, line in enumerate(lines):
        if not line.startswith("<!-- walkthrough: "):
            continue
        action, path, *args = shlex.split(line.removeprefix("<!-- walkthrough: ").removesuffix(" -->"))
        target = project / path
        if action == "replace":
            old, new = args
            text = target.read_text()
            assert old in text, f"{page.name}:{number + 1}: {path} has no {old!r}"
            target.write_text(text.replace(old, new, 1))
            continue
        fence = next(i for i in range(number + 1, len(lines)) if lines[i].startswith("```"))
        end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
        block = "\n".join(lines[fence + 1:end]) + "\n"
        if action == "append":
            target.write_text(target.read_text() + "\n" + block)
        else:
            assert action == "write", f"{page.name}:{number + 1}: unknown walk-through action {action}"
            target.write_text(block)


@pytest.mark.integration
def test_the_containers_walkthrough_works_as_written(tmp_path: Path, seeded_store: Store) -> None:
    """docs/containers.md, "Containers in your own lab": a rootless container added to a new
    project, built and seen from the client (issue 28)."""
    demo = tmp_path / "demo"
    assert cli.main(["init", str(demo)]) == 0
    walkthrough(REPO / "docs" / "containers.md", demo)
    run = run_in(demo, seeded_store)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "4 passed" in run.stdout
    assert "built office, apps" in run.stdout
