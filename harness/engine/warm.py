"""Labs kept warm between runs: a run leaves behind pristine labs for the snapshots it used,
and the next run whose snapshot matches adopts one instead of booting.

Only a lab no test ever touched is handed on: a spare (`harness.engine.spares`) booted from
a snapshot, its readiness hooks passed, never given to a test. At the session's end such a
lab is detached (`Lab.detach`), each console with a keeper that will hand it back, and its
record (``/run/harness/labs/<id>.json``) says ``warm``: the snapshot, its stage and key,
when it was booted and until when it may be adopted. `take` claims one for a snapshot
(a rename of its record: of two processes, one gets it), and `harness.machines.lab.Lab.adopting`
takes its machines over and runs the readiness hooks again.

Never stale: a warm lab of the same stage but another key (a stage changed) is destroyed
when found, never adopted; so is one past its time (`harness.model.pipeline.Pipeline`'s
``warm_for``, 15 minutes unless the pipeline says: past it a machine may have renewed a
lease, rotated a journal or run a timer that a fresh boot would not have), and one whose
keepers are all gone
(`harness.machines.lab.sweep_stale` at every session's start removes those too).
"""

from __future__ import annotations

import time

from harness.core.log import logger
from harness.machines import lab as labs
from harness.machines.lab import Lab
from harness.machines.store import Snapshot, Store


def take(store: Store, project: str, snapshot: Snapshot) -> dict[str, object] | None:
    """The record of a warm lab booted from ``snapshot`` (same store, project, stage and
    key), claimed for this process, or None. Warm labs of the stage that are stale (another
    key, past their time, keepers gone) are destroyed on the way."""
    stage, key = snapshot.ref.group, snapshot.ref.key
    for record in labs.recorded_labs():
        warm = record.get("warm")
        if not isinstance(warm, dict) or warm.get("stage") != stage \
                or record.get("store") != str(store.root) or record.get("project") != project:
            continue
        lab_id = str(record["id"])
        why = labs.stale(record) or (None if warm.get("key") == key else
                                     f"it was booted from key {warm.get('key')}, the stage's is now {key}")
        found = labs.claim(lab_id)
        if found is None:
            continue  # another process took it first
        if why is not None:
            logger.info("removing warm lab %s: %s", lab_id, why)
            labs.destroy(lab_id, store, quiet=True, record=found)
            continue
        return found
    return None


def mark(lab: Lab, snapshot: Snapshot, warm_for: float) -> dict[str, object]:
    """What the record of ``lab``, booted from ``snapshot`` and left warm, says of it: the
    ``warm`` of `Lab.detach`, adoptable for ``warm_for`` seconds from its boot."""
    booted = lab.booted_at or time.time()
    return {"snapshot": snapshot.name, "stage": snapshot.ref.group, "key": snapshot.ref.key,
            "booted_at": booted, "until": booted + warm_for}
