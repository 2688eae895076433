"""Stages made of an Ansible playbook: how many teams install their machines.

``playbook("office/site.yml", on=("router", "printer"))`` is a hook that applies a playbook to
machines of the lab with ``ansible-playbook`` (ansible-core, the harness's ``ansible`` extra).
As a stage's ``steps`` it runs in the booted machines; as its ``prepare`` hook, on their
unbooted roots (with the host's network, so a role's ``apt`` tasks can fetch packages). The
connection is the harness's own (`harness/engine/build/ansible_plugins/harness_machine.py`): nsenter into
a booted machine, systemd-nspawn into a root; no ssh and no key, only ``python3`` in the
machine for Ansible's modules.

The inventory the hook writes has one host per machine, named as in the lab's inventory,
in group ``all`` and in the groups given by ``groups``, with these variables:

- ``harness_stage``: the stage being built;
- ``harness_interfaces``: the machine's interfaces from the lab's inventory (``name``,
  ``segment``, ``mac``, ``addresses`` with their prefix lengths), for templates.

The playbook's directory is its tree (roles/, templates, group_vars/, an ``ansible.cfg``,
which is then the only configuration read: the host's is not) and every file of it is part
of the stage's key: editing a role's template rebuilds that stage and the later ones only.

    STAGE = Stage.here("office", machines=("router", "printer"),
                       packages={"router": ("python3",), "printer": ("python3",)},
                       steps=(playbook("ansible/site.yml", on=("router", "printer")),))
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core import proc
from harness.core.errors import HarnessError, UsageError
from harness.core.log import step
from harness.machines import nspawn

if TYPE_CHECKING:
    from harness.engine.build.builder import Build

PLUGINS = Path(__file__).parent / "ansible_plugins"
REMOTE_TMP = "/var/tmp/harness-ansible"  # on the root filesystem: an unbooted root's /tmp lasts one command
TASK_TIMEOUT = 1800  # seconds one task may take
PYTHON = "/usr/bin/python3"


def ansible_playbook() -> Path | None:
    """The ``ansible-playbook`` beside this Python: only an Ansible of the harness's own
    virtualenv can load the connection, which imports the harness."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    return beside if beside.exists() else None


@dataclass(frozen=True)
class Playbook:
    """Apply playbook ``path`` to ``machines`` (in groups ``groups``)."""

    path: Path
    machines: tuple[str, ...]
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def files(self) -> tuple[Path, ...]:
        """What the stage's key covers: the playbook's whole directory."""
        return (self.path.parent,)

    @property
    def title(self) -> str:
        """How build logs and keys name the hook."""
        return f"playbook {self.path.name} on {', '.join(self.machines)}"

    def inventory(self, build: Build) -> dict[str, object]:
        """The inventory ansible-playbook reads (JSON is YAML), every machine reachable."""
        hosts: dict[str, dict[str, object]] = {}
        for name in self.machines:
            reach: dict[str, object]
            if name in build.lab.machines:
                reach = {"harness_leader": build[name].leader}
            else:
                reach = {"harness_root": str(build.root(name))}
            interfaces = [{"name": i.name, "segment": i.segment, "mac": i.mac, "addresses": list(i.addresses)}
                          for i in build.pipeline.interfaces.get(name, ())]
            hosts[name] = {**reach, "ansible_connection": "harness_machine",
                           "ansible_python_interpreter": PYTHON, "ansible_remote_tmp": REMOTE_TMP,
                           "ansible_async_dir": f"{REMOTE_TMP}/async",
                           "harness_stage": build.stage.name, "harness_interfaces": interfaces}
        children: dict[str, object] = {group: {"hosts": {m: {} for m in members}}
                                       for group, members in self.groups}
        return {"all": {"hosts": hosts, "children": children}}

    def __call__(self, build: Build) -> None:
        where = f"stage {build.stage.name}: playbook {self.path.name}"
        for name in self.machines:
            self._check(build, name, where)
        program = ansible_playbook()
        if program is None:
            raise UsageError(f"{where}: ansible-playbook is not installed beside {sys.executable}: "
                             "pip install ansible-core there")
        with tempfile.TemporaryDirectory(prefix="harness-ansible-") as scratch:
            here = Path(scratch)
            (here / "inventory.yml").write_text(json.dumps(self.inventory(build), indent=1))
            config = self.path.parent / "ansible.cfg"
            if not config.exists():
                config = here / "ansible.cfg"
                config.write_text("# the playbook's directory has none: nothing from the host applies\n")
            env = proc.host_env({
                "ANSIBLE_CONFIG": str(config), "ANSIBLE_HOME": str(here / "home"),
                "ANSIBLE_LOCAL_TEMP": str(here / "tmp"), "ANSIBLE_CONNECTION_PLUGINS": str(PLUGINS),
                "ANSIBLE_PIPELINING": "true", "ANSIBLE_RETRY_FILES_ENABLED": "false",
                "ANSIBLE_NOCOLOR": "true", "ANSIBLE_FORCE_COLOR": "false",
                "ANSIBLE_TASK_TIMEOUT": str(TASK_TIMEOUT), "ANSIBLE_STDOUT_CALLBACK": "default",
                # become_user to another user puts its files under a system temporary
                # directory: /tmp lasts one command in an unbooted root, /var/tmp does not
                "ANSIBLE_SYSTEM_TMPDIRS": "/var/tmp",
                # byte code of the tree's plugins would land in the tree: its key would move
                "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
                # the connection imports this harness, not whichever the virtualenv installed
                # (a git worktree's run drove another checkout's harness_machine)
                "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
            argv = [str(program), "--inventory", str(here / "inventory.yml"), str(self.path)]
            try:
                status, output = self._play(argv, env, where)
            finally:
                for name in self.machines:
                    self._clean(build, name)
        if status != 0:
            raise HarnessError(f"{where} failed on {', '.join(self.machines)} "
                               f"(ansible-playbook exit code {status}): {output.strip()[-2000:]}")

    def _check(self, build: Build, name: str, where: str) -> None:
        setup = build.lab.setups.get(name)
        if setup is None:
            raise UsageError(f"{where}: on {name}, which its lab does not have; it has: "
                             f"{', '.join(build.lab.setups)}")
        if name in build.lab.machines and nspawn.boots_read_only(setup.extra_args):
            raise UsageError(f"{where}: on {name}, which boots read-only: apply it to the tree it boots")
        if not (build.root(name) / PYTHON.lstrip("/")).exists():
            raise UsageError(f"{where}: {name} has no {PYTHON}, which Ansible's modules need: add "
                             f"'python3' to the packages of {name}")

    def _play(self, argv: list[str], env: Mapping[str, str], where: str) -> tuple[int, str]:
        """Run ansible-playbook, a progress step per task; its status and whole output."""
        lines: list[str] = []
        with (step(where), proc.spawn(argv, env=env, stderr=subprocess.STDOUT, cwd=self.path.parent) as play,
              contextlib.ExitStack() as task):
            assert play.stdout is not None
            for raw in play.stdout:
                line = raw.decode(errors="replace")
                lines.append(line)
                if line.startswith("TASK [") and "]" in line:
                    task.close()
                    task.enter_context(step(f"{where}: {line[6:line.rindex(']')]}"))
            task.close()
            status = play.wait()
        return status, "".join(lines)

    def _clean(self, build: Build, name: str) -> None:
        """Leave no trace of Ansible in the machine: its temporary directory and facts cache."""
        shutil.rmtree(build.root(name) / REMOTE_TMP.lstrip("/"), ignore_errors=True)
        shutil.rmtree(build.root(name) / "root/.ansible", ignore_errors=True)  # a play's own remote_tmp


def playbook(path: str | Path, *, on: str | Sequence[str],
             groups: Mapping[str, Sequence[str]] | None = None) -> Playbook:
    """A hook applying playbook ``path`` (relative to the calling module's directory) to machine(s)
    ``on``, in inventory ``groups``; see the module's documentation."""
    machines = (on,) if isinstance(on, str) else tuple(on)
    file = Path(path)
    if not file.is_absolute():
        file = Path(sys._getframe(1).f_code.co_filename).parent / file
    shown = f"playbook({str(path)!r}, on={on!r})"
    if not file.is_file():
        raise UsageError(f"{shown}: no file {file}; give the playbook (its directory holds its roles)")
    caller = Path(sys._getframe(1).f_code.co_filename).resolve()
    if caller.is_relative_to(file.resolve().parent):
        raise UsageError(f"{shown}: the playbook sits beside or above {caller.name}: keep it in a "
                         "directory of its own (every file of that directory is the stage's key)")
    if not machines:
        raise UsageError(f"{shown}: no machine to apply it to")
    strays = sorted({m for members in (groups or {}).values() for m in members} - set(machines))
    if strays:
        raise UsageError(f"{shown}: groups name {', '.join(strays)}, which it is not applied to")
    if ansible_playbook() is None:
        raise UsageError(f"{shown}: ansible-playbook is not installed beside {sys.executable}: "
                         "pip install ansible-core there (the harness's 'ansible' extra)")
    return Playbook(file.resolve(), machines,
                    tuple((g, tuple(m)) for g, m in sorted((groups or {}).items())))
