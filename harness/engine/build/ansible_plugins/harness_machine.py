"""Ansible's way into a machine of a harness lab (the connection ``harness_machine``).

`harness.engine.build.playbook` points ``ANSIBLE_CONNECTION_PLUGINS`` at this directory and gives every
host of the inventory it writes either ``harness_leader`` (the host pid of a booted machine's
PID 1: commands run through nsenter, as `harness.machines.machine.Machine.run` does) or
``harness_root`` (an unbooted root: commands run in it through systemd-nspawn without boot,
with the host's network, as `harness.machines.rootfs.run_in_root` does). No ssh, no key, no daemon in
the machine: only the ``python3`` that Ansible's modules need.
"""

from __future__ import annotations

import base64
import shlex
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.plugins.connection import ConnectionBase

from harness.core import proc
from harness.machines import nspawn, rootfs
from harness.machines.machine import GUEST_ENV

DOCUMENTATION = """
name: harness_machine
short_description: Run in a machine of a harness lab
description:
  - Commands run through nsenter in a booted machine, or through systemd-nspawn (no boot) in an
    unbooted root. harness.engine.build.playbook writes the inventory that sets one of the two options.
author: harness
options:
  leader:
    description: Host pid of the booted machine's PID 1.
    vars:
      - name: harness_leader
  root:
    description: The unbooted machine's root directory on the host.
    vars:
      - name: harness_root
"""


class Connection(ConnectionBase):  # type: ignore[misc]  # ansible ships no type information
    """One machine: booted (``leader``) or an unbooted root (``root``)."""

    transport = "harness_machine"
    has_pipelining = True
    default_user = "root"  # what the harness runs as: `become` to root is then no-op, no sudo needed

    def _connect(self) -> Connection:
        leader = self.get_option("leader")
        if leader and not Path(f"/proc/{int(leader)}").exists():
            raise AnsibleConnectionFailure(f"the machine whose PID 1 was {leader} is not running any more")
        self._connected = True
        return self

    def _run(self, command: str, data: bytes | None = None) -> proc.Result:
        argv = ["/bin/sh", "-c", command]
        leader, root = self.get_option("leader"), self.get_option("root")
        if leader:
            return proc.run(nspawn.enter(int(leader), argv), input=data, env=GUEST_ENV, check=False)
        if root:
            return rootfs.run_in_root(Path(root), argv, input=data, check=False)
        raise AnsibleError(f"host {self._play_context.remote_addr}: neither harness_leader nor "
                           "harness_root is set: this connection is for inventories "
                           "harness.engine.build.playbook writes")

    def exec_command(self, cmd: str, in_data: bytes | None = None,
                     sudoable: bool = True) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        result = self._run(cmd, in_data)
        return result.status, result.stdout.encode(), result.stderr.encode()

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        if not Path(in_path).is_file():
            raise AnsibleFileNotFound(f"file to put does not exist: {in_path}")
        result = self._run(f"cat > {shlex.quote(out_path)}", Path(in_path).read_bytes())
        if result.status != 0:
            raise AnsibleError(f"could not write {out_path}: {result.stderr.strip()}")

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        result = self._run(f"base64 < {shlex.quote(in_path)}")  # output is text: a file may not be
        if result.status != 0:
            raise AnsibleError(f"could not read {in_path}: {result.stderr.strip()}")
        Path(out_path).write_bytes(base64.b64decode(result.stdout))

    def close(self, *args: Any) -> None:
        self._connected = False
