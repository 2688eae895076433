"""A Debian base stage: the first stage of a pipeline whose machines run Debian.

``debian.base_stage()`` debootstraps Debian (minbase, plus what a booted, testable machine
needs) from the mirror the host's apt already uses, through the shared package cache, runs
``apt-get update`` so that later stages' ``packages`` install, and leaves an empty root
password for console logins. Every pipeline that asks for the same suite and packages gets
the same key, so projects on one host share one base image.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core.log import step
from harness.machines import rootfs
from harness.model.stage import Stage

SUITE = "bookworm"
VARIANT = "minbase"
INCLUDE = ("systemd", "systemd-sysv", "dbus", "iproute2", "iputils-ping", "netbase", "procps")
# What a lab machine of this base does not need (a stage's ``lean``, see `harness.machines.lean`): timers
# of jobs days away, units and generators for hardware, encrypted disks, hibernation, the
# kernel command line, password prompts and gettys on virtual terminals a container has not.
# Not here, though they would save a little: journal flush (a kept failure carries the
# journal in its root), utmp (`last`), modprobe@ (mounts require it), the console's getty
# (console logins), hostnamed and polkit (networkd sets a DHCP hostname through them).
LEAN = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
    "fstrim.timer", "logrotate.timer", "man-db.timer", "systemd-tmpfiles-clean.timer",
    "e2scrub_reap.service", "systemd-pstore.service", "systemd-network-generator.service",
    "dev-hugepages.mount", "systemd-ask-password-console.path", "systemd-ask-password-wall.path",
    "getty@tty1.service", "getty-static.service",
    "systemd-cryptsetup-generator", "systemd-veritysetup-generator", "systemd-integritysetup-generator",
    "systemd-gpt-auto-generator", "systemd-hibernate-resume-generator", "systemd-system-update-generator",
    "systemd-debug-generator", "systemd-run-generator", "systemd-rc-local-generator",
)
HOSTS = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"


def base_stage(name: str = "bootstrap", *, suite: str = SUITE, include: Sequence[str] = (),
               lean: Sequence[str] = ()) -> Stage:
    """The base stage ``name``: Debian ``suite`` with `INCLUDE` and ``include`` installed, and
    the units and generators of ``lean`` masked (`LEAN` is what a lab machine can do without)."""
    packages = (*INCLUDE, *(p for p in include if p not in INCLUDE))
    caller = sys._getframe(1)
    return Stage(name, base=functools.partial(fill, suite=suite, include=packages),
                 definition={"suite": suite, "variant": VARIANT, "include": packages},
                 modules={__name__: inspect.getsource(sys.modules[__name__])}, lean=tuple(lean),
                 origin=f"{caller.f_code.co_filename}:{caller.f_lineno}")


def fill(root: Path, *, suite: str = SUITE, include: Sequence[str] = INCLUDE) -> dict[str, Any]:
    """Fill the empty subvolume ``root`` with the base system; return facts for the manifest."""
    mirror = rootfs.host_mirror(suite)
    with step(f"bootstrap: debootstrap {suite} ({VARIANT}) from {mirror}"):
        rootfs.debootstrap(root, suite=suite, variant=VARIANT, include=include, mirror=mirror)
    with step("bootstrap: apt-get update"):
        rootfs.apt_get(root, ["update", "-q"])
    rootfs.run_in_root(root, ["passwd", "--delete", "root"])
    # debootstrap copies these from the host; the lab must not inherit the host's name or
    # resolver. With no /etc/hostname, nspawn's --hostname stands.
    (root / "etc/hostname").unlink(missing_ok=True)
    rootfs.write_file(root, "/etc/hosts", HOSTS)
    rootfs.write_file(root, "/etc/resolv.conf", "")
    return {"suite": suite, "mirror": mirror}
