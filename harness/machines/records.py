"""Records of the labs running on this host, and the one way a lab goes (`destroy`).

Each lab is recorded in ``RUN_DIR/<id>.json`` by the `harness.machines.lab.Lab` that owns it:
its owner (pid and start time; none for a lab left running on purpose), its store, project,
origin, machines and their systemd-nspawn processes, and for a lab left warm for a later run
(`harness.engine.warm`) its consoles' keepers and ``warm``. From the records alone, a later
process lists the labs (`recorded_labs`), tells the ones no one owns any more (`stale`),
takes a warm one for itself (`claim`), notes what was done to one (`amend`: `harness apply`)
and removes every trace of one (`destroy`).

A pool of warm labs (`harness.engine.pool`, ``harness up --pool N``) is recorded beside them
in ``RUN_DIR/pool-<pid>.pool``: its owner process (pid and start time), store, project and
snapshot. Each lab it keeps warm, and each of its warmers' markers, names it (``pool``): once
its owner is gone, they are stale as well, and `sweep_stale` removes the pool with them.

A lab destroyed by a process other than its owner (a sweep, `harness down`/`destroy`, a
pool) is noted in ``RUN_DIR/destroyed.log``: by which process and why. A run whose machines
vanish under it then says who took them (`destroyed_by`), instead of only that they are gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from harness.core import proc
from harness.core.errors import HarnessError
from harness.core.log import logger
from harness.core.names import LabName
from harness.machines import network, nspawn
from harness.machines.nspawn import find_leader
from harness.machines.store import Store

RUN_DIR = Path("/run/harness/labs")
DESTROYED_LOG = RUN_DIR / "destroyed.log"
DESTROYED_LOG_MAX = 256 * 1024  # bytes: past it, the older half goes


def recorded_labs() -> list[Mapping[str, object]]:
    """Records of every lab started on this host and not torn down."""
    found = []
    for path in sorted(RUN_DIR.glob("*.json")) if RUN_DIR.exists() else []:
        with contextlib.suppress(ValueError, OSError):
            found.append(json.loads(path.read_text()))
    return found


def recorded_pools() -> list[Mapping[str, object]]:
    """Records of every pool of warm labs (`harness.engine.pool`) started on this host and not ended."""
    found = []
    for path in sorted(RUN_DIR.glob("pool-*.pool")) if RUN_DIR.exists() else []:
        with contextlib.suppress(ValueError, OSError):
            found.append(json.loads(path.read_text()))
    return found


def pool_gone(pool: Mapping[str, object]) -> bool:
    """Whether the owner of a pool (its record, or the ``pool`` a lab or marker of it names:
    id, pid and start time) is gone; a reused pid is told apart by its start time."""
    return proc.start_time(int(str(pool.get("pid")))) != pool.get("started")


def owner_gone(record: Mapping[str, object]) -> bool:
    """Whether the process that owned a recorded lab is gone (killed without cleaning up).
    A kept lab (no owner) is never stale, but a warm one is once all its consoles' keepers
    are gone (its machines died); a reused pid is told apart by its start time."""
    pid = record.get("pid")
    if pid is None:
        keepers = dict(record.get("keepers") or {}) if record.get("warm") else {}  # type: ignore[call-overload]
        return bool(keepers) and not any(proc.start_time(int(k)) == started
                                         for k, started in keepers.values())
    started = proc.start_time(int(str(pid)))
    return started is None or (record.get("started") is not None and started != record["started"])


def stale(record: Mapping[str, object], now: float | None = None) -> str | None:
    """Why a recorded lab is no one's any more (`owner_gone`), or, left warm, past the time it
    may be adopted until (its ``warm.until``); None while it is someone's, or adoptable."""
    if owner_gone(record):
        return ("the keepers of its consoles are gone" if record.get("pid") is None
                else f"its owner, pid {record['pid']}, is gone")
    warm = record.get("warm")
    if isinstance(warm, dict) and isinstance(warm.get("pool"), dict) and pool_gone(warm["pool"]):
        return f"its pool's owner, pid {warm['pool'].get('pid')}, is gone"
    now = time.time() if now is None else now
    if isinstance(warm, dict) and float(warm.get("until") or 0) < now:
        booted = float(warm.get("booted_at") or 0)
        return f"it booted {now - booted:.0f}s ago, past the {float(warm['until']) - booted:.0f}s " \
               "a warm lab may be adopted"
    return None


def amend(lab_id: str, fields: Mapping[str, object]) -> None:
    """Set ``fields`` in lab ``lab_id``'s record (whole or not at all: others read it at any
    time); a lab without a record (torn down meanwhile) is left alone."""
    path = RUN_DIR / f"{lab_id}.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    part = RUN_DIR / f"{lab_id}.json.amended-{os.getpid()}"
    part.write_text(json.dumps({**record, **fields}))
    part.rename(path)


def in_use(lab_id: str) -> bool:
    """Whether anything on this host holds lab id ``lab_id``: a record (claimed or not), a
    namespace or a machine's cgroup (a lab left behind without a record)."""
    prefix = LabName.prefix(lab_id)
    return ((RUN_DIR / f"{lab_id}.json").exists() or lab_id in claimed_ids()
            or any(n.startswith(prefix) for n in network.lab_namespaces())
            or bool(nspawn.units_with_cgroups(prefix)))


def claimed_ids() -> set[str]:
    """The labs whose record a process has claimed (`claim`) and not yet written anew or
    destroyed: they have pieces and, for that moment, no record."""
    found = RUN_DIR.glob("*.claimed-*") if RUN_DIR.exists() else []
    return {p.name.partition(".claimed-")[0] for p in found}


def claim(lab_id: str) -> dict[str, object] | None:
    """Take warm lab ``lab_id``'s record away, atomically (a rename: of two processes, one
    gets it); its contents, or None if another process took it first (or it is no longer
    warm). The caller writes the record anew (a `Lab` adopting it) or destroys the lab."""
    path, taken = RUN_DIR / f"{lab_id}.json", RUN_DIR / f"{lab_id}.claimed-{os.getpid()}"
    try:
        os.rename(path, taken)
    except FileNotFoundError:
        return None
    try:
        found = json.loads(taken.read_text())
    except (OSError, ValueError):
        found = {}
    if not found.get("warm"):  # adopted since it was read: its new owner's, put back
        os.rename(taken, path)
        return None
    taken.unlink(missing_ok=True)
    return dict(found)


def sweep_stale() -> list[str]:
    """Destroy every lab whose owner is gone (a run killed with SIGKILL) and every warm lab
    whose keepers are gone, whose time is past or whose pool's owner is gone (`stale`); end
    the pools whose owner is gone, and their warmers still booting; say so; return the ids
    (labs' and pools')."""
    swept = []
    for pool in recorded_pools():
        if pool_gone(pool):
            logger.warning("removing pool %s: its owner, pid %s, is gone", pool["id"], pool["pid"])
            end_warmers(str(pool["id"]))
            (RUN_DIR / f"{pool['id']}.pool").unlink(missing_ok=True)
            swept.append(str(pool["id"]))
    for record in recorded_labs():
        why = stale(record)
        if why is None:
            continue
        lab_id = str(record["id"])
        if record.get("warm") and claim(lab_id) is None:
            continue  # adopted meanwhile by another run
        logger.warning("removing stale lab %s: %s", lab_id, why)
        destroy(lab_id, record=record, why=f"swept as stale: {why}")
        swept.append(lab_id)
    return swept


def end_warmers(pool_id: str) -> None:
    """SIGTERM the warmers (`harness.engine.warm`) still booting a lab for pool ``pool_id``:
    each tears its lab down and exits. Not waited for: a lab one left warm meanwhile is stale
    (its pool is gone) and goes with the next sweep."""
    for path in RUN_DIR.glob("*.warming") if RUN_DIR.exists() else []:
        with contextlib.suppress(OSError, ValueError, KeyError):
            marker = json.loads(path.read_text())
            pid, of = int(marker["pid"]), dict(marker.get("pool") or {})
            if of.get("id") == pool_id and proc.start_time(pid) == marker["started"]:
                proc.kill(pid, signal.SIGTERM)


def destroy(lab_id: str, store: Store | None = None, *, quiet: bool = False,
            record: Mapping[str, object] | None = None, why: str | None = None) -> None:
    """Remove every trace of lab ``lab_id``: machines, namespaces, clones, logs, record.

    The one way a lab goes: a `Lab` leaving its ``with`` block (after stopping the machines it
    knows), `harness down` and `harness destroy`, and the sweep of labs whose owner died. Every
    caller but the lab's own teardown says ``why``, and it is noted (`destroyed_by`)."""
    if record is None:  # given when claimed away (`claim`): no longer on file
        record = next((r for r in recorded_labs() if r.get("id") == lab_id), {})
    if why is not None:
        _note_destroyed(lab_id, record, why)
    pids = nspawn_pids(f"--machine={LabName.prefix(lab_id)}")
    for pid in pids:  # every machine at once: their clones are about to go, nothing to flush
        leader = find_leader(pid)
        if leader:
            proc.kill(leader)  # PID 1 dying takes the machine's whole namespace down
        proc.kill(pid)
    for pid in pids:
        proc.wait_for_exit(pid, 10)
    for unit in nspawn.units_with_cgroups(LabName.prefix(lab_id)):
        nspawn.kill(unit)  # machines whose nspawn died with their owner still run: kill them
        nspawn.forget(unit)
    removed = network.remove_lab_namespaces(lab_id)
    for leftover in nspawn.STATE.glob(f"propagate/{LabName.prefix(lab_id)}*"):
        nspawn.forget(leftover.name)
    if record.get("store"):
        with contextlib.suppress(HarnessError):  # a store that is gone holds no clones
            store = Store(Path(str(record["store"])))
    if store is not None:
        for root in store.root.glob(f"work/{lab_id}/*"):
            machine = LabName.parse(f"{LabName.prefix(lab_id)}{root.name}")
            if root.is_dir() and machine is not None:
                nspawn.forget(str(machine), root)
        store.release(lab_id)
    if record.get("logs") and Path(str(record["logs"])).parent == RUN_DIR:
        shutil.rmtree(str(record["logs"]), ignore_errors=True)
    shutil.rmtree(RUN_DIR / lab_id, ignore_errors=True)  # its consoles' sockets, whatever the logs
    (RUN_DIR / f"{lab_id}.json").unlink(missing_ok=True)
    if not quiet:
        logger.info("lab %s destroyed (%d namespace(s))", lab_id, len(removed))


def _note_destroyed(lab_id: str, record: Mapping[str, object], why: str) -> None:
    """Append to `DESTROYED_LOG` that this process destroys lab ``lab_id`` (of ``record``), and
    why; one line, appended whole (O_APPEND), the older half dropped past `DESTROYED_LOG_MAX`."""
    try:
        command = Path("/proc/self/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        command = ""
    line = json.dumps({"lab": lab_id, "at": time.time(), "by": os.getpid(), "command": command.strip()[:300],
                       "owner": record.get("pid"), "why": why}) + "\n"
    with contextlib.suppress(OSError):
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        if DESTROYED_LOG.exists() and DESTROYED_LOG.stat().st_size > DESTROYED_LOG_MAX:
            kept = DESTROYED_LOG.read_bytes()[DESTROYED_LOG_MAX // 2:]
            part = DESTROYED_LOG.with_name(f"{DESTROYED_LOG.name}.{os.getpid()}")
            part.write_bytes(kept[kept.find(b"\n") + 1:])
            part.rename(DESTROYED_LOG)
        with open(DESTROYED_LOG, "a") as log:
            log.write(line)


def destroyed_by(lab_id: str) -> str | None:
    """Who destroyed lab ``lab_id`` and why, if a process other than its owner did (the last
    such note of `destroy`), in a phrase: "destroyed at 22:48:01 by pid 1234 (`harness
    destroy`): why"; None if none did."""
    try:
        lines = DESTROYED_LOG.read_text().splitlines()
    except OSError:
        return None
    for text in reversed(lines):
        with contextlib.suppress(ValueError):
            note = json.loads(text)
            if note.get("lab") == lab_id:
                when = time.strftime("%H:%M:%S", time.localtime(float(note["at"])))
                return f"destroyed at {when} by pid {note['by']} (`{note['command']}`): {note['why']}"
    return None


def nspawn_pids(marker: str) -> list[int]:
    """The systemd-nspawn processes with an argument that starts with ``marker``."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            args = cmdline.read_bytes().split(b"\0")
            if args and args[0].endswith(b"systemd-nspawn") and any(
                    a.startswith(marker.encode()) for a in args):
                pids.append(int(cmdline.parent.name))
    return pids
