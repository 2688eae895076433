"""Stage bootstrap: the Debian base every machine of the lab is cloned from.

debootstrap of Debian bookworm (minbase plus what a booted, testable machine needs) from
the mirror the host's apt already uses, then the package lists for later stages and an
empty root password for console logins. Published read-only as ``bootstrap/<key>``, with
one member, ``base``.
"""

from __future__ import annotations

import inspect
import os
import sys
import time

from harness import rootfs
from harness.log import step
from harness.stage import snapshot_name, stage_key
from harness.store import Snapshot, Store

NAME = "bootstrap"
MEMBER = "base"
SUITE = "bookworm"
VARIANT = "minbase"
HOSTS = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"
INCLUDE = ("systemd", "systemd-sysv", "dbus", "iproute2", "iputils-ping", "netbase", "procps")


def key() -> str:
    """This stage's key: its source and its package set (it has no parent)."""
    source = inspect.getsource(sys.modules[__name__])
    return stage_key({"source": source, "suite": SUITE, "variant": VARIANT,
                      "include": INCLUDE}, None)


def build(store: Store) -> Snapshot:
    """Build the base root and publish it; nothing is published if any step fails."""
    owner = f"build-{NAME}-{os.getpid()}"
    root = store.work_path(owner, MEMBER)
    try:
        with step(f"{NAME}: build"):
            store.create(root)
            mirror = rootfs.host_mirror(SUITE)
            with step(f"{NAME}: debootstrap {SUITE} ({VARIANT}) from {mirror}"):
                rootfs.debootstrap(root, suite=SUITE, variant=VARIANT, include=INCLUDE,
                                   mirror=mirror)
            with step(f"{NAME}: apt-get update"):
                rootfs.apt_get(root, ["update", "-q"])
            rootfs.run_in_root(root, ["passwd", "--delete", "root"])
            # debootstrap copies these from the host; the lab must not inherit the host's
            # name or resolver. With no /etc/hostname, nspawn's --hostname stands.
            (root / "etc/hostname").unlink(missing_ok=True)
            rootfs.write_file(root, "/etc/hosts", HOSTS)
            rootfs.write_file(root, "/etc/resolv.conf", "")
            with step(f"{NAME}: publish"):
                return store.publish(snapshot_name(NAME, key()), {MEMBER: root},
                                     {"stage": NAME, "key": key(), "suite": SUITE,
                                      "mirror": mirror, "built": time.time()})
    finally:
        store.release(owner)


def ensure(store: Store, rebuild: bool = False) -> Snapshot:
    """The published snapshot for the current key, built first if missing (or if ``rebuild``)."""
    name = snapshot_name(NAME, key())
    with store.lock(NAME):  # another run may be building it: wait, then reuse its result
        found = store.get(name)
        if found is not None and not rebuild:
            return found
        if found is not None:
            store.remove(name)
        return build(store)
