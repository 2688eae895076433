"""harness.machines.rootfs: mirror discovery (no root), then packages into an unbooted root via the cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.machines import rootfs
from harness.machines.store import Store

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""

ONE_LINE = """\
# deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib
deb http://mirror.example/debian bookworm-updates main
deb-src http://src.example/debian bookworm main
deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main
"""


def test_deb822_sources() -> None:
    assert rootfs.debian_mirrors([("debian.sources", DEB822)], "bookworm") == [
        "http://deb.debian.org/debian"]


def test_one_line_sources_skip_comments_sources_and_other_suites() -> None:
    assert rootfs.debian_mirrors([("sources.list", ONE_LINE)], "bookworm") == [
        "http://mirror.example/debian"]


def test_no_mirror_says_what_to_add(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(ONE_LINE.replace("bookworm main", "trixie main"))
    with pytest.raises(HarnessError, match=r"no Debian mirror for 'bookworm main'.*add one, e\.g\. "
                                           r"`deb http://deb.debian.org/debian bookworm main`"):
        rootfs.host_mirror("bookworm", tmp_path)


def test_write_file_refuses_relative_paths(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="must be absolute"):
        rootfs.write_file(tmp_path, "etc/x", "")
    assert rootfs.write_file(tmp_path, "/etc/x/y", "z", 0o600).read_text() == "z"


@pytest.mark.integration
def test_a_package_is_downloaded_once_per_host(harness_store: Store, base: Path) -> None:
    owner = f"test-cache-{os.getpid()}"
    try:
        first = harness_store.clone(base, harness_store.work_path(owner, "one"))
        second = harness_store.clone(base, harness_store.work_path(owner, "two"))
        rootfs.install_packages(first, ["hello"])
        assert list((rootfs.DEFAULT_CACHE / "archives").glob("hello_*.deb"))
        assert (first / "usr/bin/hello").exists()
        again = rootfs.apt_get(second, ["install", "-y", "--no-install-recommends", "hello"])
        assert "Need to get 0 B/" in again.stdout  # served from the cache: nothing fetched
        assert rootfs.run_in_root(second, ["hello"]).stdout == "Hello, world!\n"
    finally:
        harness_store.release(owner)


@pytest.mark.integration
def test_roots_install_side_by_side_from_the_cache_filled_first(harness_store: Store, base: Path) -> None:
    owner = f"test-side-{os.getpid()}"
    try:
        one = harness_store.clone(base, harness_store.work_path(owner, "one"))
        two = harness_store.clone(base, harness_store.work_path(owner, "two"))
        rootfs.install_packages_side_by_side({one: ["hello"], two: ["hello", "figlet"]})
        assert rootfs.run_in_root(one, ["hello"]).stdout == "Hello, world!\n"
        assert "FIGlet" in rootfs.run_in_root(two, ["figlet", "-v"]).stdout
        assert not (one / "usr/bin/figlet").exists()
        assert list((rootfs.DEFAULT_CACHE / "archives").glob("figlet_*.deb"))  # fetched before unpacking
        with pytest.raises(HarnessError, match="no-such-package"):  # refused before anything unpacks
            rootfs.install_packages_side_by_side({one: ["no-such-package"], two: ["hello"]})
    finally:
        harness_store.release(owner)


def test_a_root_of_its_own_gets_a_new_machine_id_and_no_container_default(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        rootfs.write_file(root, "/etc/machine-id", "0" * 31 + "1\n", 0o444)  # the base image's, cloned
        rootfs.make_own(root)
    ids = [(root / "etc/machine-id").read_text() for root in (one, two)]
    assert ids[0] != ids[1] and all(len(i) == 33 and i.endswith("\n") for i in ids)
    mask = one / "etc/systemd/network/80-container-host0.network"
    assert os.readlink(mask) == "/dev/null"
    rootfs.make_own(one)  # again (a root of its own made from another's): no error
    assert (one / "etc/machine-id").read_text() != ids[0]


def test_machines_sharing_a_tree_get_ids_of_their_own_stable_for_the_tree(tmp_path: Path) -> None:
    rootfs.write_file(tmp_path, "/etc/machine-id", "ab" * 16 + "\n")
    seat1, seat2 = rootfs.shared_machine_id(tmp_path, "seat1"), rootfs.shared_machine_id(tmp_path, "seat2")
    assert seat1 != seat2 and len(seat1) == 32 and int(seat1, 16)
    assert rootfs.shared_machine_id(tmp_path, "seat1") == seat1
    rootfs.write_file(tmp_path, "/etc/machine-id", "cd" * 16 + "\n")  # another build of the tree
    assert rootfs.shared_machine_id(tmp_path, "seat1") != seat1
