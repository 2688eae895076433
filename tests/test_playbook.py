"""Playbook stages (`harness.engine.build.playbook`): an Ansible role that installs and configures a
service, built into a snapshot and asserted by a scenario.

The key tests need no root; the build tests apply real playbooks with ansible-core to a
real booted machine and to an unbooted tree, against a scratch store seeded with bootstrap.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from harness.core.errors import HarnessError, UsageError
from harness.core.links import Interface
from harness.engine.build import debian
from harness.engine.build.builder import Builder
from harness.engine.build.playbook import playbook
from harness.machines.store import Store
from harness.model.keys import changes
from harness.model.pipeline import Pipeline
from harness.model.stage import Stage

# The role a team would have: it installs a small web service (its unit and its page, from a
# template that reads the lab's inventory) and starts it at boot.
ANSIBLE = {
    "site.yml": """
        - hosts: printers
          roles: [greeter]
        - hosts: all
          tasks:
            - name: say who configured this machine
              ansible.builtin.copy: {content: "{{ inventory_hostname }} by ansible\\n", dest: /etc/office-by}
    """,
    "tree.yml": """
        - hosts: thin
          gather_facts: false
          tasks:
            - name: mark the tree
              ansible.builtin.copy: {content: "built-unbooted\\n", dest: /etc/tree-mark}
    """,
    "roles/greeter/defaults/main.yml": """
        greeting: hello
    """,
    "roles/greeter/tasks/main.yml": """
        - name: the greeter's page
          ansible.builtin.file: {path: /srv/greeter, state: directory, mode: "0755"}
        - name: the greeter's page, from the inventory
          ansible.builtin.template: {src: index.html.j2, dest: /srv/greeter/index.html, mode: "0644"}
          notify: restart greeter
        - name: the greeter's unit
          ansible.builtin.copy:
            {src: greeter.service, dest: /etc/systemd/system/greeter.service, mode: "0644"}
        - name: the greeter runs, and starts at boot
          ansible.builtin.systemd_service: {name: greeter, enabled: true, state: started, daemon_reload: true}
    """,
    "roles/greeter/handlers/main.yml": """
        - name: restart greeter
          ansible.builtin.systemd_service: {name: greeter, state: restarted}
    """,
    "roles/greeter/templates/index.html.j2": """
        {{ inventory_hostname }} says {{ greeting }} on {{ harness_interfaces[0].addresses[0].split('/')[0] }}
    """,
    "roles/greeter/files/greeter.service": """
        [Unit]
        Description=the office greeter
        [Service]
        ExecStart=/usr/bin/python3 -m http.server 8080 --directory /srv/greeter
        [Install]
        WantedBy=multi-user.target
    """,
}

PIPELINE = '''
from harness.engine.build.debian import base_stage
from harness.core.links import Interface
from harness.engine.build.playbook import playbook
from harness.model.stage import Stage
from harness.model.pipeline import Pipeline

OFFICE = Stage.here("office", machines=("printer", "desk"), trees=("thin",),
                    packages={"printer": ("python3",), "desk": ("python3", "curl"), "thin": ("python3",)},
                    prepare=playbook("ansible/tree.yml", on="thin"),
                    steps=(playbook("ansible/site.yml", on=("printer", "desk"),
                                    groups={"printers": ("printer",)}),))
PIPELINE = Pipeline(
    [base_stage(), OFFICE],
    {"printer": [Interface("printer", "host0", "lan", "02:00:00:00:68:01", ("10.68.0.1/24",))],
     "desk": [Interface("desk", "host0", "lan", "02:00:00:00:68:02", ("10.68.0.2/24",))]},
)
'''

SCENARIO = '''
def test_the_desk_reads_the_printers_page(desk, printer):
    printer.wait_for_open_port(8080)
    assert desk.succeed("curl -sf http://10.68.0.1:8080/") == "printer says hello on 10.68.0.1\\n"

def test_the_greeter_starts_at_boot(printer):
    printer.wait_for_unit("greeter.service")
    assert printer.succeed("cat /etc/office-by") == "printer by ansible\\n"
'''


def write_tree(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return directory


def office(root: Path) -> Pipeline:
    site = playbook(root / "ansible/site.yml", on="printer", groups={"printers": ("printer",)})
    stage = Stage("office", machines=("printer",), packages={"printer": ("python3",)}, steps=(site,))
    printer = Interface("printer", "host0", "lan", "02:00:00:00:68:01", ("10.68.0.1/24",))
    return Pipeline([debian.base_stage(), stage], {"printer": [printer]})


def test_every_file_of_the_playbooks_tree_is_in_the_key_and_nothing_before_it_moves(tmp_path: Path) -> None:
    write_tree(tmp_path / "ansible", ANSIBLE)
    keys, before = office(tmp_path).keys(), office(tmp_path).inputs("office")
    (tmp_path / "ansible/roles/greeter/defaults/main.yml").write_text("greeting: good morning\n")
    edited = office(tmp_path)
    assert edited.keys()["bootstrap"] == keys["bootstrap"] and edited.keys()["office"] != keys["office"]
    assert changes(before, edited.inputs("office")) == \
        ["file ansible/roles/greeter/defaults/main.yml changed"]


def test_bad_playbook_hooks_are_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"playbook\('nowhere.yml', on='printer'\): no file .*/nowhere.yml"):
        playbook("nowhere.yml", on="printer")
    write_tree(tmp_path, {"site.yml": "- hosts: all\n"})
    with pytest.raises(UsageError, match=r"groups name desk, which it is not applied to"):
        playbook(tmp_path / "site.yml", on="printer", groups={"printers": ("printer", "desk")})
    with pytest.raises(UsageError, match=r"no machine to apply it to"):
        playbook(tmp_path / "site.yml", on=())
    here = Path(__file__).parent
    with pytest.raises(UsageError, match=r"the playbook sits beside or above test_playbook.py: keep it in a "
                                         r"directory of its own"):
        playbook(here / "__init__.py", on="printer")


@pytest.mark.integration
def test_a_role_builds_into_a_snapshot_and_a_scenario_asserts_the_service(
        pytester: pytest.Pytester, seeded_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(pytester.path / "ansible", ANSIBLE)
    pytester.makepyfile(officelab=PIPELINE, test_office=SCENARIO)
    # the project's modules, then this checkout's harness (not the one the venv installed)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(pytester.path), str(Path(__file__).parent.parent)]))
    result = pytester.runpytest_subprocess("--pipeline=officelab", f"--store={seeded_store.root}",
                                           "-p", "no:cacheprovider", "-rA", timeout=900)
    result.assert_outcomes(passed=2)
    snapshot = next(s for s in seeded_store.snapshots() if s.name.startswith("office/"))
    assert (snapshot.member("thin") / "etc/tree-mark").read_text() == "built-unbooted\n"
    for machine in ("printer", "desk", "thin"):  # nothing of Ansible's is left in the machines
        assert not (snapshot.member(machine) / "var/tmp/harness-ansible").exists()


@pytest.mark.integration
def test_a_failing_task_is_named_and_publishes_nothing(tmp_path: Path, seeded_store: Store) -> None:
    write_tree(tmp_path / "ansible", ANSIBLE)
    (tmp_path / "ansible/roles/greeter/tasks/main.yml").write_text(textwrap.dedent("""
        - name: a step that cannot work
          ansible.builtin.command: cat /nonexistent
    """))
    broken = office(tmp_path)
    with pytest.raises(HarnessError) as info:
        Builder(seeded_store, broken).ensure("office")
    said = str(info.value)
    assert "stage office: playbook site.yml failed on printer (ansible-playbook exit code 2)" in said
    assert "a step that cannot work" in said and "/nonexistent" in said
    assert seeded_store.get(broken.ref("office")) is None
