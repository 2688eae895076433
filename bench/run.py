"""Measure the harness on the reference lab, and the ancestor's fixed waits on the same lab.

Run as root from the repository (``make bench``, or ``.venv/bin/python -m bench.run``).
Writes ``reports/bench/latest.json`` and ``reports/bench/latest.md``. Every figure is
repeated and reported as min / median / max; nothing here is asserted: the targets are
printed beside the figures, to be read, not to fail a build.

What is measured (see bench/README.md for the figures):

- cold: each stage built from an empty store (the host's package cache stays warm: a
  host downloads each .deb once, ever);
- resume: a lab booted from each stage's snapshot until every machine is ready, its
  readiness hooks included; and its teardown;
- floor: what the host allows (see bench/floor.py): cloning the roots, one bare machine's
  boot, the lab's boot CPU over the cores;
- units: that boot CPU by machine role and unit (see bench/units.py), sorted;
- updown: ``harness up`` then ``harness down``, back to back;
- fresh: what a ``fresh_lab`` scenario costs beyond a shared-lab one, back to back (the same
  trivial test both ways: no time for a spare lab to boot) and in the suite (set-up plus
  teardown, from the -n 1 run's timings);
- suite: every scenario from a warm store, with ``-n 1`` and ``-n 2``, ordered by the
  durations the previous run recorded (pytest's cache), as a user's run is;
- families: the warm suite, ``-n 1``, on the dual-stack lab and on the same lab keeping IPv4
  alone (``--families=ipv4``): what IPv6 costs;
- disk: the snapshot chain's unique bytes against the last stage's own;
- ancestor: the Prologin SADM scripts' waits (sleep 5 after each machine start, sleep 10
  before checking services) on the pas lab, against the harness resuming the same lab;
- ls: `harness ls` on a store of 100 snapshots;
- bundle: a kept failure of the reference lab (a scenario failed by a mutant, with
  --keep-failed), exported incrementally and whole;
- mutate (only with --mutate): the whole mutation run, `harness mutate`;
- scale (only with --scale): rooms of 10 to 250 contestants, see bench/scale.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import floor, scale, units
from bench.report import markdown
from harness import Lab, Pipeline, SnapshotRef
from harness.core import proc
from harness.engine.build.builder import Builder
from harness.machines import lab as labs
from harness.machines.store import Snapshot, Store, open_store

REPO = Path(__file__).resolve().parent.parent
FAILED_RUN = REPO / "reports" / "bench" / "failed-pytest.log"  # the output of a pytest run that failed
ANCESTOR_AFTER_START = 5.0  # `sleep 5` after each machine start
ANCESTOR_BEFORE_CHECKS = 10.0  # `sleep 10` before checking services
# A scenario that a mutant fails, for a kept failure of the reference lab.
KEEP_TEST, KEEP_MUTANT = "scenarios/test_web.py", "web-vhost-missing"


def summary(values: Sequence[float]) -> dict[str, Any]:
    """min / median / max (and the raw values) of repeated measurements."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "n": len(values), "values": [round(v, 3) for v in values]}


def repeat(times: int, measure: Callable[[], float]) -> dict[str, Any]:
    return summary([measure() for _ in range(times)])


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# -- the measurements ---------------------------------------------------------------------------------


def cold(main: Store, pipeline: Pipeline, reps: int) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Build every stage into a fresh empty store, ``reps`` times; return per-stage build
    times, the chain's disk figures (from the last rep) and the median total."""
    per_stage: dict[str, list[float]] = {s: [] for s in pipeline.names}
    totals: list[float] = []
    disk: dict[str, Any] = {}
    for rep in range(reps):
        scratch = main.root / "scratch" / f"bench-{os.getpid()}-{secrets.token_hex(3)}"
        scratch.mkdir(parents=True)
        store = Store(scratch)
        try:
            progress(f"cold build {rep + 1}/{reps}")
            builder = Builder(store, pipeline)
            began = time.monotonic()
            builder.ensure(pipeline.names[-1])
            totals.append(time.monotonic() - began)
            for name, seconds in builder.durations.items():
                per_stage[name].append(seconds)
            if rep == reps - 1:
                disk = chain_disk(store, pipeline)
        finally:
            for snap in store.snapshots():
                store.remove(snap.ref)
            shutil.rmtree(scratch, ignore_errors=True)
    result = {name: summary(v) for name, v in per_stage.items()}
    result["all stages"] = summary(totals)
    return result, disk, statistics.median(totals)


def _du(paths: Sequence[Path]) -> tuple[int, int, int]:
    """(total, exclusive, set shared) bytes of each path's set, summed (btrfs filesystem du)."""
    out = proc.run(["btrfs", "filesystem", "du", "-s", "--raw", *map(str, paths)]).stdout
    rows = [line.split()[:3] for line in out.splitlines()[1:] if line.strip()]
    return (sum(int(r[0]) for r in rows), sum(int(r[1]) for r in rows),
            sum(int(r[2]) for r in rows if r[2].isdigit()))


def chain_disk(store: Store, pipeline: Pipeline) -> dict[str, Any]:
    """Unique bytes of the whole chain (every stage's snapshot of one build, as one set) and of
    the last stage's snapshot alone. Unique = exclusive + set shared (shared extents once)."""
    total, exclusive, shared = _du([store.root / "snapshots"])
    last = store.get(pipeline.ref(pipeline.names[-1]))
    assert last is not None
    _, last_exclusive, last_shared = _du([last.path])
    per_stage = {}
    for snap in store.snapshots():
        t, e, _ = _du([snap.path])
        per_stage[snap.ref.group] = {"referenced": t, "exclusive": e}
    chain = exclusive + shared
    own = last_exclusive + last_shared
    return {"chain unique bytes": chain, "chain referenced bytes": total,
            "last stage unique bytes": own, "ratio": chain / own, "stages": per_stage}


def resume(builder: Builder, snapshot: Snapshot, reps: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Boot a lab from ``snapshot`` to all-ready (readiness hooks included), then tear it down."""
    ready, down = [], []
    for _ in range(reps):
        began = time.monotonic()
        lab = builder.lab(snapshot)
        lab.__enter__()
        ready.append(time.monotonic() - began)
        began = time.monotonic()
        lab.__exit__(None, None, None)
        down.append(time.monotonic() - began)
    return summary(ready), summary(down)


class AncestorLab(Lab):
    """The same lab, booted the ancestor's way: one machine at a time, a fixed `sleep 5` after
    each start, `sleep 10` before the service checks; no readiness signal is used."""

    def boot(self, names: Sequence[str], wait: bool = True) -> None:
        for name in names:
            super().boot([name], wait=False)
            time.sleep(ANCESTOR_AFTER_START)  # the ancestor's wait, reproduced on purpose
        time.sleep(ANCESTOR_BEFORE_CHECKS)  # the ancestor's wait, reproduced on purpose
        for name in names:
            self.machines[name].wait_ready()  # its checks then pass (or the figure would lie)


def ancestor(builder: Builder, snapshot: Snapshot, reps: int) -> dict[str, Any]:
    times = []
    for _ in range(reps):
        template = builder.lab(snapshot)
        lab = AncestorLab(builder.store, list(template.setups.values()), after_boot=template.after_boot,
                          boot_timeout=builder.boot_timeout)
        began = time.monotonic()
        with lab:
            times.append(time.monotonic() - began)
    return summary(times)


FRESH = '''
import pytest

@pytest.mark.parametrize("i", range({n}))
{marker}
def test_trivial(pas, i):
    pas.succeed("true")
'''


def fresh_lab_overhead(store: Store, n: int) -> dict[str, Any]:
    """Median per-test time of a trivial scenario on a fresh lab minus on the shared lab."""
    medians = {}
    with tempfile.TemporaryDirectory() as work:
        for kind, marker in (("shared", ""), ("fresh", "@pytest.mark.fresh_lab")):
            test = Path(work) / f"test_{kind}.py"
            test.write_text(FRESH.replace("{n}", str(n)).replace("{marker}", marker))
            junit = Path(work) / f"{kind}.xml"
            run_pytest([str(test), f"--junitxml={junit}", f"--store={store.root}", "--pipeline=stages"],
                       cwd=Path(work))
            times = [float(case.get("time", "0")) for case in ET.parse(junit).getroot().iter("testcase")]
            medians[kind] = summary(times)
    overhead = medians["fresh"]["median"] - medians["shared"]["median"]
    return {"per scenario": overhead, "fresh test": medians["fresh"], "shared test": medians["shared"]}


def run_pytest(args: Sequence[str], cwd: Path, cache: bool = False) -> float:
    """Wall time of one pytest run; a failing run stops the bench (its figure would be wrong),
    after saying which tests failed. With ``cache``, pytest's cache is on: the run is ordered
    by the durations the previous one recorded, as a user's is."""
    began = time.monotonic()
    plugins = [] if cache else ["-p", "no:cacheprovider"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", *plugins, "-o", "harness_reports=", *args],
                          cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # the reference lab, from anywhere
    if done.returncode != 0:
        failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        FAILED_RUN.parent.mkdir(parents=True, exist_ok=True)
        FAILED_RUN.write_text(done.stdout + done.stderr)  # the run's reports go with its temporary directory
        raise SystemExit(f"bench: `pytest {' '.join(args)}` failed: " + "; ".join(failed[:5])
                         + f" (its whole output: {FAILED_RUN})")
    return time.monotonic() - began


def suite(store: Store, workers: int, reps: int, timings: Path) -> dict[str, Any]:
    """The warm scenario suite with ``workers``; the last run's per-test timings go to ``timings``."""
    extra = ["-n", str(workers)] if workers > 1 else []
    with tempfile.TemporaryDirectory() as reports:
        figure = repeat(reps, lambda: run_pytest(["scenarios", f"--store={store.root}",
                                                  f"--reports={reports}", *extra], cwd=REPO, cache=True))
        shutil.copy(Path(reports) / "timings.json", timings)
    return figure


def families(store: Store, reps: int) -> dict[str, Any]:
    """What IPv6 costs the warm suite: every scenario, ``-n 1``, on the lab as planned
    (dual-stack) and on the same lab keeping IPv4 alone (``--families=ipv4``: no paste, no
    DHCPv6, no IPv6 test), each from its own warm snapshots."""
    both = ("ipv4", "ipv4,ipv6")
    for kept in both:
        built = subprocess.run([sys.executable, "-m", "harness.cli", f"--store={store.root}",
                                f"--families={kept}", "build"], cwd=REPO, capture_output=True, text=True)
        if built.returncode != 0:  # warm before the timed runs, or no figure at all
            FAILED_RUN.parent.mkdir(parents=True, exist_ok=True)
            FAILED_RUN.write_text(built.stdout + built.stderr)
            raise SystemExit(f"bench: `harness --families={kept} build` failed (its output: {FAILED_RUN})")
    seconds: dict[str, list[float]] = {kept: [] for kept in both}
    tests = {}
    for _ in range(reps):  # one run of each in turn: a slow spell of the host weighs on both alike
        for kept in both:
            with tempfile.TemporaryDirectory() as reports:
                seconds[kept].append(run_pytest(["scenarios", f"--store={store.root}", f"--families={kept}",
                                                 f"--reports={reports}"], cwd=REPO, cache=True))
                cases = ET.parse(Path(reports) / "junit.xml").getroot().iter("testcase")
                tests[kept] = sum(1 for _ in cases)
    figures: dict[str, Any] = {kept: {**summary(seconds[kept]), "tests": tests[kept]} for kept in both}
    figures["ratio"] = figures["ipv4,ipv6"]["median"] / figures["ipv4"]["median"]
    return figures


def ls_many(main: Store, reps: int, count: int = 100) -> dict[str, Any]:
    """`harness ls` on a scratch store holding ``count`` snapshots (of one small subvolume)."""
    root = main.root / "scratch" / f"bench-ls-{os.getpid()}"
    root.mkdir(parents=True)
    store = Store(root)
    try:
        source = store.create(store.work_path("bench", "m"))
        (source / "file").write_text("x")
        for i in range(count):
            store.publish(SnapshotRef.of_stage(f"s{i % 5}", secrets.token_hex(8)), {"m": source},
                          {"stage": f"s{i % 5}"})
        argv = [sys.executable, "-m", "harness.cli", "--store", str(root), "ls"]
        return repeat(reps, lambda: _timed(argv))
    finally:
        for snap in store.snapshots():
            store.remove(snap.ref)
        store.release("bench")
        shutil.rmtree(root)


def _timed(argv: Sequence[str]) -> float:
    began = time.monotonic()
    subprocess.run(argv, cwd=REPO, capture_output=True, check=True)
    return time.monotonic() - began


def kept_bundle(store: Store) -> dict[str, Any]:
    """Sizes of a kept failure's bundle, incremental and whole (MiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", KEEP_TEST, "-x", "--keep-failed",
                               f"--mutant={KEEP_MUTANT}", f"--store={store.root}", f"--reports={tmp}"],
                              cwd=REPO, capture_output=True, text=True)
        kept = next((line.split()[1].rstrip(":") for line in done.stdout.splitlines()
                     if line.startswith("snapshot failed/")), None)
        if kept is None:
            raise SystemExit(f"bench: no kept failure from {KEEP_TEST} with {KEEP_MUTANT}")
        sizes = {}
        for kind, extra in (("incremental", []), ("whole", ["--full"])):
            target = Path(tmp) / f"{kind}.tar.zst"
            subprocess.run([sys.executable, "-m", "harness.cli", "--store", str(store.root), "export",
                            kept, "-o", str(target), *extra], cwd=REPO, capture_output=True, check=True)
            sizes[kind] = round(target.stat().st_size / 2**20, 2)
        subprocess.run([sys.executable, "-m", "harness.cli", "--store", str(store.root), "rm", kept],
                       cwd=REPO, capture_output=True, check=True)
        return sizes


def mutation_run(store: Store) -> dict[str, Any]:
    """The whole mutation run: its wall time, and its kill ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        began = time.monotonic()
        subprocess.run([sys.executable, "-m", "harness.cli", "--store", str(store.root), "mutate",
                        "--reports", tmp], cwd=REPO, capture_output=True, text=True)
        seconds = time.monotonic() - began
        table = json.loads((Path(tmp) / "mutants.json").read_text())
        return {"seconds": round(seconds, 1), "killed": table["killed"], "counted": table["counted"]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions of the quick measurements")
    parser.add_argument("--cold-reps", type=int, default=3, help="repetitions of the cold build")
    parser.add_argument("--suite-reps", type=int, default=1, help="repetitions of each suite run")
    parser.add_argument("--skip", default="",
                        help="comma-separated: cold,resume,floor,units,updown,fresh,suite,families,"
                             "ancestor,ls,bundle")
    parser.add_argument("--mutate", action="store_true", help="also time the whole mutation run")
    parser.add_argument("--scale", action="store_true",
                        help="also measure rooms of 10, 50, 100 and 250 contestants (bench/scale.py)")
    parser.add_argument("--store", default=os.environ.get("HARNESS_STORE"))
    parser.add_argument("--out", default=str(REPO / "reports" / "bench"))
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    logging.getLogger("harness").setLevel(logging.WARNING)
    sys.path.insert(0, str(REPO))
    from stages import PIPELINE

    store = open_store(args.store)
    labs.sweep_stale()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"host": {"kernel": platform.release(), "cores": os.cpu_count(),
                                        "python": platform.python_version()},
                               "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "targets": {}}
    cold_total = None
    if "cold" not in skip:
        results["cold"], results["disk"], cold_total = cold(store, PIPELINE, args.cold_reps)
        results["targets"]["snapshot chain vs last stage"] = f"{results['disk']['ratio']:.2f}x"
    builder = Builder(store, PIPELINE)
    last = builder.ensure(PIPELINE.names[-1])  # warm store from here on
    if "resume" not in skip:
        results["resume"] = {}
        for name in PIPELINE.names[1:]:
            progress(f"resume from {name}")
            snap = store.get(PIPELINE.ref(name))
            assert snap is not None
            ready, down = resume(builder, snap, args.reps)
            results["resume"][name] = {"ready": ready, "down": down}
        pas = results["resume"][PIPELINE.names[-1]]["ready"]
        results["targets"]["resume pas to all-ready"] = f"{pas['median']:.2f} s"
    if "floor" not in skip:
        progress("the physical floor: clone, a bare machine's boot, the lab's boot CPU")
        base = builder.ensure(PIPELINE.names[0])
        cpu = summary(floor.lab_boot_cpu(builder, last, max(1, args.reps // 2)))
        results["floor"] = {"clone": summary(floor.clone(store, last, args.reps)),
                            "bare boot": summary(floor.bare_boot(store, base, args.reps)),
                            "lab boot cpu": cpu, "cores": os.cpu_count() or 1,
                            "lab cpu floor": cpu["median"] / (os.cpu_count() or 1)}
    if "units" not in skip:
        progress("boot CPU by role and unit")
        results["units"] = units.measure(builder, last, max(1, args.reps // 2))
    if "updown" not in skip:
        progress("harness up + down")
        results["updown"] = summary(floor.up_down(store, args.reps, REPO))
        results["targets"]["harness up + down, back to back"] = f"{results['updown']['median']:.2f} s"
    if "fresh" not in skip:
        progress("fresh_lab overhead, back to back")
        results["fresh_lab"] = fresh_lab_overhead(store, args.reps)
        overhead = results["fresh_lab"]["per scenario"]
        results["targets"]["fresh_lab overhead per scenario"] = f"{overhead:.2f} s (back to back)"
    if "suite" not in skip:
        results["suite"] = {}
        for workers in (1, 2):
            progress(f"warm suite -n {workers}")
            timings = out / f"timings-n{workers}.json"
            results["suite"][f"-n {workers}"] = suite(store, workers, args.suite_reps, timings)
            if workers == 1:
                results["fresh_lab in suite"] = floor.private_lab_overhead(json.loads(timings.read_text()))
                overhead = results["fresh_lab in suite"]["per scenario"]
                results["targets"]["fresh_lab overhead per scenario"] = f"{overhead:.2f} s (in the suite)"
        two = results["suite"]["-n 2"]
        results["targets"]["warm suite, -n 2"] = f"{two['median']:.1f} s"
        results["targets"]["warm suite spread, -n 2"] = \
            f"{100 * (two['max'] - two['min']) / two['median']:.0f}% (n={two['n']})"
        if cold_total is not None:
            warm = results["suite"]["-n 1"]["median"]
            results["warm_vs_cold"] = (cold_total + warm) / warm
            results["targets"]["warm suite vs cold"] = f"{results['warm_vs_cold']:.1f}x faster"
    if "families" not in skip:
        progress("warm suite -n 1, IPv4 alone and dual-stack")
        results["families"] = families(store, args.suite_reps)
        results["targets"]["warm suite, dual-stack vs IPv4 alone"] = \
            f"{results['families']['ratio']:.2f}x (under 1.5x)"
    if "ancestor" not in skip:
        progress("ancestor's waits")
        baseline = ancestor(builder, last, max(1, args.reps // 2))
        harness_figure = resume(builder, last, max(1, args.reps // 2))[0]
        results["ancestor"] = {"baseline": baseline, "harness": harness_figure,
                               "ratio": baseline["median"] / harness_figure["median"]}
    if "ls" not in skip:
        progress("harness ls, 100 snapshots")
        results["ls"] = ls_many(store, args.reps)
        results["targets"]["harness ls, 100 snapshots"] = f"{results['ls']['median']:.2f} s"
    if "bundle" not in skip:
        progress("a kept failure's bundle")
        results["bundle"] = kept_bundle(store)
        results["targets"]["kept failure bundle"] = f"{results['bundle']['incremental']} MiB"
    if args.mutate:
        progress("the whole mutation run")
        results["mutate"] = mutation_run(store)
        results["targets"]["whole mutation run"] = f"{results['mutate']['seconds'] / 60:.1f} min"
    if args.scale:
        progress("rooms at scale")
        results["scale"] = scale.measure(scale.SIZES, max(1, args.reps // 2))
        (REPO / "bench" / "scale.svg").write_text(scale.svg(results["scale"]))
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results) + (f"\n{units.markdown(results['units'])}" if "units" in results else "") \
        + (f"\n{scale.markdown(results['scale'])}" if "scale" in results else "")
    (out / "latest.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
