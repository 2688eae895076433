"""A pool of warm labs kept by a process of its own: ``harness up --pool N``.

A run may leave labs warm for the next (`harness.engine.warm`); a pool keeps them warm on
purpose, as many as the user asked for, until ended. Its *owner* (``python -m
harness.engine.pool``, started by `start`, in a session of its own) records itself in
``RUN_DIR/pool-<pid>.pool`` (`harness.machines.records.recorded_pools`) and starts warmers
(`harness.engine.warm.start`) until N labs of its snapshot are warm or warming. Each warmer's
marker and the lab it leaves warm name the pool; a pytest run of the same store, project,
stage and key adopts one (`harness.engine.warm.take`, as for any warm lab: no option needed)
and the owner, seeing a lab fewer, starts a replacement behind it.

Never stale: a pool started from a stage (not a snapshot's full name) follows it: once a
newer snapshot of the stage is published for the same project (the stage was rebuilt under
it), its labs of the old key are destroyed, its warmers of it stopped, and it warms the new
one; a run that builds the new key destroys the pool's labs of the old one anyway, never
adopting them. Its labs past the pipeline's ``warm_for`` are destroyed and replaced. A pool
whose owner died (SIGKILL) is swept by the next session or verb that sweeps
(`harness.machines.records.sweep_stale`), its labs with it. `stop` (``harness down
pool-<pid>``, ``harness destroy``) ends the owner, which stops its warmers and destroys its
labs. Three warmers in a row that fail end the pool: a snapshot that cannot boot is not
booted for ever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.core import proc
from harness.core.errors import HarnessError, UsageError, WaitTimeout
from harness.core.log import logger
from harness.core.names import SnapshotRef
from harness.core.wait import retry
from harness.engine import warm
from harness.machines import records
from harness.machines.console import HARNESS_ROOT
from harness.machines.store import MANIFEST, Snapshot, Store

FAILURES = 3  # warmers in a row that left no lab: the pool gives up


def labs_of(pool_id: str) -> list[Mapping[str, object]]:
    """The records of the labs pool ``pool_id`` left warm (stale or not)."""
    return [r for r in records.recorded_labs() if isinstance(r.get("warm"), dict)
            and dict(dict(r["warm"]).get("pool") or {}).get("id") == pool_id]  # type: ignore[call-overload]


def warmers_of(pool: Mapping[str, object]) -> list[dict[str, object]]:
    """The markers of the warmers of ``pool`` (its record) still booting."""
    store = Store(Path(str(pool["store"])))
    return [m for m in warm.warming(store, str(pool["project"]))
            if dict(m.get("pool") or {}).get("id") == pool["id"]]  # type: ignore[call-overload]


def counts(pool: Mapping[str, object]) -> tuple[int, int]:
    """How many labs ``pool`` (its record) has warm and adoptable, and how many it is booting."""
    ready = [r for r in labs_of(str(pool["id"])) if records.stale(r) is None]
    return len(ready), len(warmers_of(pool))


def find(pool_id: str) -> Mapping[str, object] | None:
    """The record of pool ``pool_id``, or None."""
    return next((p for p in records.recorded_pools() if p.get("id") == pool_id), None)


def start(store: Store, project: str, snapshot: Snapshot, pipeline: str, size: int, *,
          boot_timeout: float, follow: bool) -> Mapping[str, object]:
    """Start the owner of a pool of ``size`` warm labs of ``snapshot`` (of pipeline module
    ``pipeline``, importable from ``project``; with ``follow``, of its stage's newest snapshot
    for the project as it is rebuilt); its record, once it has written it. It outlives this
    process; `stop` ends it."""
    if size < 1:
        raise UsageError(f"--pool {size}: give how many labs to keep warm (1 or more)")
    records.RUN_DIR.mkdir(parents=True, exist_ok=True)
    log = tempfile.NamedTemporaryFile(prefix="harness-pool-", suffix=".log", delete=False)  # noqa: SIM115
    argv = [sys.executable, "-m", "harness.engine.pool", str(store.root), project, snapshot.name,
            pipeline, str(size), str(boot_timeout), "follow" if follow else "fixed", log.name]
    path = os.pathsep.join([project, str(HARNESS_ROOT)])  # its pipeline, and this harness
    with log:
        owner = subprocess.Popen(argv, cwd=project, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 env={**os.environ, "PYTHONPATH": path})
    found: list[Mapping[str, object]] = []

    def recorded(last_try: bool) -> bool:
        found[:] = [p for p in records.recorded_pools() if p.get("pid") == owner.pid]
        if not found and owner.poll() is not None:
            raise HarnessError(f"the pool's owner ({' '.join(argv)}) exited ({owner.returncode}) "
                               f"before it started: {Path(log.name).read_text()[-2000:]}")
        return bool(found)

    retry(recorded, 60, f"pool owner {owner.pid} to record itself")
    owner.returncode = 0  # not ours to wait for: no warning when this process exits first
    return found[0]


def stop(pool_id: str, timeout: float = 120.0) -> int:
    """End pool ``pool_id``: SIGTERM its owner, which stops its warmers and destroys its labs,
    and wait for it (SIGKILL at ``timeout``); then end whatever it left, whether it lived or
    not. How many labs it had warm."""
    pool = find(pool_id)
    had = len(labs_of(pool_id))
    if pool is not None and not records.pool_gone(pool):
        pid = int(str(pool["pid"]))
        proc.kill(pid, signal.SIGTERM)
        if not proc.wait_for_exit(pid, timeout):
            proc.kill(pid)
            proc.wait_for_exit(pid, 5)
    end(pool_id, pool)
    return had


def end(pool_id: str, pool: Mapping[str, object] | None) -> int:
    """Stop the warmers of pool ``pool_id`` (its record ``pool``) and destroy the labs it left
    warm, then its record; how many labs were destroyed."""
    for marker in warmers_of(pool) if pool is not None else []:
        warm.stop(int(str(marker["pid"])))
    destroyed = 0
    for record in labs_of(pool_id):
        found = records.claim(str(record["id"]))
        if found is not None:  # else adopted by a run meanwhile: that run's now
            records.destroy(str(record["id"]), quiet=True, record=found, why=f"its pool {pool_id} ended")
            destroyed += 1
    (records.RUN_DIR / f"{pool_id}.pool").unlink(missing_ok=True)
    return destroyed


@dataclass
class Owner:
    """The owner of a pool (`main`): keeps ``size`` labs of ``snapshot`` warm or warming."""

    store: Store
    project: str
    snapshot: Snapshot
    pipeline: str
    size: int
    boot_timeout: float
    follow: bool
    record: dict[str, object] = field(default_factory=dict)
    started: dict[int, str] = field(default_factory=dict)  # warmers started and not yet ended: their logs
    failures: int = 0
    _seen: float = 0.0  # the stage directory's mtime when last looked at (`newer`)

    @property
    def id(self) -> str:
        return str(self.record["id"])

    def open(self, log: str) -> None:
        """Write the pool's record (`harness.machines.records.recorded_pools`)."""
        pid = os.getpid()
        self.record = {"id": f"pool-{pid}", "pid": pid, "started": proc.start_time(pid),
                       "store": str(self.store.root), "project": self.project, "size": self.size,
                       "snapshot": self.snapshot.name, "follow": self.follow, "log": log}
        part = records.RUN_DIR / f"{self.id}.pool.part"
        part.write_text(json.dumps(self.record))
        part.rename(records.RUN_DIR / f"{self.id}.pool")

    def tag(self) -> dict[str, object]:
        """What the pool's warmers and warm labs say of it: id, owner pid and start time."""
        return {k: self.record[k] for k in ("id", "pid", "started")}

    def newer(self) -> Snapshot | None:
        """The stage's newest snapshot for the same project, if it is not the pool's (the
        stage was rebuilt); looked for only when the stage's directory changed."""
        stage = self.store.root / "snapshots" / self.snapshot.ref.group
        with contextlib.suppress(OSError):
            if not self.follow or stage.stat().st_mtime == self._seen:
                return None
            self._seen = stage.stat().st_mtime
        same = [s for s in (self.store.get(SnapshotRef(stage.name, m.parent.name))
                            for m in stage.glob(f"*/{MANIFEST}"))
                if s is not None and s.meta.get("project") == self.snapshot.meta.get("project")]
        newest = max(same, key=lambda s: s.created, default=None)
        return newest if newest is not None and newest.created > self.snapshot.created else None

    def wanted(self) -> bool:
        """Whether the pool has something to do: a lab fewer than ``size`` warm or warming, a
        lab of it stale or of an old snapshot, a warmer ended, a newer snapshot."""
        labs = labs_of(self.id)
        gone = [pid for pid in self.started if proc.start_time(pid) is None]
        return (len(labs) + len(warmers_of(self.record)) < self.size or bool(gone)
                or any(records.stale(r) or dict(r["warm"]).get("snapshot") != self.snapshot.name  # type: ignore[call-overload]
                       for r in labs) or self.newer() is not None)

    def tend(self) -> None:
        """Do what `wanted` found: follow a rebuilt stage, destroy labs that may not be
        adopted, count the warmers that failed, start the missing ones."""
        self._seen = 0.0  # look again: `wanted` may have seen the change already
        newer = self.newer()
        if newer is not None:
            logger.info("pool %s: %s was rebuilt as %s; warming that", self.id, self.snapshot.name,
                        newer.name)
            self.snapshot = newer
            self.record["snapshot"] = newer.name
            self.open(str(self.record["log"]))
        for pid, log in list(self.started.items()):
            if proc.start_time(pid) is not None:
                continue
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # ours: reaped, not left a zombie
            del self.started[pid]
            failed = Path(log).exists()  # a warmer removes its log when it left its lab warm
            self.failures = self.failures + 1 if failed else 0
            if failed:
                logger.warning("pool %s: warmer %d failed:\n%s", self.id, pid, Path(log).read_text()[-3000:])
                Path(log).unlink(missing_ok=True)
        if self.failures >= FAILURES:
            raise HarnessError(f"pool {self.id}: {self.failures} warmers in a row failed to boot a lab of "
                               f"{self.snapshot.name}; the pool ends (their output is above)")
        for marker in warmers_of(self.record):
            if marker.get("snapshot") != self.snapshot.name:  # stopped: not a failure
                warm.stop(int(str(marker["pid"])))
                Path(self.started.pop(int(str(marker["pid"])), str(marker["log"]))).unlink(missing_ok=True)
        for record in labs_of(self.id):
            snap = dict(record["warm"]).get("snapshot")  # type: ignore[call-overload]
            why = records.stale(record) or (None if snap == self.snapshot.name else f"it is of {snap}")
            found = records.claim(str(record["id"])) if why is not None else None
            if found is not None:  # else fine, or adopted by a run meanwhile
                logger.info("pool %s: destroying lab %s: %s", self.id, record["id"], why)
                records.destroy(str(record["id"]), self.store, quiet=True, record=found,
                                why=f"pool {self.id} renewed it: {why}")
        ready, booting = counts(self.record)
        for _ in range(self.size - ready - booting):
            pid = warm.start(self.store, self.project, self.snapshot, self.pipeline,
                             boot_timeout=self.boot_timeout, pool=self.tag())
            marker = json.loads((records.RUN_DIR / f"{pid}.warming").read_text())
            self.started[pid] = str(marker["log"])
            logger.info("pool %s: warmer %d boots a lab of %s", self.id, pid, self.snapshot.name)

    def run(self) -> None:
        """Tend the pool whenever it wants it, until interrupted (SIGTERM: `stop`)."""
        while True:
            self.tend()
            with contextlib.suppress(WaitTimeout):  # nothing to do for a while: look again anyway
                retry(lambda _: self.wanted(), 600, f"pool {self.id} to want a lab", max_interval=0.5)


def main(argv: Sequence[str]) -> int:
    """A pool's owner (`start`): keep its labs warm until SIGTERM, then end them."""
    store_root, project, name, module, size, boot_timeout, follow, log = argv
    sys.path.insert(0, project)
    proc.interrupt_on_sigterm()  # SIGTERM (`stop`): its warmers stopped, its labs destroyed
    store = Store(Path(store_root))
    snapshot = store.get(SnapshotRef.parse(name))
    if snapshot is None:
        print(f"pool: no snapshot {name} in {store_root}", file=sys.stderr)
        return 1
    owner = Owner(store, project, snapshot, module, int(size), float(boot_timeout), follow == "follow")
    owner.open(log)
    try:
        owner.run()
    except KeyboardInterrupt:
        pass
    finally:
        for pid in owner.started:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        destroyed = end(owner.id, owner.record)
        print(f"pool {owner.id} ended: {destroyed} warm lab(s) destroyed", file=sys.stderr)
    Path(log).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    logger.addHandler(logging.StreamHandler())  # to its log: what it did, and why
    logger.setLevel(logging.INFO)
    sys.exit(main(sys.argv[1:]))
