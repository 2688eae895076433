"""Measure the rerun loop with and without labs kept warm (issue 29, item 3).

Run as root from the repository: ``.venv/bin/python -m bench.warm [--reps N]``. Writes
``reports/bench/warm.json`` and prints the figures; nothing is asserted.

The figure is the one the issue names: a second ``pytest scenarios -k dns`` right after a
first, the whole process's wall time (start to exit), ``--reps`` times each way, the two ways
interleaved (cold, warm, cold, warm...) so that the host's load falls on both alike:

- cold: both runs with ``--warm-labs=0`` (the default): the second boots its lab again;
- ready (``--ways ready``): as warm, but the second run starts once the first's warmer has
  left its lab warm: a developer's loop, where a pause between runs outlasts a boot;
- warm: both runs with ``--warm-labs=1``: the first starts a warmer that leaves a pristine
  lab of the snapshot behind, the second adopts it for its shared lab (it says so: "adopted,
  warm"; waiting for the warmer if it is still booting) and starts the next warmer, which it
  does not wait for.

- pool (``--ways pool``): ``pytest scenarios/test_dns.py`` against a pool of one warm lab of
  web's snapshot (``harness up --pool 1 --from-snapshot web``, ready before the run starts),
  which the run adopts while the pool boots the replacement beside its tests; beside it, as
  its cold figure (``pool-cold``), the same run with no pool and no warm lab. Each run's
  output also gives the time pytest's session took ("in N s"): the rest of the wall time is
  the interpreter, the plugins' imports and collection.

The store is the default one, with the reference lab built (the first run builds it if it is
missing). The warm labs the bench leaves are ended with ``harness down`` at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core.wait import retry
from harness.engine import pool, warm
from harness.machines import records
from harness.machines.store import open_store

REPO = Path(__file__).resolve().parent.parent
ADOPTED = re.compile(r"lab (\w+): \d+ machine\(s\) adopted, warm")


def progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def pytest_dns(keep: int, reports: Path,
               which: Sequence[str] = ("scenarios", "-k", "dns")) -> tuple[float, str]:
    """``pytest scenarios -k dns`` (or ``which``) with ``--warm-labs=keep``: wall time, output."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HARNESS_WARM_LABS": str(keep)}
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", *which, "-p", "no:cacheprovider",
                           f"--reports={reports}"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1800, check=False)
    seconds = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"bench: pytest scenarios -k dns failed ({done.returncode}):\n{done.stdout[-3000:]}"
                         f"{done.stderr[-2000:]}")
    return seconds, done.stdout + done.stderr


def settle() -> None:
    """Wait for the warmers the bench's runs started to leave their labs warm."""
    store = open_store(None)
    retry(lambda _: not warm.warming(store, str(REPO)), 300, "the warmers to end")


def end() -> None:
    """Wait for the warmers the bench's runs started, then ``harness down`` every lab they left
    warm: this checkout's project's, no one else's."""
    settle()
    for record in records.recorded_labs():
        if record.get("warm") and record.get("project") == str(REPO):
            subprocess.run([sys.executable, "-m", "harness.cli", "down", str(record["id"])], cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, check=False)


def harness(*words: str) -> str:
    """``harness WORDS`` in this checkout; its output (it must succeed)."""
    done = subprocess.run([sys.executable, "-m", "harness.cli", *words], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: harness {' '.join(words)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def pool_ready(pool_id: str) -> None:
    """Wait for pool ``pool_id`` to have a lab warm and no warmer booting."""
    held = pool.find(pool_id)

    def full(_: bool) -> bool:
        return held is not None and pool.counts(held) == (1, 0)

    retry(full, 600, f"pool {pool_id} to have its lab warm")


def pool_rep(reports: Path, seconds: dict[str, list[float]], sessions: dict[str, list[float]]) -> bool:
    """One rep of the pool way: a cold ``pytest scenarios/test_dns.py``, then the same run
    against a pool of one lab of web's snapshot; whether the second adopted the pool's lab."""
    which = ("scenarios/test_dns.py",)
    end()
    cold, out = pytest_dns(0, reports, which)
    seconds["pool-cold"].append(cold)
    sessions["pool-cold"].append(session_time(out))
    said = harness("up", "--pool", "1", "--from-snapshot", "web")
    pool_id = said.split()[1]
    try:
        pool_ready(pool_id)
        warmed, out = pytest_dns(0, reports, which)
        seconds["pool"].append(warmed)
        sessions["pool"].append(session_time(out))
        pool_ready(pool_id)  # the replacement, before the pool goes
    finally:
        harness("down", pool_id)
    progress(f"pool: cold {cold:.1f} s, adopted from {pool_id} {warmed:.1f} s")
    return bool(ADOPTED.findall(out))


def session_time(out: str) -> float:
    """The seconds pytest says its session took ("5 passed in 3.21s")."""
    found = re.findall(r" in ([0-9.]+)s", out)
    return float(found[-1]) if found else float("nan")


def summary(values: Sequence[float]) -> dict[str, Any]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "values": [round(v, 2) for v in values]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.warm", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="second runs each way (default 3)")
    parser.add_argument("--ways", default="cold,warm", help="comma-separated: cold, warm, ready, pool "
                        "(warm, the second run started once the first's warmer is done)")
    args = parser.parse_args(argv)
    ways = [w for w in ("cold", "warm", "ready", "pool") if w in args.ways.split(",")]
    pooled = "pool" in ways
    ways = [w for w in ways if w != "pool"]
    reports = REPO / "reports" / "bench" / "warm-runs"
    figures: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "host_cores": os.cpu_count()}
    seconds: dict[str, list[float]] = {way: [] for way in ways + (["pool-cold", "pool"] if pooled else [])}
    sessions: dict[str, list[float]] = {"pool-cold": [], "pool": []}
    firsts: dict[str, list[float]] = {way: [] for way in ways}
    adopted: list[bool] = []
    try:
        progress("a first run: the reference lab built if missing")
        pytest_dns(0, reports)
        for rep in range(args.reps):
            if pooled:
                adopted.append(pool_rep(reports, seconds, sessions))
            for way in ways:
                keep = int(way != "cold")
                end()  # a cold pair finds no warm lab: any run adopts one that matches
                first, out = pytest_dns(keep, reports)
                if way == "ready":
                    settle()
                second, out = pytest_dns(keep, reports)
                took = ADOPTED.findall(out)
                if keep:
                    adopted.append(bool(took))
                firsts[way].append(first)
                seconds[way].append(second)
                progress(f"{way} {rep + 1}/{args.reps}: first {first:.1f} s, second {second:.1f} s"
                         + (f" (adopted {', '.join(took) or 'nothing'})" if keep else ""))
    finally:
        end()
    figures["second_run"] = {way: summary(values) for way, values in seconds.items()}
    figures["first_run"] = {way: summary(values) for way, values in firsts.items()}
    if pooled:
        figures["pool_session"] = {way: summary(values) for way, values in sessions.items()}
    figures["adopted"] = adopted
    out = REPO / "reports" / "bench" / "warm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
    if pooled:
        for way in ("pool-cold", "pool"):
            s, t = figures["second_run"][way], figures["pool_session"][way]
            print(f"`pytest scenarios/test_dns.py`, {way}: {s['min']:.1f} / {s['median']:.1f} / "
                  f"{s['max']:.1f} s "
                  f"(pytest's session: median {t['median']:.1f} s)")
    for way in ways:
        s, f = figures["second_run"][way], figures["first_run"][way]
        print(f"second `pytest scenarios -k dns`, {way}: {s['min']:.1f} / {s['median']:.1f} / "
              f"{s['max']:.1f} s (the first before it: median {f['median']:.1f} s)")
    print(f"adopted a warm lab: {sum(adopted)} of {len(adopted)} warm second runs (target: 6 s wall)")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
