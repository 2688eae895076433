"""Labs kept warm between runs (harness.engine.warm): a lab detached by one process with its
consoles' keepers is adopted by another (Machine.adopt, Lab.adopting), on real machines; then
the toy project's runs leave, adopt and refuse warm labs as the design says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.core import proc
from harness.core.errors import UsageError
from harness.core.wait import retry
from harness.engine import warm
from harness.machines import lab as labs
from harness.machines import records
from harness.machines.lab import Lab, MachineSetup
from harness.machines.store import Store
from tests.conftest import NOTHING, lan, traces_of
from tests.toy import REPO, Toy

DETACH = """
import json, sys
from pathlib import Path
from harness.core.links import Interface
from harness.machines.lab import Lab, MachineSetup
from harness.machines.store import Store
store, base, logs = Store(Path(sys.argv[1])), Path(sys.argv[2]), Path(sys.argv[3])
setups = [MachineSetup(n, base, (Interface(n, "host0", "lan", f"02:00:00:00:00:0{i}", (f"10.83.0.{i}/24",)),))
          for i, n in ((1, "a"), (2, "b"))]
lab = Lab(store, setups, log_dir=logs, origin="test/k").__enter__()
lab.detach(warm={"snapshot": "test/k", "stage": "test", "key": "k", "booted_at": lab.booted_at,
                 "until": lab.booted_at + 600})
print(lab.id, flush=True)
"""


def setups(base: Path) -> list[MachineSetup]:
    """The lab DETACH boots: a (10.83.0.1) and b (10.83.0.2) on one bridge."""
    return [MachineSetup(i.machine, base, (i,)) for i in lan("a", "b", prefix="10.83.0")]


def detached_elsewhere(store: Store, base: Path, logs: Path) -> str:
    """Boot a lab in another process, which detaches it warm and exits; its id."""
    done = subprocess.run([sys.executable, "-c", DETACH, str(store.root), str(base), str(logs)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.mark.integration
def test_a_lab_detached_by_one_process_is_adopted_by_another(harness_store: Store, base: Path,
                                                            tmp_path: Path) -> None:
    lab_id = detached_elsewhere(harness_store, base, tmp_path / "first")
    work = harness_store.root / "work" / lab_id
    try:
        left = json.loads((records.RUN_DIR / f"{lab_id}.json").read_text())
        assert left["pid"] is None and left["warm"]["key"] == "k"
        keepers = [pid for pid, _ in left["keepers"].values()]
        assert all(proc.alive(k) for k in keepers) and not labs.owner_gone(left)
        assert all(Path(records.RUN_DIR / lab_id / f"{m}.console.sock").exists() for m in ("a", "b"))
        record = labs.claim(lab_id)
        assert record is not None and labs.claim(lab_id) is None  # one taker only
        adopted = Lab(harness_store, setups(base), log_dir=tmp_path / "second").adopting(record)
        with adopted:
            assert adopted.id == lab_id
            assert {n: m.leader for n, m in adopted.machines.items()} == left["machines"]
            for keeper in keepers:  # each handed its console over, and exited
                assert proc.wait_for_exit(keeper, 10)
            assert not (records.RUN_DIR / lab_id / "a.console.sock").exists()
            assert adopted["a"].succeed("hostname").strip() == "a"
            assert "1 received" in adopted["a"].succeed("ping -c1 -W5 10.83.0.2")
            with adopted["b"].console() as tty:
                tty.login("root")
                assert tty.shell("echo $((6*7)); hostname") == "42\nb"
            now = json.loads((records.RUN_DIR / f"{lab_id}.json").read_text())
            assert now["pid"] == os.getpid() and "warm" not in now
            assert "login:" in (tmp_path / "second" / lab_id / "b.console").read_text()
        assert traces_of(lab_id, work) == NOTHING
        assert not work.exists() and not (records.RUN_DIR / lab_id).exists()
        assert not (records.RUN_DIR / f"{lab_id}.json").exists()
    finally:
        labs.destroy(lab_id, harness_store, quiet=True)


@pytest.mark.integration
def test_a_warm_lab_whose_keepers_are_gone_is_swept(harness_store: Store, base: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    lab_id = detached_elsewhere(harness_store, base, tmp_path / "first")
    work = harness_store.root / "work" / lab_id
    try:
        record = json.loads((records.RUN_DIR / f"{lab_id}.json").read_text())
        assert labs.stale(record) is None
        assert "past the 600s" in str(labs.stale(record, now=time.time() + 601))
        for pid, _ in record["keepers"].values():  # their machines go on, their consoles lost
            proc.kill(pid, signal.SIGKILL)
            assert proc.wait_for_exit(pid, 10)
        retry(lambda _: labs.owner_gone(record), 10, "the keepers to be gone")
        everyone = records.recorded_labs  # the sweep sees this lab only: others are other runs'
        # (patched where `sweep_stale` looks it up: `lab` only re-exports it)
        monkeypatch.setattr(records, "recorded_labs", lambda: [r for r in everyone() if r["id"] == lab_id])
        assert labs.sweep_stale() == [lab_id]
        assert traces_of(lab_id, work) == NOTHING
    finally:
        labs.destroy(lab_id, harness_store, quiet=True)


WARMTH = '''
import json, os
import pytest

def seen(lab, kind):
    with open(os.environ["WARM_SEEN"], "a") as out:
        out.write(json.dumps({"kind": kind, "id": lab.id, "beta": lab["beta"].leader}) + "\\n")

def test_records_its_lab(beta, lab):
    seen(lab, "shared")
    assert beta.succeed("cat /etc/beta-built").strip()

@pytest.mark.fresh_lab
def test_touches_a_private_lab(beta, lab):
    seen(lab, "private")
    beta.succeed("touch /etc/scribbled")
'''


def warm_of(toy: Toy) -> dict[str, dict[str, object]]:
    """The warm labs of the toy's store, by id."""
    return {str(r["id"]): dict(r) for r in labs.recorded_labs()
            if r.get("warm") and r.get("store") == str(toy.store.root)}


def settled(toy: Toy) -> None:
    """Wait until the warmers a toy run started have left their labs warm (or failed)."""
    retry(lambda _: not warm.warming(toy.store, str(toy.pytester.path)), 300, "the warmers to end")


def run_warm(toy: Toy, seen: Path) -> dict[str, dict[str, object]]:
    """Run WARMTH keeping one lab warm, and wait for its warmer; the labs its tests saw, by
    kind ("shared", "private")."""
    seen.unlink(missing_ok=True)
    toy.run("test_warmth.py", env={"HARNESS_WARM_LABS": "1", "WARM_SEEN": str(seen)}).assert_outcomes(
        passed=2)
    settled(toy)
    return {line["kind"]: line for line in map(json.loads, seen.read_text().splitlines())}


def harness_destroy(toy: Toy) -> subprocess.CompletedProcess[str]:
    """`harness destroy --all` on the toy's store (its own: no other run's labs are there)."""
    return subprocess.run([sys.executable, "-m", "harness.cli", "--store", str(toy.store.root), "destroy",
                           "--all"], capture_output=True, text=True, cwd=REPO, timeout=600, check=False)


@pytest.mark.integration
def test_a_run_adopts_the_pristine_lab_the_last_left_and_never_a_touched_or_stale_one(
        toy: Toy, tmp_path: Path) -> None:
    toy.pytester.makepyfile(test_warmth=WARMTH)
    seen, work = tmp_path / "seen.jsonl", toy.store.root / "work"
    try:
        first = run_warm(toy, seen)
        [left] = warm_of(toy)  # one, pristine: neither the shared lab nor the private one
        assert left not in {first["shared"]["id"], first["private"]["id"]}
        for touched in (first["shared"]["id"], first["private"]["id"]):
            assert traces_of(str(touched), work / str(touched)) == NOTHING
        record = warm_of(toy)[left]
        assert record["origin"] == record["warm"]["snapshot"]  # type: ignore[index]
        leaders = dict(record["machines"])  # type: ignore[call-overload]

        second = run_warm(toy, seen)  # takes it for its shared lab, machines and all
        assert second["shared"]["id"] == left and second["shared"]["beta"] == leaders["beta"]
        assert second["private"]["id"] != left
        [again] = warm_of(toy)  # and another is left behind
        assert again not in {second["shared"]["id"], second["private"]["id"]}
        assert traces_of(left, work / left) == NOTHING  # touched by a test: gone with the run

        toy.write(alpha=1, beta=2)  # beta's key changes: the warm lab is of a stale key
        third = run_warm(toy, seen)
        assert third["shared"]["id"] != again
        assert traces_of(again, work / again) == NOTHING
        [last] = warm_of(toy)
        assert warm_of(toy)[last]["warm"]["key"] != record["warm"]["key"]  # type: ignore[index]
    finally:
        destroyed = harness_destroy(toy)
    assert destroyed.returncode == 0, destroyed.stderr
    assert last in destroyed.stdout
    assert traces_of(last, work / last) == NOTHING and not (records.RUN_DIR / last).exists()
    assert warm_of(toy) == {}


@pytest.mark.integration
def test_an_interrupted_run_leaves_no_lab_warm(toy: Toy, tmp_path: Path) -> None:
    marker = tmp_path / "held"
    os.mkfifo(f"{marker}.release")
    run = toy.start("-k", "test_alpha", group=True, env={
        "HARNESS_WARM_LABS": "1", "TOY_HOLD": "scenario", "TOY_HOLD_FILE": str(marker)})
    mine: list[dict[str, object]] = []
    warmers: list[int] = []
    try:
        retry(lambda _: marker.exists() or run.poll() is not None, 300, "the scenario to be held")
        assert run.poll() is None, (toy.pytester.path / "run.out").read_text()

        def warmer_booting(last_try: bool) -> bool:  # its lab recorded, its machines started
            nonlocal mine, warmers
            mine = [dict(r) for r in labs.recorded_labs() if r.get("store") == str(toy.store.root)]
            warmers = [int(str(w["pid"])) for w in warm.warming(toy.store, str(toy.pytester.path))]
            return bool(warmers) and any(r["pid"] == warmers[0] and all(dict(r["machines"]).values())  # type: ignore[call-overload]
                                         for r in mine)

        retry(warmer_booting, 300, "the warmer to boot its lab beside the held scenario")
        os.killpg(run.pid, signal.SIGINT)  # the warmer has a session of its own: the run stops it
        run.wait(120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        destroyed = harness_destroy(toy)
    assert destroyed.stdout.startswith("destroyed 0 lab(s)"), destroyed.stdout
    assert len(mine) == 2 and [p for p in warmers if proc.start_time(p) is not None] == []  # or zombies
    for record in mine:
        lab_id = str(record["id"])
        assert traces_of(lab_id, toy.store.root / "work" / lab_id) == NOTHING
    assert [r for r in labs.recorded_labs() if r.get("store") == str(toy.store.root)] == []
    assert warm.warming(toy.store, str(toy.pytester.path)) == []


def test_ls_shows_a_warm_lab_as_such_and_down_ends_it_by_its_id_only(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness import cli
    from harness.cli import args as cli_args

    project = (tmp_path / "mine").resolve()
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    monkeypatch.chdir(project)
    monkeypatch.setattr(records, "RUN_DIR", tmp_path / "run")
    records.RUN_DIR.mkdir()
    now, me = time.time(), [os.getpid(), proc.start_time(os.getpid())]  # a live "keeper"
    warm = {"snapshot": "gw/1a2b", "stage": "gw", "key": "1a2b", "booted_at": now, "until": now + 600}
    for lab_id, more in [("k1", {}), ("w1", {"warm": warm, "keepers": {"gw": me}}),
                         ("w2", {"warm": warm, "keepers": {"gw": [os.getpid(), -1]}})]:  # keeper gone
        record = {"id": lab_id, "pid": None, "store": str(tmp_path), "machines": {"gw": 1},
                  "origin": "gw/1a2b", "project": str(project), **more}
        (records.RUN_DIR / f"{lab_id}.json").write_text(json.dumps(record))
    assert [labs.stale(r) for r in labs.recorded_labs()] == [
        None, None, "the keepers of its consoles are gone"]

    def no_pipeline(args: object) -> None:
        raise UsageError("no pipeline")

    monkeypatch.setattr(cli_args, "pipeline", no_pipeline)
    monkeypatch.setattr(cli_args, "store", lambda args: type("S", (), {"root": tmp_path,
                                                                      "snapshots": lambda self: []})())
    assert cli.main(["ls"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "lab k1 (kept, from gw/1a2b): gw", "lab w1 (warm, adoptable for 9m, from gw/1a2b): gw"]
    destroyed: list[str] = []
    monkeypatch.setattr(labs, "destroy", lambda lab_id, store=None, **kw: destroyed.append(lab_id))
    assert cli.main(["down"]) == 0 and destroyed == ["k1"]  # the lab `harness up` left, not a run's
    assert cli.main(["down", "w1"]) == 0 and destroyed == ["k1", "w1"]
