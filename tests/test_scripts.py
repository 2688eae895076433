"""Script stages (`harness.scripts`) and the files a stage's key covers (`harness.keys`).

The key tests need no root; the build tests run real scripts in a real machine and in an
unbooted tree, against a scratch store seeded with the bootstrap snapshot.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import debian
from harness.build import Builder
from harness.errors import HarnessError, UsageError
from harness.keys import changes, files_digest
from harness.network import Interface
from harness.scripts import scripts
from harness.stage import Pipeline, Stage
from harness.store import Store

ROUTER = {
    "10-name.sh": "#!/bin/sh\nset -e\necho \"$HARNESS_MACHINE in $HARNESS_STAGE\" > /etc/office-name\n",
    "20-motd.sh": "cp motd.txt /etc/motd\n",  # no #!: run by sh, from the directory's copy
    "motd.txt": "welcome to the office\n",
}
TREE = {"10-tree.sh": "#!/bin/sh\necho built-unbooted > /etc/tree-mark\n"}


def write_dir(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def office(tmp_path: Path) -> Pipeline:
    """bootstrap, then office: a router set up by scripts once booted, a tree by scripts
    before boot."""
    stage = Stage("office", machines=("router",), trees=("thin",),
                  prepare=scripts(tmp_path / "thin", on="thin"),
                  steps=(scripts(tmp_path / "router", on="router"),))
    return Pipeline([debian.base_stage(), stage],
                    {"router": [Interface("router", "host0", "lan", "02:00:00:00:67:01", ("10.67.0.1/24",))]})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_dir(tmp_path / "router", ROUTER)
    write_dir(tmp_path / "thin", TREE)
    return tmp_path


def test_every_file_of_a_script_directory_is_in_the_key_and_nothing_before_it_moves(project: Path) -> None:
    keys = office(project).keys()
    (project / "router/motd.txt").write_text("changed\n")  # data, not a script: it counts too
    edited = office(project).keys()
    assert edited["bootstrap"] == keys["bootstrap"] and edited["office"] != keys["office"]
    (project / "router/30-more.sh").write_text("true\n")
    assert office(project).keys()["office"] not in (keys["office"], edited["office"])
    (project / "router/.30-more.sh.swp").write_text("an editor's\n")  # hidden: not an input
    assert office(project).keys() == office(project).keys()


def test_a_changed_input_is_named(project: Path) -> None:
    before = office(project).inputs("office")
    (project / "router/motd.txt").write_text("changed\n")
    (project / "router/30-more.sh").write_text("true\n")
    assert changes(before, office(project).inputs("office")) == \
        ["file router/motd.txt changed", "file router/30-more.sh added"]
    assert changes(before, before) == []


def test_the_digest_follows_content_and_mode_not_where_the_project_lives(tmp_path: Path) -> None:
    one, two = write_dir(tmp_path / "a/router", ROUTER), write_dir(tmp_path / "b/router", ROUTER)
    assert files_digest([one]) == files_digest([two])
    (two / "motd.txt").chmod(0o755)
    assert files_digest([one]) != files_digest([two])


def test_a_stage_declares_files_relative_to_its_module(tmp_path: Path) -> None:
    here = Path(__file__).parent
    stage = Stage.here("web", machines=("web",), files=("toy.py",))
    assert stage.inputs == (here / "toy.py",)
    with pytest.raises(UsageError, match=r"stage web reads files that do not exist: .*no-such-template"):
        Stage.here("web", machines=("web",), files=("no-such-template",))


def test_scripts_need_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"scripts\('nowhere', on='router'\): no directory .*/nowhere"):
        scripts("nowhere", on="router")




@pytest.mark.integration
def test_a_script_stage_builds_and_a_failing_script_publishes_nothing(project: Path,
                                                                     seeded_store: Store) -> None:
    pipeline = office(project)
    snapshot = Builder(seeded_store, pipeline).ensure("office")
    router = snapshot.member("router")
    assert (router / "etc/office-name").read_text() == "router in office\n"
    assert (router / "etc/motd").read_text() == "welcome to the office\n"
    assert (snapshot.member("thin") / "etc/tree-mark").read_text() == "built-unbooted\n"
    assert not (router / "var/tmp/harness-scripts").exists()  # the copy is gone
    (project / "router/20-motd.sh").write_text("echo about to fail; cat /nonexistent\n")
    broken = office(project)
    with pytest.raises(HarnessError) as info:
        Builder(seeded_store, broken).ensure("office")
    said = str(info.value)
    assert f"script {project}/router/20-motd.sh failed on router (exit code 1)" in said
    assert "about to fail" in said and "/nonexistent" in said
    assert seeded_store.get(broken.ref("office")) is None
    assert os.path.exists(snapshot.path)  # the good one stays
