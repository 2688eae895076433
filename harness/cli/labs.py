"""The ``harness`` verbs for labs by hand: up, shell, apply, down, destroy."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.cli import args as cli_args
from harness.core import proc
from harness.core.errors import CheckFailed, HarnessError, UsageError
from harness.core.names import PREFIX, LabName
from harness.engine import pool
from harness.machines import lab, network, nspawn, records
from harness.machines.lab import Lab
from harness.machines.store import Snapshot, Store


def live_labs() -> list[Mapping[str, object]]:
    """Labs recorded on this host whose owner is alive, or that were kept on purpose."""
    return [r for r in lab.recorded_labs() if not lab.owner_gone(r)]


def of_project(record: Mapping[str, object], project: str) -> bool:
    """Whether a recorded lab was started by ``project`` (a project's root directory, as
    `cli_args.project_root` gives it). A lab recorded without a project (started before labs
    recorded theirs, or by hand) belongs to none: only ``--all`` reaches it."""
    return bool(record.get("project")) and record.get("project") == project


def _one_lab(wanted: str | None) -> Mapping[str, object]:
    labs = live_labs()
    if wanted is not None:
        found = [r for r in labs if r.get("id") == wanted]
        if not found:
            raise UsageError(f"no running lab {wanted}; running: "
                             f"{', '.join(str(r['id']) for r in labs) or 'none'}")
        return found[0]
    this = cli_args.project_root()  # another project's kept lab is not the one meant (one of none may be)
    kept = [r for r in labs if r.get("pid") is None and not r.get("warm")
            and r.get("project") in (None, "", this)]
    if len(kept) == 1:
        return kept[0]
    if not kept:
        raise UsageError("no lab is running: start one with `harness up`")
    raise UsageError(f"{len(kept)} labs are running: give one with --lab "
                     f"({', '.join(str(r['id']) for r in kept)})")


def cmd_up(args: argparse.Namespace) -> int:
    """Boot a lab from a stage (built if needed) or a snapshot, and leave it running."""
    from harness.engine.build.builder import Builder  # imported when used: other verbs start faster
    store = cli_args.store(args)
    pipeline = cli_args.pipeline(args)
    builder = Builder(store, pipeline, boot_timeout=cli_args.run_settings(args).boot_timeout,
                      project=cli_args.project_root())
    ref = args.from_snapshot or pipeline.names[-1]
    snap = cli_args.snapshot(args, store, ref) if "/" in ref else builder.ensure(pipeline[ref].name)
    if args.pool is not None:
        return _up_pool(args, store, snap, follow="/" not in ref)
    running: Lab = builder.lab(snap).__enter__()
    entries = running.detach()
    print(f"lab {running.id} is up, from {snap.name}:")
    for name in running.setups:
        if running.setups[name].boot:
            print(f"  harness shell {name}" + (f" --lab {running.id}" if len(live_labs()) > 1 else ""))
    print(f"stop it with `harness down {running.id}`; or enter a machine directly:\n  "
          + "\n  ".join(entries))
    return 0


def _up_pool(args: argparse.Namespace, store: Store, snap: Snapshot, *, follow: bool) -> int:
    """`harness up --pool N`: start the owner of a pool of N warm labs of ``snap``."""
    started = pool.start(store, cli_args.project_root(), snap, cli_args.pipeline_name(args), args.pool,
                         boot_timeout=cli_args.run_settings(args).boot_timeout, follow=follow)
    print(f"pool {started['id']} is up: it keeps {args.pool} lab(s) of {snap.name} warm"
          + (" (and of the stage's next snapshot, when it is rebuilt)" if follow else "")
          + "; pytest runs of this project adopt them (`harness ls` shows them); "
          f"end it with `harness down {started['id']}`")
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    """Open a login shell (or run COMMAND) in a machine of a running lab."""
    record = _one_lab(args.lab)
    machines = dict(record.get("machines") or {})  # type: ignore[call-overload]
    if args.machine not in machines:
        raise UsageError(f"lab {record['id']} has no machine {args.machine!r}; it has: "
                         f"{', '.join(machines) or 'none'}")
    leader = int(machines[args.machine])
    if not proc.alive(leader):
        raise HarnessError(f"machine {args.machine} of lab {record['id']} is not running any more: "
                           f"`harness down {record['id']}`, then `harness up` again")
    env = {"PATH": proc.PATH, "TERM": os.environ.get("TERM", "xterm"), "HOME": "/root", "LANG": "C.UTF-8"}
    argv = shell_argv(leader, args.words)
    os.execvpe(argv[0], argv, env)
    return 0  # not reached


def shell_argv(leader: int, words: Sequence[str]) -> list[str]:
    """What `harness shell` executes to enter the machine whose PID 1 is ``leader``: ``words``
    (the arguments after ``--``) as they are, or a login shell.

    No shell reads the words on the way, as with ``docker exec`` and ``nsenter`` (not as with
    ssh, which joins them): ``-- sh -c 'echo one; echo two'`` runs ``sh`` with those two
    arguments, and a pipe inside the machine is ``-- sh -c 'journalctl -b | tail'``.

    >>> shell_argv(4242, ["sh", "-c", "echo one; echo two"])
    ['nsenter', '--target=4242', '--all', '--', 'sh', '-c', 'echo one; echo two']
    """
    return nspawn.enter(leader, list(words) or ["/bin/bash", "-l"])


def cmd_apply(args: argparse.Namespace) -> int:
    """Run a changed stage's steps (scripts, a playbook) again in the machines of a lab started
    with `harness up` (a Python stage: build it again and swap its machines in), and say what
    that changed; no snapshot is made from it."""
    from harness.engine import apply  # imported when used: other verbs start faster
    record = _one_lab(args.lab)
    pipeline = cli_args.pipeline(args)
    try:
        said, _ = apply.apply(record, pipeline, args.stage, check_idempotent=args.check_idempotent,
                                 progress=print)
    except CheckFailed as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 1
    if args.check_idempotent:
        print(f"idempotent: the second run of {', '.join(said)} changed nothing")
    print(f"lab {record['id']} now differs from {record.get('origin')}; no snapshot was made from it "
          "(`harness build` builds the stage from its files)")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop a lab started with `harness up` (or one a run left warm, given by its id) and remove
    everything it holds; returns once its machines' processes are gone and their names free for
    the next `harness up`. A pool (`harness up --pool`), given by its id (pool-PID), ends with
    its owner, its warmers and its warm labs."""
    if args.lab and args.lab.startswith("pool-"):
        if pool.find(args.lab) is None:
            pools = ", ".join(str(p["id"]) for p in records.recorded_pools()) or "none"
            raise UsageError(f"no pool {args.lab}; running: {pools}")
        destroyed = pool.stop(args.lab)
        print(f"pool {args.lab} is down" + f" ({destroyed} warm lab(s) destroyed)")
        return 0
    record = _one_lab(args.lab)
    lab_id = str(record["id"])
    lab.destroy(lab_id, quiet=True, why="`harness down`")  # no orderly power-off: nothing is kept
    print(f"lab {lab_id} is down")
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    """Stop this project's labs of this store (running, kept), and every lab of it whose owner is
    gone or that left pieces without a record: machines, namespaces, mounts, clones. Other
    projects' running and kept labs stay (with --all: every lab of the store goes)."""
    store = cli_args.store(args)
    this = cli_args.project_root()
    ended = [str(p["id"]) for p in records.recorded_pools() if Path(str(p.get("store"))) == store.root
             and (args.all or of_project(p, this) or records.pool_gone(p))]
    for pool_id in ended:  # first: an owner would boot labs again as they go
        pool.stop(pool_id)
    if ended:
        print(f"ended {len(ended)} pool(s): {', '.join(ended)}")
    # Pieces first, records after: a lab writes its record before it makes any piece, so one
    # starting meanwhile is found recorded (read the other way round, it looked record-less).
    owned = [o for o in store.owners() if LabName.is_lab_id(o)]  # labs' clones, not builds'
    pieces = [LabName.parse(n) for n in [*network.lab_namespaces(), *nspawn.units_with_cgroups(PREFIX)]]
    every = lab.recorded_labs()
    here = [r for r in every if Path(str(r.get("store"))) == store.root]
    # Another project's live lab is some run's or someone's; a lab whose owner died is no one's.
    left = [r for r in here if not (args.all or of_project(r, this) or lab.owner_gone(r))]
    recorded = {str(r["id"]) for r in every} | records.claimed_ids()  # claimed: being adopted
    why = {str(r["id"]): ("`harness destroy --all`" if args.all else "`harness destroy`: this project's"
                          if of_project(r, this) else "`harness destroy`: its owner is gone")
           for r in here if r not in left}
    # Pieces of a lab without any record belong to no live run of any store: remove them too.
    for orphan in [*(o for o in owned if o not in recorded),
                   *(p.lab for p in pieces if p is not None and p.lab not in recorded)]:
        why.setdefault(orphan, "`harness destroy`: pieces without a record")
    ids = set(why)
    for lab_id in sorted(ids):
        lab.destroy(lab_id, store, why=why[lab_id])
    print(f"destroyed {len(ids)} lab(s)" + (f": {', '.join(sorted(ids))}" if ids else ""))
    if left:
        print(f"left {len(left)} running lab(s) of other projects: `harness destroy --all` stops them too")
    return 0
