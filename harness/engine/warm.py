"""Labs kept warm between runs: a run leaves behind pristine labs for the snapshots it used,
and the next run whose snapshot matches adopts one instead of booting.

Only a lab no test ever touched is handed on. A run that keeps labs warm (`LabPool` with
``warm`` N, the run setting ``warm_labs``) starts, once its shared lab of the target's
snapshot is up, a *warmer* per missing warm lab (`start`): a process of its own
(``python -m harness.engine.warm``) that boots a lab from the snapshot, passes its readiness
hooks and detaches it (`Lab.detach`), each console with a keeper that will hand it back, its
record (``/run/harness/labs/<id>.json``) saying ``warm``: the snapshot, its stage and key,
when it was booted and until when it may be adopted. It boots beside the run's tests, and the
run does not wait for it: a run's end is not held up by the boot of the next run's lab. While
it boots, a marker (``<pid>.warming``) says which snapshot it warms.

`take` claims a warm lab for a snapshot (a rename of its record: of two processes, one gets
it), waiting first, if none is ready, for a warmer of the snapshot still booting (its boot
began earlier than one started now would); `harness.machines.lab.Lab.adopting` then takes
its machines over and runs the readiness hooks again.

Never stale: a warm lab of the same stage but another key (a stage changed) is destroyed
when found, never adopted; so is one past its time (`harness.model.pipeline.Pipeline`'s
``warm_for``, 15 minutes unless the pipeline says: past it a machine may have renewed a
lease, rotated a journal or run a timer that a fresh boot would not have), and one whose
keepers are all gone (`harness.machines.lab.sweep_stale` at every session's start removes
those too). A run interrupted (Ctrl-C, SIGTERM) stops its warmers, which tear their labs down.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from harness.core import proc
from harness.core.log import logger
from harness.core.names import SnapshotRef
from harness.machines import records
from harness.machines.console import HARNESS_ROOT
from harness.machines.lab import Lab
from harness.machines.store import Snapshot, Store


def _matches(found: dict[str, object], store: Store, project: str) -> bool:
    return found.get("store") == str(store.root) and found.get("project") == project


def _claim(store: Store, project: str, snapshot: Snapshot) -> dict[str, object] | None:
    stage, key = snapshot.ref.group, snapshot.ref.key
    for record in records.recorded_labs():
        warm = record.get("warm")
        if not isinstance(warm, dict) or warm.get("stage") != stage \
                or not _matches(dict(record), store, project):
            continue
        lab_id = str(record["id"])
        why = records.stale(record) or (None if warm.get("key") == key else
                                        f"it was booted from key {warm.get('key')}, the stage's is now {key}")
        found = records.claim(lab_id)
        if found is None:
            continue  # another process took it first
        if why is not None:
            logger.info("removing warm lab %s: %s", lab_id, why)
            records.destroy(lab_id, store, quiet=True, record=found, why=f"warm, not adoptable: {why}")
            continue
        return found
    return None


def warming(store: Store, project: str, snapshot: Snapshot | None = None) -> list[dict[str, object]]:
    """The warmers (`start`) of ``store`` and ``project`` still booting (of ``snapshot`` only,
    if given); a marker whose warmer is gone is removed on the way."""
    found = []
    for path in sorted(records.RUN_DIR.glob("*.warming")) if records.RUN_DIR.exists() else []:
        try:
            marker = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if proc.start_time(int(marker["pid"])) != marker.get("started"):
            path.unlink(missing_ok=True)
            continue
        if _matches(marker, store, project) and (snapshot is None or marker.get("snapshot") == snapshot.name):
            found.append(marker)
    return found


def take(store: Store, project: str, snapshot: Snapshot, wait: float = 0) -> dict[str, object] | None:
    """The record of a warm lab booted from ``snapshot`` (same store, project, stage and
    key), claimed for this process, or None. With ``wait`` (seconds), if none is warm yet but
    a warmer of it is booting, wait up to that long for each such warmer to end first. Warm
    labs of the stage that are stale (another key, past their time, keepers gone) are
    destroyed on the way."""
    found = _claim(store, project, snapshot)
    deadline = time.monotonic() + wait
    for warmer in warming(store, project, snapshot) if found is None and wait > 0 else []:
        logger.info("waiting for warmer %s to leave a lab of %s warm", warmer["pid"], snapshot.name)
        proc.wait_for_exit(int(str(warmer["pid"])), max(deadline - time.monotonic(), 0))
        found = _claim(store, project, snapshot)
        if found is not None:
            break
    return found


def count(store: Store, project: str, snapshot: Snapshot) -> int:
    """How many labs of ``snapshot`` are warm (not stale) or warming, for ``store`` and ``project``."""
    ready = [r for r in records.recorded_labs()
             if isinstance(r.get("warm"), dict) and _matches(dict(r), store, project)
             and dict(r["warm"]).get("snapshot") == snapshot.name and records.stale(r) is None]  # type: ignore[call-overload]
    return len(ready) + len(warming(store, project, snapshot))


@contextlib.contextmanager
def counting() -> Iterator[None]:
    """Held (an exclusive lock on ``RUN_DIR/warm.lock``) while counting the labs of a snapshot
    warm or warming (`count`) and starting the missing warmers: two runs ending at once would
    each see the same lab missing and each start a warmer for it."""
    records.RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(records.RUN_DIR / "warm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def mark(lab: Lab, snapshot: Snapshot, warm_for: float,
         pool: Mapping[str, object] | None = None) -> dict[str, object]:
    """What the record of ``lab``, booted from ``snapshot`` and left warm, says of it: the
    ``warm`` of `Lab.detach`, adoptable for ``warm_for`` seconds from its boot; kept for
    ``pool`` (`harness.engine.pool`: its id, owner pid and start time), if given."""
    booted = lab.booted_at or time.time()
    return {"snapshot": snapshot.name, "stage": snapshot.ref.group, "key": snapshot.ref.key,
            "booted_at": booted, "until": booted + warm_for, "warmer": os.getpid(),
            **({"pool": dict(pool)} if pool else {})}


def start(store: Store, project: str, snapshot: Snapshot, pipeline: str, *, boot_timeout: float,
          pool: Mapping[str, object] | None = None) -> int:
    """Start a warmer: a process of its own that boots a lab from ``snapshot`` (the stages of
    pipeline module ``pipeline``, importable from ``project``) and leaves it warm; its pid. It
    outlives this process; `stop` ends it. With ``pool`` (`harness.engine.pool`), its marker
    and its lab's record name that pool: they are stale once the pool's owner is gone."""
    records.RUN_DIR.mkdir(parents=True, exist_ok=True)
    log = tempfile.NamedTemporaryFile(prefix="harness-warmer-", suffix=".log", delete=False)  # noqa: SIM115
    path = os.pathsep.join([project, str(HARNESS_ROOT)])  # its pipeline, and this harness
    with log:
        child = subprocess.Popen([sys.executable, "-m", "harness.engine.warm", str(store.root), project,
                                  snapshot.name, pipeline, str(boot_timeout), json.dumps(dict(pool or {}))],
                                 cwd=project, env={**os.environ, "PYTHONPATH": path},
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    marker = {"pid": child.pid, "started": proc.start_time(child.pid), "store": str(store.root),
              "project": project, "snapshot": snapshot.name, "log": log.name,
              **({"pool": dict(pool)} if pool else {})}
    part = records.RUN_DIR / f"{child.pid}.warming.part"
    part.write_text(json.dumps(marker))
    part.rename(records.RUN_DIR / f"{child.pid}.warming")
    child.returncode = 0  # not ours to wait for: no warning when this process exits first
    return child.pid


def stop(pid: int, timeout: float = 60.0) -> None:
    """End warmer ``pid`` (`start`) and its lab: SIGTERM, which it turns into tearing its lab
    down, and wait for it (SIGKILL at ``timeout``: its lab is then swept as any whose owner
    died); a lab it already left warm is destroyed."""
    proc.kill(pid, signal.SIGTERM)
    if not proc.wait_for_exit(pid, timeout):
        proc.kill(pid)
        proc.wait_for_exit(pid, 5)
    (records.RUN_DIR / f"{pid}.warming").unlink(missing_ok=True)
    for record in records.recorded_labs():
        left = record.get("warm")
        if isinstance(left, dict) and left.get("warmer") == pid:
            found = records.claim(str(record["id"]))
            if found is not None:
                records.destroy(str(record["id"]), quiet=True, record=found,
                                why=f"its warmer, pid {pid}, was stopped")


def main(argv: Sequence[str]) -> int:
    """A warmer (`start`): boot a lab of the snapshot and leave it warm, then exit."""
    from harness.engine.build.builder import Builder
    from harness.model.pipeline import load_pipeline

    store_root, project, name, module, boot_timeout, pool = argv
    sys.path.insert(0, project)
    log: object = None
    proc.interrupt_on_sigterm()  # SIGTERM (`stop`): the lab is torn down, not left half-booted
    marker = records.RUN_DIR / f"{os.getpid()}.warming"
    try:
        pipeline = load_pipeline(module)
        store = Store(Path(store_root))
        snapshot = store.get(SnapshotRef.parse(name))
        if pipeline is None or snapshot is None:
            print(f"warmer: no pipeline {module} or no snapshot {name} in {store_root}", file=sys.stderr)
            return 1
        lab = Builder(store, pipeline, project=project, boot_timeout=float(boot_timeout)).lab(snapshot)
        with contextlib.ExitStack() as stack:
            stack.push(lab.__enter__())
            lab.detach(mark(lab, snapshot, pipeline.warm_for, json.loads(pool)))
            stack.pop_all()
        print(f"lab {lab.id} left warm, for the next run of {snapshot.name}", file=sys.stderr)
    finally:
        with contextlib.suppress(OSError, ValueError):
            log = json.loads(marker.read_text()).get("log")
        marker.unlink(missing_ok=True)
    if log:  # kept if it failed: what went wrong
        Path(str(log)).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
