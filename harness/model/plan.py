"""What a run does with each stage: reuse its snapshot, build it, or skip it.

`plan()` decides, without touching anything, which stages to reuse and which to build for a
target: it is the pure heart of ``--from-snapshot`` and ``--rebuild``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harness.core.errors import UsageError
from harness.core.names import SnapshotRef
from harness.model.pipeline import Pipeline


class Action(enum.StrEnum):
    """What a run does with a stage."""

    REUSE = "reuse"      # a snapshot with this key exists: restore it
    BUILD = "build"      # none exists (or a rebuild was asked for): build and publish it
    SKIP = "skip"        # the run needs nothing of it


@dataclass(frozen=True)
class Step:
    """One line of a plan: a stage, the key its snapshot has, what to do."""

    stage: str
    key: str
    action: Action

    @property
    def ref(self) -> SnapshotRef:
        """Where this stage's snapshot is published under this key."""
        return SnapshotRef.of_stage(self.stage, self.key)


def plan(pipeline: Pipeline, target: str, published: Callable[[SnapshotRef], bool], *,
         from_snapshot: str | None = None, rebuild: bool = False,
         settled: Callable[[SnapshotRef], bool] = lambda ref: False,
         pinned: Mapping[str, str] | None = None) -> list[Step]:
    """What to do with each stage to have the lab as it stands after ``target``.

    - stages up to ``from_snapshot`` are restored and must be published;
    - stages after it, up to ``target``, are built even when cached (``--from-snapshot``),
      as is every stage with ``rebuild`` -- except ``settled`` ones: those this run already
      built (another xdist worker did it), or another project did (a shared base);
    - otherwise a published stage is reused and a missing one built;
    - stages after ``target`` are skipped.
    ``pinned`` fixes the keys of restored stages (e.g. a restored snapshot of an older key).
    """
    last = pipeline.index(target)
    if from_snapshot is not None:
        last = max(last, pipeline.index(from_snapshot))
    restored = pipeline.index(from_snapshot) if from_snapshot is not None else -1
    keys = pipeline.keys(pinned)
    steps = []
    for i, stage in enumerate(pipeline.stages):
        key = keys[stage.name]
        ref = SnapshotRef.of_stage(stage.name, key)
        if i > last:
            action = Action.SKIP
        elif i <= restored:
            if not published(ref):
                raise UsageError(f"--from-snapshot={from_snapshot}: stage {stage.name} has no "
                                 f"snapshot with key {key}; build it first (`harness build "
                                 f"--until {from_snapshot}`)")
            action = Action.REUSE
        elif (from_snapshot is not None or rebuild) and not settled(ref):
            action = Action.BUILD
        else:
            action = Action.REUSE if published(ref) else Action.BUILD
        steps.append(Step(stage.name, key, action))
    return steps
