"""The ``harness`` command: look at the store, build stages, clean up after killed runs.

Every error is one line on stderr (``harness: error: ...``) saying what to do, exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness import lab, log, network, nspawn
from harness.build import Builder
from harness.errors import HarnessError
from harness.stage import Pipeline
from harness.store import DEFAULT_IMAGE_SIZE, Store, open_store


def _store(args: argparse.Namespace) -> Store:
    return open_store(args.store, size=args.store_size)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)


def cmd_ls(args: argparse.Namespace) -> int:
    """List published snapshots: name, age, size on disk."""
    store = _store(args)
    snaps = store.snapshots()
    if not snaps:
        print(f"no snapshots in {store.root} (build some with `harness build`)")
        return 0
    print(f"{'SNAPSHOT':40} {'AGE':>8} {'TOTAL':>10} {'EXCLUSIVE':>10}")
    for snap in snaps:
        usage = store.usage(snap.path)
        age = log.format_elapsed(time.time() - snap.created)
        print(f"{snap.name:40} {age:>8} {_size(usage.total):>10} {_size(usage.exclusive):>10}")
    return 0


def _pipeline() -> Pipeline:
    from stages import PIPELINE

    return PIPELINE


def cmd_build(args: argparse.Namespace) -> int:
    """Build every stage up to --until (default: the last), reusing cached snapshots."""
    pipeline = _pipeline()
    builder = Builder(_store(args), pipeline)
    snap = builder.ensure(args.until or pipeline.names[-1], rebuild=args.rebuild)
    print(f"{snap.name} ready at {snap.path}")
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    """Stop every harness machine and remove every lab namespace and clone on this host."""
    store = _store(args)
    ids = {str(r["id"]) for r in lab.recorded_labs()}
    ids |= {n[len(network.PREFIX):].rsplit("-", 1)[0] for n in network.lab_namespaces()}
    ids |= {o for o in store.owners() if not o.startswith("build-")}
    ids |= {u[len("harness-"):].split("-")[0] for u in nspawn.units_with_cgroups("harness-")
            if not u.startswith("harness-prep-")}
    for lab_id in sorted(ids):
        lab.destroy(lab_id, store)
    print(f"destroyed {len(ids)} lab(s)" + (f": {', '.join(sorted(ids))}" if ids else ""))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Build the HTML report (Allure Report 3, one self-contained file) from allure results."""
    from harness import report

    index = report.generate(Path(args.results), Path(args.output))
    print(f"report: {index}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-command per verb."""
    top = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0])
    top.add_argument("--store", help="btrfs directory holding the snapshots (env HARNESS_STORE)")
    top.add_argument("--store-size", default=DEFAULT_IMAGE_SIZE,
                     help="size of the embedded store image on first use")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("ls", help=cmd_ls.__doc__).set_defaults(func=cmd_ls)
    build = sub.add_parser("build", help=cmd_build.__doc__)
    build.add_argument("--until", metavar="STAGE", help="last stage to build")
    build.add_argument("--rebuild", action="store_true", help="ignore cached snapshots")
    build.set_defaults(func=cmd_build)
    sub.add_parser("destroy", help=cmd_destroy.__doc__).set_defaults(func=cmd_destroy)
    rep = sub.add_parser("report", help=cmd_report.__doc__)
    rep.add_argument("--results", default="reports/allure-results", help="allure results directory")
    rep.add_argument("-o", "--output", default="reports/html", help="where the report goes")
    rep.set_defaults(func=cmd_report)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` console script."""
    import os

    args = parser().parse_args(argv)
    if args.store is None:
        args.store = os.environ.get("HARNESS_STORE")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[harness] %(message)s"))
    log.logger.addHandler(handler)
    log.logger.setLevel(logging.INFO)
    try:
        return int(args.func(args))
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
