"""Boot CPU by unit: what each machine role of the reference lab burns while it boots, unit by unit.

A lab's resume is bound by the CPU its machines burn from start to all-ready (bench/floor.py);
this part says where that CPU goes, so a change aimed at it (a unit masked, a sandbox option
dropped) is aimed at a measured cost. Run alone: ``python -m bench.units --reps 3``.

It is read from the host, without touching the machines: each machine runs in the cgroup
``harness/<unit>`` (`harness.machines.nspawn`), nspawn's own process in ``supervisor``, the machine in
``payload``, where the machine's systemd gives PID 1 ``init.scope`` and each unit a cgroup of
its own; cgroup v2 counts the CPU of every cgroup in its ``cpu.stat`` (``usage_usec``) whether
or not the machine turned CPU accounting on, and a parent's count keeps its dead children's.
A unit that ends during the boot (a oneshot) has its cgroup removed as it exits, so the tree
is read every `POLL` seconds from the first start to all-ready and each cgroup keeps its last
figure: a oneshot counts up to its last read. What no read saw (a unit shorter than a poll,
the tail of one after its last read) is shown per slice as "exited, unseen": the slice's own
count minus its children's.

The whole lab boots at once, as a resume does (its machines compete for the cores as they do
in a run); every machine of a room is one role, "seat".
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.core.names import PREFIX, SnapshotRef
from harness.engine.build.builder import Builder
from harness.machines import nspawn
from harness.machines.lab import Lab
from harness.machines.store import Snapshot

# What the sandbox of a service costs (``--unsandboxed``): a drop-in turning off every option
# that makes PID 1 build a mount namespace, a seccomp filter or a capability set for the unit.
UNSANDBOXED = """[Service]
ProtectSystem=no
ProtectHome=no
PrivateTmp=no
PrivateDevices=no
PrivateMounts=no
ProtectKernelTunables=no
ProtectKernelModules=no
ProtectKernelLogs=no
ProtectControlGroups=no
ProtectClock=no
ProtectHostname=no
ProtectProc=default
ProcSubset=all
RestrictNamespaces=no
RestrictAddressFamilies=
SystemCallFilter=
SystemCallArchitectures=
LockPersonality=no
MemoryDenyWriteExecute=no
RestrictRealtime=no
RestrictSUIDSGID=no
ReadWritePaths=
ReadOnlyPaths=
InaccessiblePaths=
"""
POLL = 0.02  # seconds between two reads of the tree: a oneshot shorter than this may go unseen
SUPERVISOR = "nspawn (supervisor)"
UNSEEN = "exited, unseen"


def usage(cgroup: Path) -> int | None:
    """``usage_usec`` of ``cgroup``; None if it is gone."""
    try:
        text = (cgroup / "cpu.stat").read_text()
    except (FileNotFoundError, ProcessLookupError, OSError):
        return None
    for line in text.splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1])
    return None


class Watcher:
    """Reads, every `POLL` seconds, the CPU of every cgroup of the machines whose nspawn units
    start with ``prefix``; keeps each cgroup's last figure (µs), by machine unit and path."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.root = nspawn.cgroups("x")[0].parent  # the unified hierarchy's harness/
        self.seen: dict[str, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-units", daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            self.read()

    def read(self) -> None:
        """One read of every cgroup of the watched machines."""
        for machine in self.root.glob(f"{self.prefix}*"):
            figures = self.seen.setdefault(machine.name, {})
            for directory, _, _ in os.walk(machine):
                value = usage(Path(directory))
                if value is not None:
                    figures[os.path.relpath(directory, machine)] = value


def by_unit(figures: Mapping[str, int]) -> dict[str, float]:
    """One machine's boot CPU (ms) by unit, from its cgroups' last figures (path -> µs): the
    supervisor, PID 1, every unit under the payload, and per slice what exited unseen."""
    rows: dict[str, float] = {}
    if "supervisor" in figures:
        rows[SUPERVISOR] = figures["supervisor"] / 1000
    payload = {p.removeprefix("payload/"): v for p, v in figures.items() if p.startswith("payload/")}
    parents = {"payload": figures.get("payload", 0)}
    parents.update({p: v for p, v in payload.items() if p.endswith(".slice")})
    for path, value in payload.items():
        if not path.endswith(".slice"):
            name = "PID 1 (init.scope)" if path == "init.scope" else path.rsplit("/", 1)[-1]
            rows[name] = rows.get(name, 0) + value / 1000
    for parent, total in parents.items():
        inside = "" if parent == "payload" else parent + "/"
        children = sum(v for p, v in payload.items()
                       if p.startswith(inside) and "/" not in p.removeprefix(inside))
        left = (total - children) / 1000
        if left > 0.5:  # below a reading's noise: nothing
            label = f"{UNSEEN}, {parent.rsplit('/', 1)[-1]}" if parent != "payload" \
                else "payload, outside any unit (before PID 1, exited units)"
            rows[label] = left
    return rows


def role(machine: str, rooms: Mapping[str, Sequence[str]]) -> str:
    """A machine's role: "seat" for a machine of a room, else its own name."""
    return "seat" if any(machine in members for members in rooms.values()) else machine


def boot_once(builder: Builder, snapshot: Snapshot,
              unsandboxed: Sequence[str] = ()) -> dict[str, dict[str, float]]:
    """One resume of ``snapshot``'s lab to all-ready: each machine's boot CPU (ms) by unit;
    the services of ``unsandboxed`` without their sandbox (`UNSANDBOXED`, in the clones)."""
    template = builder.lab(snapshot)

    def strip(lab: Lab) -> None:
        for name, setup in lab.setups.items():
            for unit in unsandboxed if not setup.shares else ():
                drop_in = lab.root(name) / "etc/systemd/system" / f"{unit}.d" / "bench-unsandboxed.conf"
                drop_in.parent.mkdir(parents=True, exist_ok=True)
                drop_in.write_text(UNSANDBOXED)

    template.before_boot = strip if unsandboxed else None
    prefix = f"{PREFIX}{template.id}-"
    with Watcher(prefix) as watcher, template as lab:
        watcher.read()  # all-ready: the last figures
        return {name: by_unit(watcher.seen.get(machine.spec.unit, {}))
                for name, machine in lab.machines.items()}


def measure(builder: Builder, snapshot: Snapshot, reps: int,
            unsandboxed: Sequence[str] = ()) -> dict[str, Any]:
    """Per role, each unit's median boot CPU (ms) over ``reps`` resumes (and every machine of
    the role), sorted, with the role's median total (see `boot_once` for ``unsandboxed``)."""
    samples: dict[str, list[dict[str, float]]] = {}
    rooms = builder.pipeline.rooms
    for _ in range(reps):
        for machine, rows in boot_once(builder, snapshot, unsandboxed).items():
            samples.setdefault(role(machine, rooms), []).append(rows)
    result: dict[str, Any] = {}
    for name, runs in samples.items():
        units = {u for rows in runs for u in rows}
        medians = {u: statistics.median([rows.get(u, 0.0) for rows in runs]) for u in units}
        totals = [sum(rows.values()) for rows in runs]
        result[name] = {"total ms": statistics.median(totals), "n": len(runs),
                        "units": dict(sorted(medians.items(), key=lambda kv: -kv[1]))}
    return dict(sorted(result.items(), key=lambda kv: -kv[1]["total ms"]))


def markdown(figures: Mapping[str, Any], shown: int = 12) -> str:
    """Per role, its total and its ``shown`` costliest units (the rest summed)."""
    lines = ["| role | boot CPU (median) | costliest units, ms |", "| --- | --- | --- |"]
    for name, f in figures.items():
        units = list(f["units"].items())
        top = ", ".join(f"{u} {ms:.0f}" for u, ms in units[:shown])
        rest = sum(ms for _, ms in units[shown:])
        more = f", {len(units) - shown} more {rest:.0f}" if len(units) > shown else ""
        lines.append(f"| {name} (n={f['n']}) | {f['total ms']:.0f} ms | {top}{more} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    import json

    from harness.machines.store import open_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="resumes of the lab")
    parser.add_argument("--store", default=os.environ.get("HARNESS_STORE"))
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--snapshot", help="resume this snapshot (stage/key) instead of the last stage's "
                        "current one: an earlier build, to compare")
    parser.add_argument("--unsandboxed", default="", help="comma-separated services booted without "
                        "their sandbox (a drop-in in the clones): what the sandbox costs")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from stages import PIPELINE

    builder = Builder(open_store(args.store), PIPELINE)
    snapshot = builder.store.get(SnapshotRef.parse(args.snapshot)) if args.snapshot \
        else builder.ensure(PIPELINE.names[-1])
    if snapshot is None:
        raise SystemExit(f"bench.units: no snapshot {args.snapshot} in {builder.store.root} (`harness ls`)")
    began = time.monotonic()
    figures = measure(builder, snapshot, args.reps, [u for u in args.unsandboxed.split(",") if u])
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    print(markdown(figures, shown=100))
    print(f"({args.reps} resumes in {time.monotonic() - began:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
