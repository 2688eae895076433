"""stages/bootstrap.py, the harness's Debian base stage: its key (no root) and the base image it publishes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine.build import debian
from harness.machines.store import Snapshot
from harness.model.pipeline import Pipeline
from stages import PIPELINE


def test_key_is_stable_and_follows_the_definition() -> None:
    key = PIPELINE.keys()["bootstrap"]
    assert key == PIPELINE.keys()["bootstrap"] and len(key) == 16
    changed = debian.base_stage("bootstrap", include=("nginx",))
    assert Pipeline([changed], {}).keys()["bootstrap"] != key


@pytest.mark.integration
def test_base_is_a_read_only_bookworm_published_under_its_key(bootstrap: Snapshot) -> None:
    assert bootstrap.name == f"bootstrap/{PIPELINE.keys()['bootstrap']}"
    base = bootstrap.member("base")
    assert (base / "etc/debian_version").read_text().startswith("12.")
    assert _read_only(base)


def _read_only(path: Path) -> bool:
    try:
        (path / ".probe").write_text("x")
    except OSError:
        return True
    (path / ".probe").unlink()
    return False


@pytest.mark.integration
def test_base_does_not_inherit_the_host_identity(bootstrap: Snapshot) -> None:
    base = bootstrap.member("base")
    assert not (base / "etc/hostname").exists()
    assert (base / "etc/resolv.conf").read_text() == ""
    assert (base / "etc/hosts").read_text() == debian.HOSTS


@pytest.mark.integration
def test_base_has_packages_lists_and_console_login(bootstrap: Snapshot) -> None:
    base = bootstrap.member("base")
    status = (base / "var/lib/dpkg/status").read_text()
    for package in debian.INCLUDE:
        assert f"Package: {package}\n" in status
    assert list((base / "var/lib/apt/lists").glob("*_Packages*"))
    root = next(line for line in (base / "etc/shadow").read_text().splitlines()
                if line.startswith("root:"))
    assert root.split(":")[1] == ""  # empty password: console login as root
