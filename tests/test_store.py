"""harness.machines.store: names and mount parsing (no root), then real btrfs subvolumes and snapshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.core import names, proc
from harness.core.errors import HarnessError, UsageError
from harness.core.names import SnapshotRef
from harness.machines import store, volumes
from harness.machines.store import Store
from tests.conftest import as_nobody

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:35 / /var/lib/harness/store rw,relatime shared:20 - btrfs /dev/loop0 rw,space_cache=v2
41 22 0:36 / /mnt/with\\040space rw - btrfs /dev/loop1 rw
42 40 0:37 / /var/lib/harness/store/work/x/proc rw - proc proc rw
"""


@pytest.mark.parametrize("path, expected", [
    ("/", ("/", "ext4")),
    ("/var/lib/harness", ("/", "ext4")),
    ("/var/lib/harness/store", ("/var/lib/harness/store", "btrfs")),
    ("/var/lib/harness/store/snapshots/a", ("/var/lib/harness/store", "btrfs")),
    ("/var/lib/harness/storex", ("/", "ext4")),
    ("/mnt/with space/a", ("/mnt/with space", "btrfs")),
    ("/var/lib/harness/store/work/x/proc/1", ("/var/lib/harness/store/work/x/proc", "proc")),
])
def test_filesystem_of_finds_the_innermost_mount(path: str, expected: tuple[str, str]) -> None:
    assert volumes.filesystem_of(Path(path), MOUNTINFO) == expected


@pytest.mark.parametrize("name", ["bootstrap/1a2b", "gw", "failed/test_dns.py-x"])
def test_good_names(name: str) -> None:
    assert names.check_name(name) == name


@pytest.mark.parametrize("name", ["", "/abs", "a/../b", "Upper", "a//b", "a/", "-x"])
def test_bad_names_say_the_rule(name: str) -> None:
    with pytest.raises(UsageError, match=r"bad snapshot name .*lowercase parts"):
        names.check_name(name)


def test_missing_btrfs_progs_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(volumes.shutil, "which", lambda *a, **k: None)
    with pytest.raises(HarnessError,
                       match=r"btrfs-progs is not installed: run `apt-get install -y btrfs-progs`"):
        volumes.require_btrfs_progs()




@pytest.fixture
def scratch(harness_store: Store, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A unique owner name in the real store, released after the test."""
    owner = f"test-{os.getpid()}-{request.node.name[:20].replace('[', '-').strip(']')}".lower()
    yield owner
    harness_store.release(owner)


@pytest.mark.integration
def test_not_root_is_one_clear_line() -> None:
    result = subprocess.run([*as_nobody(), sys.executable, "-m", "harness.cli", "ls"],
                            capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "harness: error: harness needs root (btrfs, network namespaces, systemd-nspawn): "
        "run it as root, e.g. `sudo make test`"]


@pytest.mark.integration
def test_pytest_as_a_user_is_one_usage_error_before_any_test() -> None:
    with tempfile.TemporaryDirectory() as reports:  # where the user may write
        Path(reports).chmod(0o777)
        result = subprocess.run([*as_nobody(), sys.executable, "-m", "pytest", "scenarios", "-q",
                                 "-p", "no:cacheprovider", f"--reports={reports}"],
                                capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout[-2000:] + result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "ERROR: harness needs root (btrfs, network namespaces, systemd-nspawn): "
        "run it as root, e.g. `sudo make test`"]
    assert "passed" not in result.stdout and "error" not in result.stdout


@pytest.mark.integration
def test_store_not_on_btrfs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=rf"store {tmp_path} is on \w+, not btrfs: give a btrfs "
                                           r"directory with --store/HARNESS_STORE"):
        Store(tmp_path)


@pytest.mark.integration
def test_store_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="does not exist: create it on a btrfs filesystem"):
        Store(tmp_path / "nowhere")


@pytest.mark.integration
def test_subvolume_clone_is_writable_and_independent(harness_store: Store, scratch: str) -> None:
    src = harness_store.create(harness_store.work_path(scratch, "src"))
    (src / "file").write_text("one")
    clone = harness_store.clone(src, harness_store.work_path(scratch, "clone"))
    (clone / "file").write_text("two")
    assert (src / "file").read_text() == "one"
    assert volumes.is_subvolume(clone)
    frozen = harness_store.freeze(src, harness_store.work_path(scratch, "frozen"))
    with pytest.raises(OSError):
        (frozen / "file").write_text("three")
    harness_store.delete(clone)
    assert not clone.exists()
    harness_store.delete(clone)  # already gone: not an error


@pytest.mark.integration
def test_delete_removes_nested_subvolumes(harness_store: Store, scratch: str) -> None:
    outer = harness_store.create(harness_store.work_path(scratch, "outer"))
    harness_store.create(outer / "var/lib/machines")
    harness_store.delete(outer)
    assert not outer.exists()


@pytest.mark.integration
def test_publish_list_get_usage_remove(harness_store: Store, scratch: str) -> None:
    a = harness_store.create(harness_store.work_path(scratch, "a"))
    (a / "data").write_bytes(os.urandom(1 << 20))
    name = SnapshotRef.of_stage("test", scratch)
    snap = harness_store.publish(name, {"a": a}, {"stage": "test"})
    log = harness_store.log_of(name)  # what its build wrote, as a builder would
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("stage test: built\n")
    try:
        assert snap.members == ("a",) and snap.meta["stage"] == "test"
        assert harness_store.exists(name)
        assert name in [s.ref for s in harness_store.snapshots()]
        assert (snap.member("a") / "data").stat().st_size == 1 << 20
        assert harness_store.usage(snap.path).total >= 1 << 20
        with pytest.raises(OSError):
            (snap.member("a") / "new").write_text("x")
        with pytest.raises(HarnessError, match="already published"):
            harness_store.publish(name, {"a": a}, {})
        with pytest.raises(UsageError, match="has no member 'b'; it has: a"):
            snap.member("b")
    finally:
        harness_store.remove(name)
    assert not harness_store.exists(name) and not log.exists()  # its build log goes with it
    assert not list((harness_store.root / ".tmp").glob(f"*{scratch}*"))


@pytest.mark.integration
def test_replacing_a_snapshot_swaps_it_whole_then_deletes_the_old_one(
        harness_store: Store, scratch: str) -> None:
    a = harness_store.create(harness_store.work_path(scratch, "a"))
    (a / "version").write_text("1")
    name = SnapshotRef.of_stage("test", scratch)
    old = harness_store.publish(name, {"a": a}, {"version": 1})
    try:
        held = os.open(old.member("a") / "version", os.O_RDONLY)  # a reader of the old one
        (a / "version").write_text("2")
        new = harness_store.publish(name, {"a": a}, {"version": 2}, replace=True)
        assert (new.member("a") / "version").read_text() == "2" and new.meta["version"] == 2
        assert os.read(held, 10) == b"1"  # what was open stays readable; its name is gone
        os.close(held)
        # the old snapshot went through .tmp (under the publish's name) and was deleted there
        assert not list((harness_store.root / ".tmp").glob(f"*{scratch}*"))
    finally:
        harness_store.remove(name)
    assert not list((harness_store.root / ".tmp").glob(f"*{scratch}*"))


def test_exchange_swaps_two_paths(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("b")
    volumes.exchange(tmp_path / "a", tmp_path / "b")
    assert [(tmp_path / n / "x").read_text() for n in "ab"] == ["b", "a"]
    with pytest.raises(OSError, match="renameat2 exchange"):
        volumes.exchange(tmp_path / "a", tmp_path / "missing")


@pytest.mark.integration
def test_failed_publish_leaves_nothing(harness_store: Store, scratch: str) -> None:
    good = harness_store.create(harness_store.work_path(scratch, "good"))
    name = SnapshotRef.of_stage("test", scratch)
    with pytest.raises(HarnessError):
        harness_store.publish(name, {"good": good, "bad": good.parent / "missing"}, {})
    assert not harness_store.exists(name)
    assert not harness_store.path_of(name).exists()
    assert not list((harness_store.root / ".tmp").glob(f"*{scratch}*"))


@pytest.mark.integration
def test_sweep_removes_publishes_of_dead_processes(harness_store: Store, scratch: str) -> None:
    dead = _dead_pid()
    half = harness_store.root / ".tmp" / f"test+{scratch}.{dead}.abcdef"
    half.mkdir(parents=True)
    harness_store.create(half / "a")
    mine = harness_store.root / ".tmp" / f"test+{scratch}.{os.getpid()}.abcdef"
    mine.mkdir()
    try:
        removed = harness_store.sweep()
        assert half.name in removed and not half.exists()
        assert mine.exists()  # its owner (this process) is alive
    finally:
        mine.rmdir()


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.integration
def test_embedded_image_is_created_and_mounted_once(tmp_path: Path) -> None:
    image = tmp_path / "store.img"
    mountpoint = volumes.mount_image(image, "1G")
    try:
        assert mountpoint == tmp_path / "store"
        assert volumes.is_btrfs(mountpoint) and volumes.is_mountpoint(mountpoint)
        assert image.stat().st_blocks * 512 < image.stat().st_size  # sparse
        assert volumes.mount_image(image, "1G") == mountpoint  # idempotent
        mounts = [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
                  if f" {mountpoint} " in line]
        assert len(mounts) == 1
    finally:
        proc.run(["umount", str(mountpoint)])


@pytest.mark.integration
def test_manifest_is_json_with_members(harness_store: Store, bootstrap: store.Snapshot) -> None:
    manifest = json.loads((bootstrap.path / store.MANIFEST).read_text())
    assert manifest["members"] == ["base"] and manifest["stage"] == "bootstrap"
