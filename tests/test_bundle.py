"""Bug reproduction end to end: a failing test's lab is kept, exported, carried to another
store, imported and brought back up, with its state and evidence; damaged bundles are refused.

Everything runs on the toy pipeline (tests/toy.py) and the ``harness`` command, as a user
would type it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.core.names import SnapshotRef
from harness.machines import lab as labs
from harness.machines import treediff
from harness.machines.store import Snapshot, Store
from tests.conftest import NOTHING, traces_of
from tests.toy import PIPELINE, Toy, drop_store, scratch_store

pytestmark = pytest.mark.integration

BROKEN = '''
def test_note_then_fail(alpha):
    alpha.succeed("echo written-before-the-failure > /root/note")
    alpha.succeed("logger -t toy about-to-fail")
    alpha.execute("ping -c1 -W1 10.66.0.99")  # nobody there: ARP requests cross the switch
    assert alpha.succeed("cat /etc/alpha-built").strip() == "no such version"
'''
KEPT = "failed/test_broken.py-test_note_then_fail"


def harness(*args: str | Path, store: Store, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the ``harness`` command on ``store`` with the toy pipeline, from ``cwd``."""
    argv = [sys.executable, "-m", "harness.cli", "--store", str(store.root), "--pipeline", "toystages"]
    return subprocess.run([*argv, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def elsewhere(harness_store: Store) -> Iterator[Store]:
    """A second, empty store: another machine, as far as snapshots go."""
    store = scratch_store(harness_store)
    yield store
    drop_store(store)


@pytest.fixture
def kept(toy: Toy) -> Snapshot:
    """The toy's failing test, run with --keep-failed: its lab kept as a snapshot."""
    toy.pytester.makepyfile(test_broken=BROKEN)
    result = toy.run("test_broken.py", "--keep-failed")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*harness up --from-snapshot {KEPT}*"])
    snapshot = toy.store.get(SnapshotRef.parse(KEPT))
    assert snapshot is not None
    return snapshot


def test_keep_failed_snapshots_the_lab_with_its_evidence(kept: Snapshot) -> None:
    assert set(kept.members) == {"alpha"}
    assert kept.meta["test"] == "test_broken.py::test_note_then_fail"
    assert (kept.member("alpha") / "root/note").read_text() == "written-before-the-failure\n"
    journal = kept.path / "evidence" / "alpha.journal.txt"
    assert "about-to-fail" in journal.read_text()
    pcap = subprocess.run(["tcpdump", "-nr", str(kept.path / "evidence" / "lan.pcap")],
                          capture_output=True, text=True, check=True).stdout
    assert "ARP, Request who-has 10.66.0.99" in pcap, pcap


def test_export_destroy_import_up_gives_the_machine_back(toy: Toy, kept: Snapshot, elsewhere: Store,
                                                         tmp_path: Path) -> None:
    here = toy.pytester.path
    bug = tmp_path / "bug.tar.zst"
    ok(harness("export", KEPT, "-o", bug, "--full", store=toy.store, cwd=here))  # the whole lab
    destroyed = ok(harness("destroy", store=toy.store, cwd=here))
    assert destroyed.startswith("destroyed")
    assert [r for r in labs.recorded_labs() if r.get("store") == str(toy.store.root)] == []
    ok(harness("import", bug, store=elsewhere, cwd=here))
    imported = elsewhere.get(KEPT)
    assert imported is not None and imported.meta["test"] == kept.meta["test"]
    assert (imported.path / "evidence" / "alpha.journal.txt").read_text() == \
        (kept.path / "evidence" / "alpha.journal.txt").read_text()
    up = ok(harness("up", "--from-snapshot", KEPT, store=elsewhere, cwd=here))
    lab_id = up.split()[1]
    try:
        note = ok(harness("shell", "alpha", "--lab", lab_id, "--", "cat", "/root/note", store=elsewhere,
                          cwd=here))
        assert note == "written-before-the-failure\n"
        listed = ok(harness("ls", store=elsewhere, cwd=here))
        assert f"lab {lab_id} (kept, from {KEPT}): alpha" in listed
    finally:
        ok(harness("down", lab_id, store=elsewhere, cwd=here))
    assert traces_of(lab_id, elsewhere.root / "work" / lab_id) == NOTHING


VOLATILE = PIPELINE.replace("PIPELINE = Pipeline(", "import dataclasses\nPIPELINE = Pipeline(").replace(
    "toy_beta.STAGE]", 'dataclasses.replace(toy_beta.STAGE, boot_args={"beta": ("--volatile=overlay",)})]')
BROKEN_BOTH = '''
def test_both_write_then_fail(alpha, beta):
    alpha.succeed("echo alpha-wrote-this > /root/note")
    beta.succeed("echo beta-wrote-this-on-its-overlay > /root/volatile-note")
    assert False, "on purpose"
'''


def test_a_kept_failure_travels_as_its_changes_with_a_diskless_machines_writes(
        toy: Toy, base_bootstrap: Snapshot, elsewhere: Store, tmp_path: Path) -> None:
    here = toy.pytester.path
    toy.pytester.makepyfile(toystages=VOLATILE, test_both=BROKEN_BOTH)
    toy.run("test_both.py", "--keep-failed").assert_outcomes(failed=1)
    kept = "failed/test_both.py-test_both_write_then_fail"
    snapshot = toy.store.get(SnapshotRef.parse(kept))
    assert snapshot is not None
    assert (snapshot.member("beta") / "root/volatile-note").exists()  # the overlay's writes kept
    bug = tmp_path / "bug.tar.zst"
    ok(harness("export", kept, "-o", bug, store=toy.store, cwd=here))
    whole = tmp_path / "whole.tar.zst"
    ok(harness("export", kept, "-o", whole, "--full", store=toy.store, cwd=here))
    assert bug.stat().st_size < 5 << 20 and bug.stat().st_size * 10 < whole.stat().st_size
    # another machine: the same checkout, only bootstrap in its store, no running stage of the toy
    elsewhere.publish(base_bootstrap.name, {"base": base_bootstrap.member("base")},
                      dict(base_bootstrap.meta))
    refused = subprocess.run([sys.executable, "-m", "harness.cli", "--store", str(elsewhere.root),
                              "--pipeline", "no_such_pipeline", "import", str(bug)],
                             capture_output=True, text=True, cwd=tmp_path)  # no pipeline at hand
    assert refused.returncode == 2
    assert f"holds changes to snapshot {snapshot.meta['from']}, which this store lacks: build " \
           "that stage first (`harness build --until beta`" in refused.stderr
    imported = ok(harness("import", bug, store=elsewhere, cwd=here))  # the pipeline is at hand
    assert imported.startswith(f"building {snapshot.meta['from']} first")
    assert f"imported {kept} (alpha, beta; as changes to {snapshot.meta['from']})" in imported
    up = ok(harness("up", "--from-snapshot", kept, store=elsewhere, cwd=here))
    lab_id = up.split()[1]
    try:
        notes = [ok(harness("shell", machine, "--lab", lab_id, "--", "cat", f"/root/{note}",
                            store=elsewhere, cwd=here))
                 for machine, note in (("alpha", "note"), ("beta", "volatile-note"))]
        assert notes == ["alpha-wrote-this\n", "beta-wrote-this-on-its-overlay\n"]
    finally:
        ok(harness("down", lab_id, store=elsewhere, cwd=here))


def _state(store: Store) -> tuple[list[str], list[str]]:
    """What a store holds: its snapshots and every subvolume under it (a subvolume's root is
    inode 256; `btrfs subvolume list` would show the whole filesystem's, other runs' included)."""
    inside = sorted(p.as_posix() for p in store.root.rglob("*") if p.is_dir() and p.stat().st_ino == 256)
    return [s.name for s in store.snapshots()], inside


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_damaged_bundle_is_refused_and_the_store_is_unchanged(toy: Toy, kept: Snapshot,
                                                                elsewhere: Store, tmp_path: Path,
                                                                damage: str) -> None:
    here = toy.pytester.path
    bug = tmp_path / "bug.tar.zst"
    ok(harness("export", KEPT, "-o", bug, store=toy.store, cwd=here))
    data = bug.read_bytes()
    broken = tmp_path / "broken.tar.zst"
    if damage == "truncated":
        broken.write_bytes(data[: len(data) * 2 // 3])
    else:
        middle = len(data) // 2
        broken.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    before = _state(elsewhere)
    refused = harness("import", broken, store=elsewhere, cwd=here)
    assert refused.returncode == 2
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith("harness: error: ") and "nothing was imported" in message, message
    assert _state(elsewhere) == before
    assert not (elsewhere.root / ".tmp").exists() or not any((elsewhere.root / ".tmp").iterdir())


# The reference lab's layout, small: a room's seats boot one tree read-only with a volatile
# overlay (the stage snapshot stores the tree, not the seats), beside machines of their own,
# one of them IPv6-only.
ROOMS = '''
from harness.engine.build.debian import base_stage
from harness.core.links import Interface
from harness.model.stage import Stage
from harness.model.pipeline import Pipeline

ROOMS = {"r1": ("r1p1", "r1p2"), "r2": ("r2p1",)}
SEATS = tuple(seat for room in ROOMS.values() for seat in room)
SERVE = Stage.here("serve", machines=("alpha", "six"), trees=("thin",))
HALL = Stage.here("hall", machines=SEATS, sources=dict.fromkeys(SEATS, "thin"),
                  boot_args=dict.fromkeys(SEATS, ("--read-only", "--volatile=overlay")))

PIPELINE = Pipeline(
    [base_stage(), SERVE, HALL],
    {"alpha": [Interface("alpha", "host0", "lan", "02:00:00:00:66:01", ("10.66.0.1/24", "fd66::1/64"))],
     "six": [Interface("six", "host0", "lan", "02:00:00:00:66:06", ("fd66::6/64",))],
     **{seat: [Interface(seat, "host0", "lan", f"02:00:00:00:66:{11 + i}", (f"10.66.0.{11 + i}/24",))]
        for i, seat in enumerate(SEATS)}},
    rooms=ROOMS,
)
'''
BROKEN_SEATS = '''
def test_seats_write_then_fail(alpha, six, r1p1, r2p1):
    alpha.succeed("echo alpha-wrote-this > /root/note")
    six.succeed("ping -c1 -W5 fd66::1 && echo six-wrote-this > /root/note")
    r1p1.succeed("echo r1p1-wrote-this > /root/note && chown 4321:4322 /root/note "
                        "&& chmod 640 /root/note && rm /etc/motd && mkdir -m 700 /var/kept "
                        "&& ln -s /root/note /var/kept/link")
    r2p1.succeed("echo r2p1-wrote-this > /root/note")
    assert False, "on purpose"
'''
KEPT_SEATS = "failed/test_seats.py-test_seats_write_then_fail"


def test_a_kept_failure_of_rooms_sharing_a_tree_travels_as_changes_and_comes_back_exactly(
        toy: Toy, elsewhere: Store, tmp_path: Path) -> None:
    here = toy.pytester.path
    toy.pytester.makepyfile(toystages=ROOMS, test_seats=BROKEN_SEATS)
    toy.run("test_seats.py", "--keep-failed").assert_outcomes(failed=1)
    kept = toy.store.get(KEPT_SEATS)
    stage = toy.store.get(str(kept.meta["from"])) if kept else None
    assert kept is not None and stage is not None
    seats = {"r1p1", "r1p2", "r2p1"}
    assert set(stage.members) == {"alpha", "six", "thin"}  # the seats boot thin: no root stored
    assert set(kept.members) == {"alpha", "six", "thin", *seats}  # each seat's writes kept
    assert kept.meta["shares"] == dict.fromkeys(sorted(seats), "thin")
    bug = tmp_path / "bug.tar.zst"
    ok(harness("export", KEPT_SEATS, "-o", bug, store=toy.store, cwd=here))
    listed = subprocess.run(["tar", "--zstd", "-tf", str(bug)], capture_output=True, text=True,
                            check=True).stdout.split()
    assert [e for e in listed if not e.startswith("evidence/")] == [
        "bundle.json", *(f"changes/{m}.tar" for m in kept.members), "checksums.json"]  # no members/
    assert bug.stat().st_size < 5 << 20, f"{bug.stat().st_size} bytes"
    # another machine with the same stage snapshot (built or imported there: the same trees)
    elsewhere.publish(stage.name, {m: stage.member(m) for m in stage.members}, dict(stage.meta))
    imported = ok(harness("import", bug, store=elsewhere, cwd=here))
    assert f"imported {KEPT_SEATS} (alpha, r1p1, r1p2, r2p1, six, thin; as changes to {stage.name})" \
        in imported
    back = elsewhere.get(KEPT_SEATS)
    assert back is not None and back.members == kept.members
    for member in kept.members:  # files, modes, owners, times, links, deletions
        assert not treediff.diff(kept.member(member), back.member(member)), member
    note = back.member("r1p1") / "root/note"
    assert (note.stat().st_mode & 0o777, note.stat().st_uid, note.stat().st_gid) == (0o640, 4321, 4322)
    assert not (back.member("r1p1") / "etc/motd").exists() and (back.member("thin") / "etc/motd").exists()
    up = ok(harness("up", "--from-snapshot", KEPT_SEATS, store=elsewhere, cwd=here))
    lab_id = up.split()[1]
    try:
        seen = {machine: ok(harness("shell", machine, "--lab", lab_id, "--", "sh", "-c", command,
                                    store=elsewhere, cwd=here))
                for machine, command in (
                    ("r1p1", "cat /root/note; stat -c '%a %u:%g' /root/note; readlink /var/kept/link; "
                             "test -e /etc/motd || echo no motd"),
                    ("r2p1", "cat /root/note"), ("six", "cat /root/note"), ("alpha", "cat /root/note"))}
        assert seen == {"r1p1": "r1p1-wrote-this\n640 4321:4322\n/root/note\nno motd\n",
                        "r2p1": "r2p1-wrote-this\n", "six": "six-wrote-this\n",
                        "alpha": "alpha-wrote-this\n"}
    finally:
        ok(harness("down", lab_id, store=elsewhere, cwd=here))
