"""harness: labs of systemd-nspawn machines, built stage by stage on btrfs snapshots, tested with pytest.

The names a lab's own code needs (its stages, pipeline, mutants and scenarios) are here:
``from harness import Stage, Pipeline, Machine``. Each is imported from its layer's module
on first use, so importing one corner of the harness does not import all of it (a console
keeper process, the ansible connection plugin). docs/reference.md, "Public API", lists them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> (module, attribute): the public API, in the order docs/reference.md lists it
PUBLIC: dict[str, tuple[str, str]] = {
    "Stage": ("harness.model.stage", "Stage"),
    "Pipeline": ("harness.model.pipeline", "Pipeline"),
    "Build": ("harness.engine.build.builder", "Build"),
    "base_stage": ("harness.engine.build.debian", "base_stage"),
    "scripts": ("harness.engine.build.scripts", "scripts"),
    "playbook": ("harness.engine.build.playbook", "playbook"),
    "Inventory": ("harness.model.inventory", "Inventory"),
    "load_inventory": ("harness.model.inventory_file", "load"),
    "Family": ("harness.core.links", "Family"),
    "Interface": ("harness.core.links", "Interface"),
    "mutant": ("harness.model.mutant", "mutant"),
    "Lab": ("harness.machines.lab", "Lab"),
    "Machine": ("harness.machines.machine", "Machine"),
    "SnapshotRef": ("harness.core.names", "SnapshotRef"),
    "retry": ("harness.core.wait", "retry"),
    "HarnessError": ("harness.core.errors", "HarnessError"),
    "UsageError": ("harness.core.errors", "UsageError"),
    "CheckFailed": ("harness.core.errors", "CheckFailed"),
    "WaitTimeout": ("harness.core.errors", "WaitTimeout"),
}

__all__ = ["Build", "CheckFailed", "Family", "HarnessError", "Interface", "Inventory", "Lab", "Machine",
           "Pipeline", "SnapshotRef", "Stage", "UsageError", "WaitTimeout", "base_stage", "load_inventory",
           "mutant", "playbook", "retry", "scripts"]

if TYPE_CHECKING:
    from harness.core.errors import CheckFailed, HarnessError, UsageError, WaitTimeout
    from harness.core.links import Family, Interface
    from harness.core.names import SnapshotRef
    from harness.core.wait import retry
    from harness.engine.build.builder import Build
    from harness.engine.build.debian import base_stage
    from harness.engine.build.playbook import playbook
    from harness.engine.build.scripts import scripts
    from harness.machines.lab import Lab
    from harness.machines.machine import Machine
    from harness.model.inventory import Inventory
    from harness.model.inventory_file import load as load_inventory
    from harness.model.mutant import mutant
    from harness.model.pipeline import Pipeline
    from harness.model.stage import Stage


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (PEP 562)."""
    if name not in PUBLIC:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    module, attribute = PUBLIC[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value
