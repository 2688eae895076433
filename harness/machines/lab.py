"""A running lab: machine roots cloned from snapshots, their network, their nspawn machines.

One `Lab` owns everything it creates, under one id: the working subvolumes
``work/<id>/*`` in the store, the namespaces ``harness-<id>-*``, the machines
``harness-<id>-<name>``. Leaving its ``with`` block (normally, on error or on Ctrl-C)
stops the machines, removes the namespaces and deletes the clones. A record of the owner
pid in ``/run/harness/labs`` lets `sweep_stale()` clean up after a killed run
(`harness.machines.records`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from harness.core import proc
from harness.core.errors import HarnessError, UsageError
from harness.core.links import Interface
from harness.core.log import carried, format_elapsed, logger, step
from harness.core.names import PREFIX, LabName, WorkOwner
from harness.core.settings import DEFAULT_BOOT_TIMEOUT
from harness.machines import fleet, limits, nspawn, records, rootfs, treediff
from harness.machines.machine import Machine
from harness.machines.network import LabNetwork
from harness.machines.nspawn import MachineSpec
from harness.machines.records import claim, destroy, owner_gone, recorded_labs, stale, sweep_stale
from harness.machines.store import Store

__all__ = ["Lab", "MachineSetup", "claim", "destroy", "new_lab_id", "owner_gone", "recorded_labs",
           "stale", "sweep_stale"]  # the records' functions, where callers have always found them

MAX_BOOTING = max(32, 16 * (os.cpu_count() or 1))  # machines between start and ready at once
NICE_PER_WAVE = 2


def new_lab_id() -> str:
    """A short id, unique on this host: 32 random bits, none in use (`records.in_use`).

    A lab's teardown removes everything of its id, so two labs must never share one: with 16
    random bits (ids were once the pid and 4 hex digits), a private lab had a chance in 65536
    to draw the id of its run's shared lab, fail to boot ("namespace already exists"), and take
    the shared lab down with it as it cleaned up."""
    while True:
        lab_id = secrets.token_hex(4)
        if not records.in_use(lab_id):
            return lab_id


@dataclass(frozen=True)
class MachineSetup:
    """A machine of a lab: where its root comes from, its interfaces, extra nspawn flags."""

    name: str
    source: Path
    interfaces: tuple[Interface, ...] = ()
    extra_args: tuple[str, ...] = field(default=())
    sysctls: Mapping[str, str] = field(default_factory=dict)
    boot: bool = True  # False: a root the lab holds but never boots (a tree)
    shares: str = ""  # a tree of the lab this machine boots in place, read-only, with others
    env: Mapping[str, str] = field(default_factory=dict)  # nspawn's environment (SYSTEMD_NSPAWN_*)
    wave: int = 0  # boot order: a later wave (a later stage's clients) boots behind (see Lab.boot)


class Lab:
    """Machines cloned from snapshots, on their own network; a context manager.

    >>> setups = [MachineSetup("a", base, (Interface("a", "host0", "lan", MAC_A, ("10.1.0.1/24",)),)),
    ...           MachineSetup("b", base, (Interface("b", "host0", "lan", MAC_B, ("10.1.0.2/24",)),))]
    >>> with Lab(store, setups) as lab:
    ...     lab["a"].succeed("ping -c1 10.1.0.2")
    """

    def __init__(self, store: Store, setups: Sequence[MachineSetup], *, lab_id: str | None = None,
                 boot_timeout: float = DEFAULT_BOOT_TIMEOUT, log_dir: Path | None = None,
                 before_boot: Callable[[Lab], None] | None = None,
                 after_boot: Callable[[Lab], None] | None = None, origin: str | None = None,
                 max_booting: int = MAX_BOOTING, project: str = "") -> None:
        """``log_dir/<id>/`` receives the consoles (default: under /run/harness/labs, removed at
        teardown); ``before_boot(lab)`` runs once the roots are cloned, before any machine boots;
        ``after_boot(lab)`` once every machine is ready; ``origin`` (the snapshot it was booted
        from) goes into its record, for `harness ls`, and so does ``project`` (the root directory
        of the project that started it, as a snapshot records the project that built it:
        `harness ls` and `harness destroy` keep to their project's labs); at most
        ``max_booting`` machines boot at once (see `boot`)."""
        names = [s.name for s in setups]
        if len(set(names)) != len(names):
            raise UsageError(f"a lab's machine names must be unique: {names}")
        trees = {s.name for s in setups if not s.boot}
        for setup in setups:
            if setup.shares and (setup.shares not in trees or not nspawn.boots_read_only(setup.extra_args)):
                raise UsageError(f"machine {setup.name} shares {setup.shares!r}, which must be a tree of "
                                 f"the lab ({', '.join(sorted(trees)) or 'none'}) that it boots read-only "
                                 "(--read-only or --volatile)")
        self.store = store
        self.setups = {s.name: s for s in setups}
        self.id = lab_id or new_lab_id()
        self.boot_timeout = boot_timeout
        self.log_dir = (log_dir or records.RUN_DIR) / self.id
        self._own_logs = log_dir is None
        self.before_boot = before_boot
        self.after_boot = after_boot
        self.origin = origin
        self.project = project
        self.max_booting = max(1, max_booting)
        booted = [s for s in setups if s.boot]
        self.network = LabNetwork(self.id, [i for s in booted for i in s.interfaces],
                                  [s.name for s in booted], {s.name: s.sysctls for s in booted})
        self.machines: dict[str, Machine] = {}
        self.booted_at: float | None = None  # when every machine was ready (time.time())
        self._adopt: Mapping[str, object] | None = None
        self._aborted = threading.Event()
        self._stack = contextlib.ExitStack()

    def __getitem__(self, name: str) -> Machine:
        try:
            return self.machines[name]
        except KeyError:
            raise UsageError(f"lab {self.id} has no machine {name!r}; it has: "
                             f"{', '.join(self.machines) or 'none'}") from None

    def root(self, name: str) -> Path:
        """Where machine ``name``'s root lives: its own clone, or the tree it shares."""
        return self.store.work_path(self.id, self.setups[name].shares or name)

    def adopting(self, record: Mapping[str, object]) -> Lab:
        """This lab, to be entered by adopting the running lab of ``record`` (one detached with
        its consoles' sockets: `detach`, `harness.machines.warm`) instead of booting one: the
        same setups, its machines taken over (`Machine.adopt`), ``after_boot`` run again. The
        record must be this process's already (`harness.machines.warm.claim`)."""
        self.id = str(record["id"])
        self.network = LabNetwork(self.id, self.network.interfaces, self.network.machines,
                                  self.network.sysctls)
        self.log_dir = self.log_dir.parent / self.id
        self._adopt = record
        return self

    def _adopted(self, record: Mapping[str, object]) -> None:
        booted = [n for n, s in self.setups.items() if s.boot]
        nspawn_pids, leaders = dict(record.get("nspawn") or {}), dict(record.get("machines") or {})  # type: ignore[call-overload]
        if sorted(nspawn_pids) != sorted(booted):
            raise HarnessError(f"lab {self.id} runs {', '.join(sorted(nspawn_pids)) or 'nothing'}, "
                               f"not {', '.join(sorted(booted))}: it cannot be adopted")
        self._stack.callback(self._release)
        self._record()  # ours from now on, before anything else can fail
        self.booted_at = float(dict(record.get("warm") or {}).get("booted_at") or time.time())  # type: ignore[call-overload]
        self.network.adopt()
        self._stack.push(self.network)
        for name in booted:
            machine = Machine.adopt(self._spec(name), {
                "pid": nspawn_pids[name], "leader": leaders[name], "console": self.console_socket(name)},
                console_log=self.log_dir / f"{name}.console", boot_timeout=self.boot_timeout)
            self._stack.callback(machine.stop)
            self.machines[name] = machine
        self._record()
        if self.after_boot is not None:
            self.after_boot(self)  # a lab that rotted while warm fails its readiness here

    def console_socket(self, name: str) -> Path:
        """Where the keeper of machine ``name``'s console listens once the lab is detached."""
        return records.RUN_DIR / self.id / f"{name}.console.sock"

    def __enter__(self) -> Lab:
        began = time.monotonic()
        if self._adopt is not None:
            try:
                self._adopted(self._adopt)
            except BaseException:
                self._stack.close()
                raise
            logger.info("lab %s: %d machine(s) adopted, warm, from %s in %s", self.id, len(self.machines),
                        self.origin, format_elapsed(time.monotonic() - began))
            return self
        try:
            to_boot = [s for s in self.setups.values() if s.boot]
            ports: dict[str, int] = {}
            for interface in (i for s in to_boot for i in s.interfaces):
                ports[interface.segment] = ports.get(interface.segment, 0) + 1
            limits.ensure(len(to_boot) + len(records.nspawn_pids(f"--machine={PREFIX}")), ports)
            self._record()
            self._stack.callback(self._release)
            own = [s for s in self.setups.values() if not s.shares]
            with step(f"lab {self.id}: clone {len(own)} root(s)"):
                for setup in own:
                    self.store.clone(setup.source, self.root(setup.name))
            if self.before_boot is not None:
                self.before_boot(self)
            self._stack.enter_context(self.network)
            self.boot([name for name, setup in self.setups.items() if setup.boot])
            self._check_aborted()  # killed machines may have looked ready a moment before
            if self.after_boot is not None:
                self.after_boot(self)
            self._check_aborted()
            self.booted_at = time.time()
        except BaseException:
            self._stack.close()
            raise
        if self.origin:  # a lab booted from a snapshot (a build's own lab is part of its stage)
            booted = [n for n, s in self.setups.items() if s.boot]
            logger.info("lab %s: %d machine(s) up from %s in %s", self.id, len(booted), self.origin,
                        format_elapsed(time.monotonic() - began))
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        machines = list(self.machines.values())
        for machine in machines:  # the clones go next: no orderly shutdown, all at once
            machine.request_stop(kill=True)
        for machine in machines:
            machine.discard()
        self._stack.close()

    def abort(self) -> None:
        """End a boot under way in another thread (`__enter__`, `boot`), at once: no machine
        starts after this, those started are killed, so their waits fail now instead of at
        the boot deadline, and the booting thread tears the lab down as after any failure.
        For a session that closes while a spare lab boots (Ctrl-C, SIGTERM)."""
        self._aborted.set()
        for machine in list(self.machines.values()):
            machine.abort()

    def _check_aborted(self) -> None:
        if self._aborted.is_set():
            raise HarnessError(f"lab {self.id}: boot aborted (the session is closing)")

    def boot(self, names: Sequence[str], wait: bool = True) -> None:
        """Boot machines ``names``, their boots overlapping: at most ``max_booting`` between
        start and ready at any time (a room of a hundred does not start at once), all against
        one deadline, ``boot_timeout`` per ``max_booting`` machines. A failure names every
        machine that did not become ready, and what it showed.

        Machines start in wave order (`MachineSetup.wave`: a pipeline's stages), each once the
        previous one's PID 1 exists, later waves at a lower CPU priority: the servers of
        earlier stages come up before their clients ask them. Spawned all at once, a big room
        booted a little faster but a small lab much slower, its DHCP clients asking before
        gw's Kea listened and waiting out their retransmission (the figures: bench/README.md,
        "Rooms at scale")."""
        if not wait:
            for name in names:
                self._start(name)
            return
        window = threading.BoundedSemaphore(self.max_booting)
        deadline = time.monotonic() + self.boot_timeout * math.ceil(len(names) / self.max_booting)
        failures: dict[str, BaseException] = {}

        def ready(machine: Machine) -> None:
            try:
                machine.wait_ready(timeout=max(deadline - time.monotonic(), 0.5))
            except BaseException as exc:  # reported with every other machine's, below
                failures[machine.name] = exc
            finally:
                window.release()

        waiters = ThreadPoolExecutor(max_workers=self.max_booting, thread_name_prefix=f"boot-{self.id}")
        spawned: list[Machine] = []
        try:
            for name in sorted(names, key=lambda n: self.setups[n].wave):  # all, even after a failure
                self._check_aborted()
                if spawned:  # the previous one's PID 1 first: the stagger (see above)
                    with contextlib.suppress(HarnessError):  # its waiter reports it
                        spawned[-1].wait_started(max(deadline - time.monotonic(), 0.5))
                if not window.acquire(timeout=max(deadline - time.monotonic(), 0)):
                    failures[name] = HarnessError(f"machine {name} was not started: the boot deadline "
                                                  f"passed while {self.max_booting} others booted")
                    break
                try:
                    spawned.append(self._start(name))
                    waiters.submit(carried(ready), spawned[-1])  # its lines are the caller's
                except BaseException:
                    window.release()
                    raise
            waiters.shutdown(wait=True)
        except BaseException:
            waiters.shutdown(wait=False, cancel_futures=True)  # the machines go with the lab
            raise
        interrupted = [e for e in failures.values() if not isinstance(e, Exception)]
        if interrupted:
            raise interrupted[0]
        if len(failures) == 1:
            raise next(iter(failures.values()))
        if failures:
            raise fleet.summary(failures, len(names), f"lab {self.id}: boot")
        if (records.RUN_DIR / f"{self.id}.json").exists():  # it names the machines `harness shell` enters
            self._record()

    def _spec(self, name: str) -> MachineSpec:
        setup = self.setups[name]
        return MachineSpec(name=name, root=self.root(name), unit=str(LabName(self.id, name)),
                           netns=self.network.namespace_path(name), extra_args=setup.extra_args,
                           env=setup.env, nice=min(19, NICE_PER_WAVE * setup.wave),
                           machine_id=rootfs.shared_machine_id(self.root(name), name) if setup.shares else "")

    def _start(self, name: str) -> Machine:
        machine = Machine(self._spec(name), console_log=self.log_dir / f"{name}.console",
                          boot_timeout=self.boot_timeout)
        machine.spawn()
        self._stack.callback(machine.stop)
        self.machines[name] = machine
        if self._aborted.is_set():  # `abort` ran between the check and now: it missed this one
            machine.abort()
        return machine

    @contextlib.contextmanager
    def roots_as_seen(self) -> Iterator[dict[str, Path]]:
        """Each machine's root as the machine sees it now, to snapshot: its own root, or, for a
        machine booted with a volatile overlay (a diskless machine), a clone of that root with
        what it wrote to the overlay copied in. A machine that shares a tree and wrote nothing
        has no root of its own: it boots the tree again. The clones are deleted on leaving."""
        owner = str(WorkOwner("keep", self.id, os.getpid(), secrets.token_hex(2)))
        roots = {name: self.root(name) for name, setup in self.setups.items() if not setup.shares}
        try:
            for name, machine in self.machines.items():
                # --volatile=overlay only: with =yes or =state, the root is not the tree below
                volatile = "--volatile=overlay" in self.setups[name].extra_args
                if not volatile or machine.leader is None:
                    continue
                seen, tree = Path(f"/proc/{machine.leader}/root"), self.root(name)
                changes = treediff.diff(tree, seen, treediff.mount_points(machine.leader))
                roots[name] = self.store.clone(tree, self.store.work_path(owner, name))
                treediff.copy_changes(changes, seen, roots[name])
            yield roots
        finally:
            self.store.release(owner)

    def detach(self, warm: Mapping[str, object] | None = None) -> list[str]:
        """Leave the lab running after this process exits: machines, network and clones stay,
        each console with a keeper that hands it to a process adopting the lab (`adopting`).
        With ``warm`` (``{snapshot, key, booted_at, until}``: `harness.machines.warm`), the
        record says the lab is pristine, for a later run to adopt.

        Returns, per machine, how to enter it. `destroy` (``harness destroy``) removes it.
        """
        entries = []
        keepers: dict[str, list[int | None]] = {}
        nspawn_pids = {name: machine.pid for name, machine in self.machines.items()}
        for name, machine in self.machines.items():
            leader = machine.leader
            self.console_socket(name).parent.mkdir(parents=True, exist_ok=True)
            keeper = machine.detach(self.console_socket(name))
            keepers[name] = [keeper, proc.start_time(keeper)]
            entries.append(f"{name}: nsenter --target={leader} --all -- /bin/bash -l")
        self._record(kept=True, nspawn=nspawn_pids, keepers=keepers,
                     **({"warm": dict(warm)} if warm is not None else {}))
        self._stack.pop_all()
        return entries

    def reboot(self, name: str) -> Machine:
        """Power machine ``name`` off cleanly and boot it again; return the new machine."""
        self.stop(name)
        self.boot([name])
        return self[name]

    def reboot_all(self, names: Sequence[str]) -> None:
        """Power machines ``names`` off together, then boot them again together (a boot storm)."""
        for name in names:
            self[name].request_stop()
        for name in names:
            self.stop(name)
        self.boot(names)

    def stop_all(self) -> None:
        """Power every machine off cleanly (roots, network and clones stay: ready to snapshot)."""
        for machine in self.machines.values():
            machine.request_stop()
        for name in reversed(list(self.machines)):
            self.stop(name)

    def stop(self, name: str) -> None:
        """Power machine ``name`` off (it can be booted again with `boot`)."""
        self[name].stop()
        del self.machines[name]

    def _record(self, kept: bool = False, **more: object) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        records.RUN_DIR.mkdir(parents=True, exist_ok=True)
        record = {"id": self.id, "pid": None if kept else os.getpid(),
                  "started": None if kept else proc.start_time(os.getpid()), "store": str(self.store.root),
                  "machines": {n: m.leader for n, m in self.machines.items()},
                  "logs": str(self.log_dir), "origin": self.origin, "project": self.project, **more}
        part = records.RUN_DIR / f"{self.id}.json.part"  # whole or not at all: others read it at any time
        part.write_text(json.dumps(record))
        part.rename(records.RUN_DIR / f"{self.id}.json")

    def _release(self) -> None:
        with step(f"lab {self.id}: tear down"):
            records.destroy(self.id, self.store, quiet=True)  # the one teardown path, whatever is left
