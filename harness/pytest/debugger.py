"""Stopping inside a failure: ``pytest --pdb``, or a call of Python's breakpoint in a scenario, stops with
the test's lab up and says how to enter each of its machines.

Registered by the plugin (`harness.plugin`, in its ``pytest_configure``). pytest calls
``pytest_enter_pdb`` before its debugger's first prompt, whether a test failed (``--pdb``)
or called breakpoint; at that point no fixture has been torn down, so the test's
machines are live: from the prompt ``gw.succeed("ip -br addr")`` runs in the machine, and
from another terminal ``harness shell gw --lab ID`` enters it (the lab's record names its
machines, `harness.machines.lab.Lab.boot`). Nothing here keeps the lab: leaving the debugger
(``continue``, ``quit``, Ctrl-D) lets the run go on or end, and its labs go as they always
do, at the end of their test or session; after ``continue``, Ctrl-C interrupts the run as
it would without a debugger.

>>> def test_dns(gw):
...     breakpoint()   # no -s needed: pytest suspends its capture at the prompt
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import pytest

from harness.machines.lab import Lab
from harness.machines.machine import Machine
from harness.pytest.reporting import WATCHED_KEY

CURRENT_KEY = pytest.StashKey[pytest.Item | None]()  # the test running now, for pytest_enter_pdb


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    """Remember the running test: pytest_enter_pdb is told only the config."""
    item.config.stash[CURRENT_KEY] = item
    try:
        return (yield)
    finally:
        item.config.stash[CURRENT_KEY] = None


def pytest_enter_pdb(config: pytest.Config, pdb: object) -> None:
    """Before the debugger's prompt: how to enter each machine of the test's lab."""
    item = config.stash.get(CURRENT_KEY, None)
    watched = item.stash.get(WATCHED_KEY, None) if item is not None else None
    if watched is None:
        return  # the test has no lab (or the failure came before it had one)
    # After `continue`, Ctrl-C is what it is without a debugger, a KeyboardInterrupt that ends
    # the run and tears its labs down; pdb's own handler would stop at the next line traced,
    # likely deep in the harness, with the command the test ran killed by the same Ctrl-C.
    if hasattr(pdb, "nosigint"):
        pdb.nosigint = True
    funcargs: Mapping[str, object] = getattr(item, "funcargs", {})
    print("\n".join(lines(watched.lab, funcargs)), flush=True)


def lines(lab: Lab, funcargs: Mapping[str, object]) -> list[str]:
    """What the debugger prints for ``lab``, given the test's fixture values ``funcargs``: a
    `harness shell` line per running machine, and which of the test's names are machines."""
    out = [f"harness: lab {lab.id} stays up while the debugger runs"
           + (f" (from {lab.origin})" if lab.origin else "") + "; enter a machine from another terminal:"]
    out += [f"  harness shell {name} --lab {lab.id}" for name in lab.machines]
    names = {name: value.name for name, value in funcargs.items() if isinstance(value, Machine)}
    if names:
        example = next(iter(names))
        out.append("here, the test's machines are " + ", ".join(
            name if name == machine else f"{name} ({machine})" for name, machine in names.items())
            + f": {example}.succeed(\"ip -br addr\") runs in {names[example]}"
            + " (`up` to the test's frame if the prompt is deeper)")
    out.append("leaving the debugger (continue, quit, Ctrl-D; Ctrl-C once continued) tears the lab "
               "down as usual")
    return out
