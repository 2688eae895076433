"""Stages made of shell scripts: how most teams install a machine.

``scripts("office/router", on="router")`` is a hook that runs the scripts of a directory in
a machine, in name order: every top-level file ending in ``.sh`` (``10-dnsmasq.sh``,
``20-firewall.sh``). The rest of the directory is data the scripts read (templates,
configuration files). As a stage's ``steps`` the scripts run in the booted machine; as its
``prepare`` hook, or on a tree, in the unbooted root (with the host's network, to fetch
what they need). Either way a script runs as root from a copy of the directory, its working
directory, with ``HARNESS_MACHINE`` and ``HARNESS_STAGE`` set, and the copy is removed once
they have run. A script that fails stops the build; the error names it and shows the end of
its output.

A pipeline given its inventory (``Pipeline(..., inventory=INVENTORY)``) shows it to the
scripts (`plan_env`): ``HARNESS_INVENTORY`` is the path of a JSON file of the whole plan
(`harness.model.inventory.Inventory.plan`), ``HARNESS_DOMAIN`` the lab's domain, and for each
interface of the machine (its name upper-cased, other characters than letters and digits as
``_``: ``host0`` -> ``HOST0``) ``HARNESS_ADDRESS_<IF>`` and ``HARNESS_ADDRESS6_<IF>`` (its
addresses, without a prefix length, where the inventory knows them), ``HARNESS_NETWORK_<IF>``
and ``HARNESS_NETWORK6_<IF>`` (its segment's networks, ``10.10.0.0/24``), ``HARNESS_MAC_<IF>``
and ``HARNESS_SEGMENT_<IF>``; ``HARNESS_INTERFACES`` lists the names.

Every file of the directory is part of the stage's key (the hook's ``files``): editing one
script rebuilds that stage and the later ones, nothing before it. So is the whole inventory,
which the scripts see (the hook ``reads_plan``): a changed address anywhere rebuilds it.

    STAGE = Stage.here("office", machines=("router", "printer"),
                       packages={"router": ("dnsmasq",), "printer": ("lighttpd",)},
                       steps=(scripts("office/router", on="router"),
                              scripts("office/printer", on="printer")))

Packages are best installed through the stage's ``packages`` (the shared cache, before
boot): a booted lab machine has no route out of its lab.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core.errors import HarnessError, UsageError
from harness.core.log import step
from harness.machines import nspawn, rootfs

if TYPE_CHECKING:
    from harness.engine.build.builder import Build
    from harness.model.inventory import Inventory

COPY = "/var/tmp/harness-scripts"  # on the root filesystem: /run and /tmp are the machine's own
TIMEOUT = 1800.0  # seconds one script may take


@dataclass(frozen=True)
class Scripts:
    """Run the ``*.sh`` files of ``directory`` in name order in machine ``machine``."""

    directory: Path
    machine: str

    @property
    def files(self) -> tuple[Path, ...]:
        """What the stage's key covers: the whole directory."""
        return (self.directory,)

    @property
    def reads_plan(self) -> bool:
        """Its scripts see the whole inventory: the stage's key covers it (`Pipeline.definition`)."""
        return True

    @property
    def title(self) -> str:
        return f"scripts {self.directory.name}/ on {self.machine}"

    def names(self) -> list[str]:
        """The scripts, in the order they run."""
        return sorted(p.name for p in self.directory.iterdir() if p.is_file() and p.suffix == ".sh")

    def __call__(self, build: Build) -> None:
        names = self.names()
        if not names:
            raise UsageError(f"stage {build.stage.name}: {self.directory} has no *.sh script to run")
        setup = build.lab.setups.get(self.machine)
        if setup is None:
            raise UsageError(f"stage {build.stage.name}: scripts on {self.machine}, which its lab does not "
                             f"have; it has: {', '.join(build.lab.setups)}")
        booted = self.machine in build.lab.machines
        if booted and nspawn.boots_read_only(setup.extra_args):
            raise UsageError(f"stage {build.stage.name}: scripts on {self.machine}, which boots read-only: "
                             "run them on the tree it boots")
        copy = f"{COPY}/{build.stage.name}"
        root = build.root(self.machine)
        target = root / copy.lstrip("/")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.directory, target, symlinks=True)
        env = {"HARNESS_MACHINE": self.machine, "HARNESS_STAGE": build.stage.name}
        inventory = build.pipeline.inventory
        plan = root / f"{copy}.inventory.json".lstrip("/")
        if inventory is not None:
            plan.write_text(json.dumps(inventory.plan(), indent=1, sort_keys=True) + "\n")
            env.update(plan_env(inventory, self.machine), HARNESS_INVENTORY=f"{copy}.inventory.json")
        try:
            for name in names:
                with step(f"stage {build.stage.name}: {self.machine}: {name}"):
                    (target / name).chmod(0o755)
                    self._run(build, copy, name, env, booted)
        finally:
            shutil.rmtree(target, ignore_errors=True)
            plan.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # another stage's copy is still there
                target.parent.rmdir()

    def _run(self, build: Build, copy: str, name: str, env: dict[str, str], booted: bool) -> None:
        shebang = (self.directory / name).read_bytes()[:2] == b"#!"  # else it is sh's
        argv = [f"./{name}"] if shebang else ["/bin/sh", name]
        command = f"cd {shlex.quote(copy)} && exec {shlex.join(argv)}"
        if booted:
            exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
            result = build[self.machine].run(f"export {exports}; {command}", timeout=TIMEOUT)
        else:
            result = rootfs.run_in_root(build.root(self.machine), ["/bin/sh", "-c", command], env=env,
                                        timeout=TIMEOUT, check=False)
        if result.status != 0:
            said = (result.stdout + result.stderr).strip()[-1500:]
            raise HarnessError(f"stage {build.stage.name}: script {self.directory / name} failed on "
                               f"{self.machine} (exit code {result.status}): {said}")


def plan_env(inventory: Inventory, machine: str) -> dict[str, str]:
    """The ``HARNESS_*`` variables of ``machine``'s scripts besides ``HARNESS_INVENTORY`` (see
    the module's documentation); a tree, which the inventory does not know, gets the domain
    only."""
    env = {"HARNESS_DOMAIN": inventory.domain}
    host = inventory.hosts.get(machine)
    if host is None:
        return env
    env["HARNESS_INTERFACES"] = " ".join(nic.name for nic in host.nics)
    for nic in host.nics:
        suffix = re.sub(r"[^A-Z0-9]", "_", nic.name.upper())
        segment = inventory.segments[nic.segment]
        known = {"ADDRESS": nic.address, "ADDRESS6": nic.address6, "NETWORK": segment.cidr,
                 "NETWORK6": segment.cidr6, "MAC": nic.mac, "SEGMENT": nic.segment}
        env.update({f"HARNESS_{what}_{suffix}": str(value) for what, value in known.items() if value})
    return env


def scripts(directory: str | Path, *, on: str) -> Scripts:
    """A hook running the scripts of ``directory`` (relative to the calling module's
    directory) in machine ``on``; see the module's documentation."""
    path = Path(directory)
    if not path.is_absolute():
        path = Path(sys._getframe(1).f_code.co_filename).parent / path
    if not path.is_dir():
        raise UsageError(f"scripts({str(directory)!r}, on={on!r}): no directory {path}; give the "
                         "directory holding the machine's *.sh scripts")
    return Scripts(path.resolve(), on)
