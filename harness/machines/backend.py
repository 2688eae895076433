"""A testinfra backend that runs commands inside a booted nspawn machine through nsenter.

With it every testinfra module (service, socket, file, interface, package, ...) works on a
lab machine: ``testinfra.host.Host(NspawnBackend(machine))``. Test ids read ``nspawn://gw``.
This is the one place that accepts shell strings: testinfra builds them, ``sh -c`` runs them.
"""

from __future__ import annotations

from typing import Any, Protocol

import testinfra.host
from testinfra.backend import base

from harness.core.proc import Result


class Machine(Protocol):
    """What the backend needs of a machine (`harness.machines.machine.Machine` is one): a name
    for test ids, and a way to run a command in it. Declared here so that the machine can hand
    itself to testinfra without the two modules importing each other."""

    @property
    def name(self) -> str: ...

    def run(self, command: str) -> Result: ...


class NspawnBackend(base.BaseBackend):  # type: ignore[misc]
    """Run testinfra's commands in ``machine`` (which must be booted)."""

    NAME = "nspawn"

    def __init__(self, machine: Machine, *args: Any, **kwargs: Any) -> None:
        self.machine = machine
        super().__init__(machine.name, *args, **kwargs)
        self._encoding = "utf-8"  # lab machines are Debian with a UTF-8 locale, python or not

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        cmd = self.get_command(command, *args)
        result = self.machine.run(cmd)
        return self.result(result.status, self.encode(cmd), result.stdout, result.stderr)


def host_of(machine: Machine) -> testinfra.host.Host:
    """A testinfra `Host` for ``machine``."""
    return testinfra.host.Host(NspawnBackend(machine))
