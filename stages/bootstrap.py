"""Stage bootstrap: the Debian base every machine of the lab is cloned from.

debootstrap of Debian bookworm (minbase plus what a booted, testable machine needs) from
the mirror the host's apt already uses, then the package lists for later stages and an
empty root password for console logins. Published read-only as ``bootstrap/<key>``, with
one member, ``base``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import rootfs
from harness.log import step
from harness.stage import Stage

SUITE = "bookworm"
VARIANT = "minbase"
INCLUDE = ("systemd", "systemd-sysv", "dbus", "iproute2", "iputils-ping", "netbase", "procps")
HOSTS = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"


def debian_base(root: Path) -> dict[str, Any]:
    """Fill the empty subvolume ``root`` with the base system; return facts for the manifest."""
    mirror = rootfs.host_mirror(SUITE)
    with step(f"bootstrap: debootstrap {SUITE} ({VARIANT}) from {mirror}"):
        rootfs.debootstrap(root, suite=SUITE, variant=VARIANT, include=INCLUDE, mirror=mirror)
    with step("bootstrap: apt-get update"):
        rootfs.apt_get(root, ["update", "-q"])
    rootfs.run_in_root(root, ["passwd", "--delete", "root"])
    # debootstrap copies these from the host; the lab must not inherit the host's name or
    # resolver. With no /etc/hostname, nspawn's --hostname stands.
    (root / "etc/hostname").unlink(missing_ok=True)
    rootfs.write_file(root, "/etc/hosts", HOSTS)
    rootfs.write_file(root, "/etc/resolv.conf", "")
    return {"suite": SUITE, "mirror": mirror}


STAGE = Stage.here("bootstrap", base=debian_base,
                   definition={"suite": SUITE, "variant": VARIANT, "include": INCLUDE})
