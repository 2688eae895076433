"""harness.machines.treediff: changes between two trees, packed, and replayed on a copy of the first."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from harness.machines import treediff


def tree(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``root``: its kind and content (file text, link target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir", oct(path.stat().st_mode & 0o7777))
        else:
            found[rel] = ("file", path.read_text() + oct(path.stat().st_mode & 0o7777))
    return found


def test_pack_and_apply_turn_a_copy_of_the_old_tree_into_the_new(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "etc/app").mkdir(parents=True)
    (old / "etc/app/conf").write_text("a=1\n")
    (old / "etc/keep").write_text("same\n")
    (old / "var/cache").mkdir(parents=True)
    (old / "var/cache/big").write_text("x" * 1000)
    (old / "link").symlink_to("etc/keep")
    new = tmp_path / "new"
    shutil.copytree(old, new, symlinks=True)
    (new / "etc/app/conf").write_text("a=2\n")          # changed
    (new / "etc/app/secret").write_text("s\n")          # added
    (new / "etc/app/secret").chmod(0o600)
    shutil.rmtree(new / "var/cache")                    # a directory removed
    (new / "link").unlink()
    (new / "link").symlink_to("etc/app/conf")           # a link retargeted
    (new / "etc/keep").chmod(0o640)                     # only its mode changed
    changes = treediff.diff(old, new)
    assert set(changes.changed) == {"etc/app", "etc/app/conf", "etc/app/secret", "etc/keep", "link",
                                    "var"}
    assert changes.removed == ["var/cache"]  # the top-most only
    packed = treediff.pack(changes, new, tmp_path / "changes.tar")
    copy = tmp_path / "copy"
    shutil.copytree(old, copy, symlinks=True)
    treediff.apply(packed, copy)
    assert tree(copy) == tree(new)
    direct = tmp_path / "direct"
    shutil.copytree(old, direct, symlinks=True)
    treediff.copy_changes(changes, new, direct)
    assert tree(direct) == tree(new)


def test_applied_the_copy_equals_the_new_tree_to_the_nanosecond(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "var/log").mkdir(parents=True)
    (old / "var/log/wtmp").write_text("a")
    (old / "etc").mkdir()
    (old / "etc/motd").write_text("hello")
    new = tmp_path / "new"
    shutil.copytree(old, new, symlinks=True)  # times copied to the nanosecond
    (new / "var/log/wtmp").write_text("ab")   # in place: var/log's own time does not move
    (new / "etc/motd").unlink()
    (new / "var/kept").mkdir()
    (new / "var/kept/link").symlink_to("/root/note")
    for i, rel in enumerate(("var/log/wtmp", "var/kept/link", "var/kept")):
        os.utime(new / rel, ns=(1_700_000_000_123_456_789 + i,) * 2, follow_symlinks=False)
    changes = treediff.diff(old, new)
    assert "var/log" not in changes.changed and changes.removed == ["etc/motd"]
    copy = tmp_path / "copy"
    shutil.copytree(old, copy, symlinks=True)
    treediff.apply(treediff.pack(changes, new, tmp_path / "changes.tar"), copy)
    assert treediff.diff(new, copy) == treediff.Changes()  # var/log written into, its time kept


def test_a_changes_tar_that_leads_outside_the_tree_is_refused(tmp_path: Path) -> None:
    import io
    import json
    import tarfile

    import pytest

    from harness.core.errors import HarnessError

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "victim").write_text("keep me")
    for name, removed in (("ok", ["../victim"]), ("../escape", []), ("/etc/abs", [])):
        bad = tmp_path / "bad.tar"
        with tarfile.open(bad, "w") as tar:
            info = tarfile.TarInfo(name)
            tar.addfile(info, io.BytesIO(b""))
            data = json.dumps(removed).encode()
            listed = tarfile.TarInfo(treediff.REMOVED)
            listed.size = len(data)
            tar.addfile(listed, io.BytesIO(data))
        with pytest.raises(HarnessError, match="outside the machine it belongs to: refused"):
            treediff.apply(bad, root)
    assert (tmp_path / "victim").read_text() == "keep me"
