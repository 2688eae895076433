"""Script stages (`harness.engine.build.scripts`) and the files a stage's key covers (`harness.model.keys`).

The key tests need no root; the build tests run real scripts in a real machine and in an
unbooted tree, against a scratch store seeded with the bootstrap snapshot.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.core.errors import HarnessError, UsageError
from harness.core.links import Interface
from harness.engine.build import debian
from harness.engine.build.builder import Builder
from harness.engine.build.scripts import plan_env, scripts
from harness.machines.store import Store
from harness.model.keys import changes, files_digest
from harness.model.pipeline import Pipeline
from harness.model.stage import Stage
from tests.conftest import office_inventory

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


PLAN = {"10-plan.sh": "#!/bin/sh\nset -e\nenv | grep ^HARNESS_ | sort > /etc/harness-env\n"
                      "cp \"$HARNESS_INVENTORY\" /etc/plan.json\n"}


def planned(directory: Path, *, router: bool = True) -> Pipeline:
    """bootstrap, then a stage whose router is set up by scripts, in a pipeline given the
    office's inventory (tests.conftest.office_inventory); laptop and printer are in no stage."""
    inventory = office_inventory(directory, router=router)
    stage = Stage("office", machines=("router",), steps=(scripts(directory / "plan", on="router"),))
    return Pipeline([debian.base_stage(), stage], {"router": inventory.interfaces("router")},
                    inventory=inventory)


def test_a_machines_own_addresses_are_variables_of_its_scripts(tmp_path: Path) -> None:
    inventory = office_inventory(tmp_path)
    assert plan_env(inventory, "router") == {
        "HARNESS_DOMAIN": "office", "HARNESS_INTERFACES": "host0 dmz0",
        "HARNESS_ADDRESS_HOST0": "10.81.1.1", "HARNESS_ADDRESS6_HOST0": "fd81:1::1",
        "HARNESS_NETWORK_HOST0": "10.81.1.0/24", "HARNESS_NETWORK6_HOST0": "fd81:1::/64",
        "HARNESS_MAC_HOST0": "02:00:0a:51:01:01", "HARNESS_SEGMENT_HOST0": "lan",
        "HARNESS_ADDRESS_DMZ0": "10.81.2.1", "HARNESS_NETWORK_DMZ0": "10.81.2.0/24",
        "HARNESS_MAC_DMZ0": "02:00:0a:51:02:01", "HARNESS_SEGMENT_DMZ0": "dmz"}
    assert plan_env(inventory, "thin") == {"HARNESS_DOMAIN": "office"}  # a tree: not in the inventory


def test_the_whole_inventory_is_in_the_key_of_a_stage_whose_scripts_see_it(tmp_path: Path) -> None:
    write_dir(tmp_path / "plan", PLAN)
    keys = planned(tmp_path).keys()
    assert planned(tmp_path).keys() == keys  # deterministic
    moved = planned(tmp_path, router=False).keys()  # another machine's entry would do as well
    assert moved["bootstrap"] == keys["bootstrap"] and moved["office"] != keys["office"]
    inventory = office_inventory(tmp_path)
    without_scripts = Pipeline([debian.base_stage(), Stage("office", machines=("router",))],
                               {"router": inventory.interfaces("router")}, inventory=inventory)
    assert "inventory" not in without_scripts.definition(without_scripts["office"])


@pytest.mark.integration
def test_scripts_see_the_plan_and_their_machines_addresses(tmp_path: Path, seeded_store: Store) -> None:
    write_dir(tmp_path / "plan", PLAN)
    pipeline = planned(tmp_path)
    router = Builder(seeded_store, pipeline).ensure("office").member("router")
    seen = dict(line.split("=", 1) for line in (router / "etc/harness-env").read_text().splitlines())
    assert seen["HARNESS_ADDRESS_HOST0"] == "10.81.1.1" and seen["HARNESS_ADDRESS6_HOST0"] == "fd81:1::1"
    assert seen["HARNESS_ADDRESS_DMZ0"] == "10.81.2.1" and seen["HARNESS_DOMAIN"] == "office"
    plan = json.loads((router / "etc/plan.json").read_text())
    assert plan == json.loads(json.dumps(office_inventory(tmp_path).plan()))
    assert plan["machines"]["printer"]["interfaces"][0]["address"] == "10.81.2.2"
    assert plan["segments"]["lan"]["cidr6"] == "fd81:1::/64" and plan["users"]["ann"]["kind"] == "organiser"
    assert not (router / "var/tmp/harness-scripts").exists()  # the copy and the plan are gone
