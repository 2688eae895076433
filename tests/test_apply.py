"""``harness apply`` (harness/engine/apply.py): a stage's changed steps taken into a lab that
`harness up` started, in a `harness init` project on a scratch store: a script stage, then
the same stage made of a playbook."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import cli
from harness.machines import lab
from harness.machines.store import Store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
PAGE = "stages/office/server/index.html.in"


def harness(project: Path, store: Store, *args: str) -> subprocess.CompletedProcess[str]:
    """``harness ARGS`` in ``project``, on ``store``, with this checkout's harness."""
    return subprocess.run([sys.executable, "-m", "harness.cli", "--store", str(store.root), *args],
                          cwd=project, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": f"{project}:{REPO}"})


def page(project: Path, store: Store, lab_id: str) -> str:
    """The server's page, as the client gets it."""
    got = harness(project, store, "shell", "client", "--lab", lab_id, "--", "curl", "-sf", "http://10.10.0.1/")
    assert got.returncode == 0, got.stderr
    return got.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    demo = tmp_path / "demo"
    assert cli.main(["init", str(demo)]) == 0
    return demo


def up(project: Path, store: Store) -> Iterator[str]:
    """`harness up` in ``project``; yields the lab's id; `harness down` after."""
    started = harness(project, store, "up")
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-3000:]
    lab_id = started.stdout.split()[1]  # "lab ID is up, from ..."
    try:
        yield lab_id
    finally:
        harness(project, store, "down", lab_id)


@pytest.fixture
def script_lab(project: Path, seeded_store: Store) -> Iterator[str]:
    yield from up(project, seeded_store)


def test_apply_takes_an_edited_script_stage_into_the_running_lab(project: Path, seeded_store: Store,
                                                                 script_lab: str) -> None:
    assert page(project, seeded_store, script_lab) == "hello from server\n"
    snapshots = sorted(s.name for s in seeded_store.snapshots())
    (project / PAGE).write_text("hello again from @MACHINE@\n")
    applied = harness(project, seeded_store, "apply", "--lab", script_lab)
    assert applied.returncode == 0, applied.stderr
    lines = applied.stdout.splitlines()
    assert lines[0] == "stage office: file server/index.html.in changed"
    assert lines[1:3] == ["the run of office's steps changed 1 path(s) in server:",
                          "  server: ~ var/www/html/index.html"]
    assert page(project, seeded_store, script_lab) == "hello again from server\n"
    assert sorted(s.name for s in seeded_store.snapshots()) == snapshots  # nothing published
    record = next(r for r in lab.recorded_labs() if r["id"] == script_lab)
    assert record["applied"] == ["office"]

    checked = harness(project, seeded_store, "apply", "office", "--check-idempotent", "--lab", script_lab)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "the second run of office's steps changed nothing" in checked.stdout
    (project / "stages/office/server/20-count.sh").write_text("#!/bin/sh\ndate +%N >> /etc/runs\n")
    counted = harness(project, seeded_store, "apply", "--check-idempotent", "--lab", script_lab)
    assert counted.returncode == 1, counted.stdout + counted.stderr
    assert "the first run of office's steps changed 1 path(s) in server:\n  server: + etc/runs" \
        in counted.stdout
    assert counted.stderr.strip() == ("harness: error: stage office is not idempotent: its second run "
                                      "changed server: ~ etc/runs")


def test_apply_refuses_what_a_running_machine_cannot_take(project: Path, seeded_store: Store,
                                                          script_lab: str) -> None:
    office = project / "stages/office.py"
    office.write_text(office.read_text().replace('"client": ("curl",)', '"client": ("curl", "jq")'))
    refused = harness(project, seeded_store, "apply", "--lab", script_lab)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"harness: error: stage office: packages changed, which a machine gets before it boots, not "
        f"from its steps: `harness down {script_lab}` then `harness up` rebuilds it and boots a new lab")
    nothing = harness(project, seeded_store, "apply", "bootstrap", "--lab", script_lab)
    assert nothing.returncode == 2
    assert "stage bootstrap has no steps to run again" in nothing.stderr


PLAYBOOK = """\
- hosts: all
  tasks:
    - name: the page
      ansible.builtin.template: {src: index.html.j2, dest: /var/www/html/index.html, mode: "0644"}
"""


def test_apply_takes_an_edited_playbook_into_the_running_lab(project: Path, seeded_store: Store) -> None:
    office = project / "stages/office.py"
    office.write_text(office.read_text()
                      .replace("from harness import Build, Stage, scripts\n",
                               "from harness import Build, Stage, playbook\n")
                      .replace('steps=(scripts("office/server", on="server"),)',
                               'steps=(playbook("office/ansible/site.yml", on="server"),)')
                      .replace('"server": ("nginx",)', '"server": ("nginx", "python3")'))
    (project / "stages/office/ansible").mkdir()
    (project / "stages/office/ansible/site.yml").write_text(PLAYBOOK)
    template = project / "stages/office/ansible/index.html.j2"
    template.write_text("hello from {{ inventory_hostname }}\n")
    for started in up(project, seeded_store):
        assert page(project, seeded_store, started) == "hello from server\n"
        template.write_text("played again on {{ inventory_hostname }}\n")
        applied = harness(project, seeded_store, "apply", "--check-idempotent", "--lab", started)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert applied.stdout.splitlines()[:4] == [
            "stage office: file ansible/index.html.j2 changed",
            "the first run of office's steps changed 1 path(s) in server:",
            "  server: ~ var/www/html/index.html",
            "the second run of office's steps changed nothing"]
        assert page(project, seeded_store, started) == "played again on server\n"


def test_a_kept_failure_stands_for_the_stage_snapshot_it_was_kept_from(seeded_store: Store) -> None:
    from harness.core.names import SnapshotRef
    from harness.engine.apply import chain

    (base,) = seeded_store.snapshots()
    office = seeded_store.publish(SnapshotRef.of_stage("office", "1" * 16), {"base": base.member("base")},
                                  {"stage": "office", "parent": base.name, "inputs": {"file x": "1"}})
    kept = seeded_store.publish(SnapshotRef.parse("failed/t"), {"base": base.member("base")},
                                {"stage": "office", "from": office.name})
    assert {stage: snap.name for stage, snap in chain(seeded_store, kept).items()} == \
        {"office": office.name, str(base.meta.get("stage") or base.ref.stage): base.name}
