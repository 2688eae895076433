"""The labs of one test session (`LabPool`): built once through a `Builder`, shared by the
tests that only read, private for the others (booted ahead as spares), torn down at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from harness.core.errors import present
from harness.core.log import logger
from harness.engine import warm
from harness.engine.build.builder import Builder
from harness.engine.spares import Spares
from harness.machines.lab import Lab
from harness.machines.store import Snapshot
from harness.model.plan import Action


class LabPool:
    """The labs of one test session, by stage: built once, shared, and degraded gracefully.

    The pool builds up to ``target`` once. If a stage fails, tests that need only earlier
    stages still get a lab (booted from the last stage that built) and the others get the
    build's error, so one broken stage does not hide the results of every scenario.
    Shared labs are booted on first use and torn down by `close()`. Private labs come from
    `private()`: with ``spares`` (per process) and ``private_wanted`` (how many private labs
    the session's tests may ask for), they are booted ahead in the background once the
    first shared lab is up (see `harness.engine.spares`); with ``lazy_spares``, only once the first
    private lab is asked for (a run that may stop early, against a mutant, boots none in vain).

    Labs kept warm (`harness.engine.warm`): with ``adopt``, the shared lab is first sought
    among the warm labs of its snapshot that an earlier run left (waiting up to ``adopt``
    seconds for one still booting), and adopted. With ``warm`` N and a ``warmer`` (which starts
    a process that boots a lab of a snapshot and leaves it warm: `harness.engine.warm.start`),
    once the shared lab of the target's snapshot is up, warmers are started until N labs of it
    are warm or warming, for the next run; `close` stops them if the run was interrupted.
    """

    def __init__(self, builder: Builder, target: str, *, from_snapshot: str | None = None,
                 rebuild: bool = False, spares: int = 0, private_wanted: int = 0,
                 lazy_spares: bool = False, warm: int = 0, adopt: float = 0,
                 warmer: Callable[[Snapshot], int] | None = None) -> None:
        self.builder = builder
        self.warm = warm
        self.adopt = adopt
        self.warmer = warmer
        self.adopted: list[str] = []  # ids of the warm labs this pool adopted
        self.warmers: list[int] = []  # pids of the warmers this pool started
        self.lazy_spares = lazy_spares
        self.spares = spares
        self.private_wanted = private_wanted
        self._spares: Spares | None = None
        self._reaper: ThreadPoolExecutor | None = None  # tears used private labs down (see later)
        self._retiring: list[Future[None]] = []
        self.target = target
        self.from_snapshot = from_snapshot
        self.rebuild = rebuild
        self._built: Snapshot | None = None
        self._error: BaseException | None = None
        self._labs: dict[str, Lab] = {}
        self._stack = contextlib.ExitStack()

    def snapshot_for(self, need: str) -> Snapshot:
        """The snapshot a test needing stage ``need`` runs on; raises the build's error if none can."""
        if self._built is None and self._error is None:
            try:
                self._built = self.builder.ensure(self.target, from_snapshot=self.from_snapshot,
                                                  rebuild=self.rebuild)
            except Exception as exc:
                self._error = exc
        if self._built is not None:
            return self._built
        error = present(self._error, "the build's error")
        done = [s for s in self.builder.done if s.action is not Action.SKIP]
        pipeline = self.builder.pipeline
        if done and pipeline.index(done[-1].stage) >= pipeline.index(need):
            found = self.builder.store.get(done[-1].ref)
            if found is not None:
                return found
        raise error

    def shared(self, snapshot: Snapshot) -> Lab:
        """The session's lab booted from ``snapshot`` (booted on first call)."""
        if snapshot.name not in self._labs:
            lab = self._lab(snapshot)
            try:
                self._labs[snapshot.name] = self._stack.enter_context(lab)
            except Exception as exc:
                if lab.id not in self.adopted:
                    raise
                logger.warning("warm lab %s could not be adopted (%s); booting one", lab.id, exc)
                self._labs[snapshot.name] = self._stack.enter_context(self.builder.lab(snapshot))
            if not self.lazy_spares:
                self._spares_for(snapshot)  # behind the shared lab, which the first tests wait for
            self._warm_behind(snapshot)
        return self._labs[snapshot.name]

    @contextlib.contextmanager
    def private(self, snapshot: Snapshot) -> Iterator[Lab]:
        """A lab of the test's own, booted from ``snapshot``: a spare if one is ready, else
        booted now; torn down on leaving."""
        spares = self._spares_for(snapshot)
        with spares.take() if spares is not None else self.builder.lab(snapshot) as lab:
            yield lab

    def _lab(self, snapshot: Snapshot) -> Lab:
        """A lab of ``snapshot``, not yet entered: one an earlier run left warm, if adopting
        and one matches (entering it adopts it), else one to boot. Private labs are never
        adopted: the warm labs are for the next run's shared lab, not this run's tests."""
        lab = self.builder.lab(snapshot)
        store, project = self.builder.store, self.builder.project
        record = warm.take(store, project, snapshot, wait=self.adopt) if self.adopt else None
        if record is None:
            return lab
        self.adopted.append(str(record["id"]))
        return lab.adopting(record)

    def _warm_behind(self, snapshot: Snapshot) -> None:
        """Start warmers of the target's ``snapshot`` until ``warm`` labs of it are warm or
        warming (once per pool)."""
        if self.warm < 1 or self.warmer is None or self.warmers or self._built is None \
                or snapshot.name != self._built.name:
            return
        with warm.counting():  # another run's warmers, started meanwhile, are counted
            have = warm.count(self.builder.store, self.builder.project, snapshot)
            for _ in range(self.warm - have):
                self.warmers.append(self.warmer(snapshot))

    def _spares_for(self, snapshot: Snapshot) -> Spares | None:
        """The spares of ``snapshot``, started on first call: only for the snapshot the
        session's private labs come from (the target's), and only if any are wanted."""
        if self._built is None or snapshot.name != self._built.name:
            return None
        if self._spares is None and self.spares > 0 and self.private_wanted > 0:
            self._spares = Spares(lambda: self.builder.lab(snapshot), size=self.spares,
                                  wanted=self.private_wanted)
            self._spares.start()
        return self._spares

    def later(self, teardown: Callable[[], None]) -> None:
        """Run ``teardown`` (a used private lab's) on a thread of its own, one after the other:
        the next test need not wait for the machines to die and the clones to go. `close`
        waits for every one and raises the first that failed."""
        if self._reaper is None:
            self._reaper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="harness-teardown")
        self._retiring.append(self._reaper.submit(teardown))

    def close(self, keep: bool = False, leave_warm: bool = True) -> None:
        """Tear down every shared lab, or with ``keep`` leave them running and log how to enter
        them; spares and used private labs are torn down either way. The warmers this pool
        started go on, but for an interrupted run (``leave_warm`` false): they are stopped,
        and tear their labs down."""
        failed: BaseException | None = None
        if self._reaper is not None:
            self._reaper.shutdown(wait=True)
            failed = next((e for e in (f.exception() for f in self._retiring) if e is not None), None)
            self._retiring.clear()
            self._reaper = None
        try:
            if self._spares is not None:
                self._spares.close()
                if self._spares.taken:
                    logger.info("private labs: %d of %d were ready when their test began",
                                self._spares.taken_ready, self._spares.taken)
        finally:  # the shared labs go (or stay, with keep) whatever happened to the spares
            if keep:
                for lab in self._labs.values():
                    entries = lab.detach()
                    logger.info("lab %s kept running (remove it with `harness destroy`); enter a "
                                "machine with:\n  %s", lab.id, "\n  ".join(entries))
                self._stack.pop_all()
            try:
                self._stack.close()
                self._labs.clear()
            finally:
                if not leave_warm:
                    for pid in self.warmers:
                        warm.stop(pid)
                    self.warmers.clear()
        if failed is not None:  # raised once every other lab is down too
            raise failed
