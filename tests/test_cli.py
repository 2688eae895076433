"""harness.cli: the ``harness`` command on the real store."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import cli
from harness.cli import args as cli_args
from harness.cli import labs as cli_labs
from harness.core import proc
from harness.core.errors import UsageError
from harness.core.names import SnapshotRef
from harness.engine.build.builder import Builder
from harness.machines import lab, network, nspawn, records
from harness.machines.store import Snapshot, Store
from tests.conftest import NOTHING, traces_of
from tests.toy import Toy, drop_store, scratch_store

REPO = Path(__file__).resolve().parent.parent


def harness(*args: str, store: Store | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "harness.cli"]
    if store is not None:
        argv += ["--store", str(store.root)]
    return subprocess.run([*argv, *args], capture_output=True, text=True, cwd=REPO, timeout=600)


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("init", "setup-host", "ls", "rm", "build", "up", "shell", "impair", "down", "export",
                    "import", "gc", "destroy", "report", "mutate"):
        with pytest.raises(SystemExit) as info:
            cli.main([command, "--help"])
        assert info.value.code == 0
        assert f"usage: harness {command}" in capsys.readouterr().out


def test_a_command_after_double_dash_is_only_for_shell(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["ls", "--", "true"])
    assert info.value.code == 2
    assert "only for `harness shell MACHINE -- COMMAND`" in capsys.readouterr().err


def test_shell_without_a_running_lab_says_how_to_start_one(capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setattr(records, "RUN_DIR", tmp_path)
    assert cli.main(["shell", "gw", "--", "true"]) == 2
    assert capsys.readouterr().err.strip().endswith("no lab is running: start one with `harness up`")


def test_shell_passes_the_words_after_double_dash_to_the_machine_as_they_are(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # a kept lab whose machine gw is this process: nothing boots, nothing is entered
    monkeypatch.setattr(records, "RUN_DIR", tmp_path)
    (tmp_path / "k1.json").write_text(json.dumps({"id": "k1", "pid": None, "machines": {"gw": os.getpid()}}))
    executed: list[list[str]] = []
    monkeypatch.setattr(cli_labs.os, "execvpe", lambda path, argv, env: executed.append(argv))
    assert cli.main(["shell", "gw", "--", "sh", "-c", "echo one; echo two"]) == 0
    assert cli.main(["shell", "gw"]) == 0
    assert executed == [
        ["nsenter", f"--target={os.getpid()}", "--all", "--", "sh", "-c", "echo one; echo two"],
        ["nsenter", f"--target={os.getpid()}", "--all", "--", "/bin/bash", "-l"]]


class FakeStore:
    """What `harness destroy` and `harness ls` read of a store, without btrfs: its root, the
    owners of its working clones, no snapshots."""

    def __init__(self, root: Path, owners: list[str]) -> None:
        self.root = root
        self._owners = owners

    def owners(self) -> list[str]:
        return self._owners

    def snapshots(self) -> list[Snapshot]:
        return []


@pytest.fixture
def labs_of_two_projects(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Records of labs of projects `mine` (the current directory) and `theirs` on one store, that
    store without btrfs, and `lab.destroy` replaced: it returns the ids it was asked to destroy.
    Nothing of the host is read but this process's pid; nothing is destroyed."""
    mine, theirs, store = (tmp_path / "mine").resolve(), tmp_path / "theirs", tmp_path / "store"
    mine.mkdir()
    (mine / "pytest.ini").write_text("[pytest]\n")
    monkeypatch.chdir(mine)
    monkeypatch.setattr(records, "RUN_DIR", tmp_path / "run")
    records.RUN_DIR.mkdir()
    alive = {"pid": os.getpid(), "started": proc.start_time(os.getpid())}
    kept = {"pid": None}
    gone = {"pid": os.getpid(), "started": -1}  # its owner died (its pid now another process's)
    for lab_id, project, owner, where in [
            ("a1", mine, kept, store), ("a2", mine, alive, store), ("a3", mine, kept, tmp_path / "other"),
            ("b1", theirs, kept, store), ("b2", theirs, alive, store), ("b3", theirs, gone, store),
            ("c1", None, kept, store)]:  # recorded before labs recorded their project
        record = {"id": lab_id, "store": str(where), "machines": {"gw": 1}, "origin": "gw/1a2b", **owner}
        if project is not None:
            record["project"] = str(project)
        (records.RUN_DIR / f"{lab_id}.json").write_text(json.dumps(record))
    monkeypatch.setattr(cli_args, "store", lambda args: FakeStore(store, ["a1", "b1", "d1"]))
    monkeypatch.setattr(network, "lab_namespaces", lambda: ["harness-e1-gw", "harness-b2-gw"])
    monkeypatch.setattr(nspawn, "units_with_cgroups", lambda prefix: [])
    destroyed: list[str] = []
    monkeypatch.setattr(lab, "destroy", lambda lab_id, store=None, **kw: destroyed.append(lab_id))
    return destroyed


def test_destroy_leaves_a_lab_that_starts_while_it_looks(labs_of_two_projects: list[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another project's lab f1 records itself, then makes its namespace, while `harness destroy`
    looks (its record written as the namespaces are listed); g1 is being adopted (its record
    claimed). Neither is record-less: both stay."""
    other = (records.RUN_DIR / "b2.json").read_text()

    def namespaces_as_f1_starts() -> list[str]:
        (records.RUN_DIR / "f1.json").write_text(other.replace('"b2"', '"f1"'))
        return ["harness-e1-gw", "harness-f1-gw", "harness-g1-gw"]

    monkeypatch.setattr(network, "lab_namespaces", namespaces_as_f1_starts)
    (records.RUN_DIR / "g1.claimed-4242").write_text(other.replace('"b2"', '"g1"'))
    assert cli.main(["destroy"]) == 0
    assert labs_of_two_projects == ["a1", "a2", "b3", "d1", "e1"]


def test_a_new_lab_id_is_none_in_use(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Ids held by a record, a claimed record, a namespace or a machine's cgroup are not drawn."""
    monkeypatch.setattr(records, "RUN_DIR", tmp_path)
    (tmp_path / "aaaaaaaa.json").write_text("{}")
    (tmp_path / "bbbbbbbb.claimed-42").write_text("{}")
    monkeypatch.setattr(network, "lab_namespaces", lambda: ["harness-cccccccc-sw"])
    monkeypatch.setattr(nspawn, "units_with_cgroups",
                        lambda prefix: [f"{prefix}gw"] if "dddd" in prefix else [])
    drawn = iter(["aaaaaaaa", "bbbbbbbb", "cccccccc", "dddddddd", "eeeeeeee"])
    monkeypatch.setattr(lab.secrets, "token_hex", lambda n: next(drawn))
    assert lab.new_lab_id() == "eeeeeeee"


def test_a_lab_destroyed_by_another_process_says_by_whom_and_why(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setattr(records, "RUN_DIR", tmp_path)
    monkeypatch.setattr(records, "DESTROYED_LOG", tmp_path / "destroyed.log")
    monkeypatch.setattr(records, "DESTROYED_LOG_MAX", 400)
    mine = {"pid": os.getpid()}
    theirs = {"pid": 1}
    records._note_destroyed("ab12", theirs, "swept as stale: its owner, pid 1, is gone")
    records._note_destroyed("cd34", theirs, "`harness down`")
    said = records.destroyed_by("ab12")
    assert said is not None and said.endswith("swept as stale: its owner, pid 1, is gone")
    assert f"by pid {os.getpid()} (`" in said
    assert records.destroyed_by("ef56") is None
    for _ in range(5):  # past the size bound: the older half goes, the newest stays whole
        records._note_destroyed("cd34", mine, "`harness down`")
    assert records.destroyed_by("ab12") is None
    assert str(records.destroyed_by("cd34")).endswith("`harness down`")
    assert (tmp_path / "destroyed.log").stat().st_size <= 400 + 300


def test_a_lab_a_builder_boots_records_the_builders_project(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    from stages import PIPELINE  # any pipeline: the lab is made and recorded, never entered
    monkeypatch.setattr(records, "RUN_DIR", tmp_path)
    builder = Builder(FakeStore(tmp_path, []), PIPELINE, project="/srv/mine", log_dir=tmp_path)  # type: ignore[arg-type]
    made = builder.lab(Snapshot(SnapshotRef.parse("gw/0123"), tmp_path, tuple(PIPELINE.members_until("gw")),
                                {"stage": "gw"}))
    made._record()  # what entering it writes first
    assert json.loads((tmp_path / f"{made.id}.json").read_text())["project"] == "/srv/mine"


def test_destroy_leaves_the_live_labs_of_other_projects_and_says_so(
        labs_of_two_projects: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["destroy"]) == 0
    # its own of this store; of others, the one whose owner died, clones (d1) and namespaces
    # (e1) without a record: no run's
    assert labs_of_two_projects == ["a1", "a2", "b3", "d1", "e1"]
    assert capsys.readouterr().out.splitlines() == [
        "destroyed 5 lab(s): a1, a2, b3, d1, e1",
        "left 3 running lab(s) of other projects: `harness destroy --all` stops them too"]
    labs_of_two_projects.clear()
    assert cli.main(["destroy", "--all"]) == 0
    assert labs_of_two_projects == ["a1", "a2", "b1", "b2", "b3", "c1", "d1", "e1"]
    assert capsys.readouterr().out.splitlines() == ["destroyed 8 lab(s): a1, a2, b1, b2, b3, c1, d1, e1"]


def test_ls_lists_the_labs_of_this_project_unless_all(labs_of_two_projects: list[str],
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def no_pipeline(args: object) -> None:
        raise UsageError("no pipeline")
    monkeypatch.setattr(cli_args, "pipeline", no_pipeline)
    assert cli.main(["ls"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("no snapshots in ")
    assert out[1:] == ["lab a1 (kept, from gw/1a2b): gw", f"lab a2 (pid {os.getpid()}, from gw/1a2b): gw",
                    "lab a3 (kept, from gw/1a2b): gw",
                    "3 running lab(s) of other projects not listed: `harness ls --all` lists them"]
    assert cli.main(["ls", "--all"]) == 0
    assert capsys.readouterr().out.splitlines()[4:] == ["lab b1 (kept, from gw/1a2b, project theirs): gw",
                        f"lab b2 (pid {os.getpid()}, from gw/1a2b, project theirs): gw",
                        "lab c1 (kept, from gw/1a2b, project -): gw"]
    assert labs_of_two_projects == []


def test_ls_with_a_pipeline_that_does_not_load_lists_then_fails_in_one_line(
        labs_of_two_projects: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    Path("pytest.ini").write_text("[pytest]\nharness_pipeline = officestages\n")
    Path("officestages.py").write_text('from pathlib import Path\nfrom harness import load_inventory\n'
                                       'INVENTORY = load_inventory(Path("inventory.toml"))\n')
    Path("inventory.toml").write_text('[segments.lan]\ncidr = "10.0.0.0/24"\ngatway = "10.0.0.1"\n')
    try:
        assert cli.main(["ls"]) == 2
    finally:
        sys.modules.pop("officestages", None)
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("no snapshots in ")  # what it can list, it lists
    [line] = err.splitlines()
    assert line.startswith("harness: error: ") and "inventory.toml:3" in line and "'gatway'" in line, line


@pytest.mark.integration
def test_unknown_stage_is_a_usage_error(harness_store: Store) -> None:
    result = harness("build", "--until", "nowhere", store=harness_store)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        "harness: error: unknown stage 'nowhere': the stages are bootstrap")


@pytest.mark.integration
def test_ls_shows_the_current_bootstrap_snapshot_with_its_size(harness_store: Store,
                                                       bootstrap: Snapshot) -> None:
    result = harness("ls", store=harness_store)
    assert result.returncode == 0, result.stderr
    ref = bootstrap.ref
    stage, key = ref.group, ref.key
    line = next(line for line in result.stdout.splitlines() if line[2:].split()[:2] == [stage, key])
    assert line.startswith("* ")  # the current key of the stage
    assert "MiB" not in line  # sizes cost a walk of the tree: only with --size
    sized = harness("ls", "--size", store=harness_store)
    assert next(line for line in sized.stdout.splitlines() if key in line).split()[-3] == "MiB"  # total


@pytest.mark.integration
def test_ls_lists_in_pipeline_order_with_what_each_was_built_on_and_rm_removes(toy: Toy) -> None:
    toy.run().assert_outcomes(passed=5)
    snaps = {s.ref.group: s.name for s in toy.store.snapshots()}
    argv = [sys.executable, "-m", "harness.cli", "--store", str(toy.store.root), "--pipeline", "toystages"]
    listed = subprocess.run([*argv, "ls"], capture_output=True, text=True, cwd=toy.pytester.path)
    # the host's other labs (another run's, another project's) are counted on a line of their own
    rows = [line[2:].split() for line in listed.stdout.splitlines()[1:]
            if not line.startswith("lab ") and "of other projects" not in line]
    assert [(r[0], r[-1]) for r in rows] == [("bootstrap", "-"), ("alpha", snaps["bootstrap"]),
                                             ("beta", snaps["alpha"])]
    removed = subprocess.run([*argv, "rm", "beta", "failed/*"], capture_output=True, text=True,
                             cwd=toy.pytester.path)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines() == [f"removed {snaps['beta']}"]
    assert toy.published() == ["alpha", "bootstrap"]


@pytest.mark.integration
def test_build_reuses_a_published_bootstrap(harness_store: Store, bootstrap: Snapshot) -> None:
    result = harness("build", "--until", "bootstrap", store=harness_store)
    assert result.returncode == 0, result.stderr
    assert f"{bootstrap.name} ready" in result.stdout
    assert "restored bootstrap; built nothing" in result.stderr


LEAKER = """
import sys
from harness.machines.store import open_store
from harness.machines.lab import Lab, MachineSetup
from harness.core.links import Interface
store = open_store(sys.argv[1])
from harness.engine.build.builder import Builder
from stages import PIPELINE
base = Builder(store, PIPELINE).ensure("bootstrap").member("base")
lab = Lab(store, [MachineSetup("a", base, (Interface("a", "host0", "lan", "02:00:00:00:00:01"),))])
lab.__enter__()
from collections.abc import Iterator
from pathlib import Path
from harness.engine.evidence import Capture
capture = Capture(lab.network, Path(sys.argv[2])).start()  # tcpdump in the lab's switch namespace
print(lab.id, flush=True)
sys.stdin.read()  # hold the lab until killed
"""


@contextlib.contextmanager
def stuck_run_lab(store: Store, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A lab (with a capture) in ``store`` whose owner hangs, stopped (SIGSTOP): its id and clones.

    Stopped, not killed: a lab whose owner is gone is swept by the next run that starts on the
    host (`harness.machines.lab.sweep_stale`), and other runs share this host; `harness destroy`
    ends a lab whatever its owner's state. The owner is killed and reaped on the way out."""
    leaker = subprocess.Popen([sys.executable, "-c", LEAKER, str(store.root), str(tmp_path)],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert leaker.stdout is not None
        lab_id = leaker.stdout.readline().strip()
        leaker.send_signal(signal.SIGSTOP)
        yield lab_id, store.root / "work" / lab_id
    finally:
        leaker.kill()
        leaker.wait()


@pytest.mark.integration
def test_destroy_cleans_up_after_a_hung_run(toy: Toy, tmp_path: Path) -> None:
    # a store of its own: `harness destroy --all` removes every lab of its store, running ones too
    # (the lab is no project's: its owner made it with Lab itself)
    with stuck_run_lab(toy.store, tmp_path) as (lab_id, work):
        left = traces_of(lab_id, work)
        assert left.namespaces and left.clones and "tcpdump" in left.inside  # really left behind
        stragglers = network.processes_in(left.namespaces)
        result = harness("destroy", "--all", store=toy.store)
    assert result.returncode == 0, result.stderr
    assert lab_id in result.stdout
    assert traces_of(lab_id, work) == NOTHING
    assert not work.exists()
    assert [p for p in stragglers if running(p)] == []


@pytest.mark.integration
def test_destroy_removes_only_the_labs_of_its_store(harness_store: Store, toy: Toy,
                                                   tmp_path: Path) -> None:
    with stuck_run_lab(toy.store, tmp_path) as (lab_id, work):
        # Another store, empty: never the shared one, whose labs belong to other runs on the host.
        other = scratch_store(harness_store)
        try:
            result = harness("destroy", "--all", store=other)
        finally:
            drop_store(other)
        assert result.returncode == 0, result.stderr
        assert lab_id not in result.stdout and traces_of(lab_id, work).clones
        result = harness("destroy", "--all", store=toy.store)
    assert lab_id in result.stdout
    assert traces_of(lab_id, work) == NOTHING


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.integration
def test_gc_deletes_old_keys_only(toy: Toy) -> None:
    toy.run("-k", "test_alpha").assert_outcomes(passed=1, deselected=4)
    old = toy.store.snapshots()
    toy.write(alpha=2, beta=1)
    toy.run("-k", "test_alpha").assert_outcomes(passed=1, deselected=4)
    names = [s.name for s in toy.store.snapshots()]
    stale = [s.name for s in old if s.name.startswith("alpha/")]
    assert len([n for n in names if n.startswith("alpha/")]) == 2
    argv = [sys.executable, "-m", "harness.cli", "--store", str(toy.store.root), "--pipeline", "toystages"]
    kept = subprocess.run([*argv, "gc", "--keep", "1"], capture_output=True, text=True, cwd=toy.pytester.path)
    assert kept.returncode == 0 and kept.stdout.startswith("removed 0"), kept.stderr
    done = subprocess.run([*argv, "gc"], capture_output=True, text=True, cwd=toy.pytester.path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["removed 1 snapshot(s)", f"  {stale[0]}"]
    assert sorted(s.name for s in toy.store.snapshots()) == sorted(set(names) - set(stale))
