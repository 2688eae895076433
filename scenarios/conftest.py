"""Fixtures for the scenarios that run before the stage pipeline exists (issue 3 replaces them)."""

from __future__ import annotations

import pytest

from harness.lab import MachineSetup
from harness.machine import Machine
from harness.network import Interface
from harness.plugin import MakeLab
from harness.store import Snapshot


@pytest.fixture
def base_machine(make_lab: MakeLab, bootstrap: Snapshot) -> Machine:
    """Function: one machine booted from the bootstrap image, alone on a lab segment."""
    iface = Interface("base", "host0", "lan", "02:00:00:00:00:10", ("192.168.1.10/23",))
    return make_lab([MachineSetup("base", bootstrap.member("base"), (iface,))])["base"]
