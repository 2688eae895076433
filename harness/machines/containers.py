"""Rootless podman and buildah inside a lab machine, for unprivileged users of it.

A stage declares ``containers={"box": ("alice",)}``: the harness installs the container
tools into ``box`` before it boots, makes ``alice`` (if the stage has not) with
subordinate id ranges of her own and lingering (her user manager starts at boot, nobody
logged in), writes the machine's ``containers.conf`` and her ``storage.conf``, and boots
``box`` with the nspawn flags the tools need. Everything here goes into the stage's key
(`definition`): editing this module rebuilds the stages that declare containers, no other.

Why each setting (seen on the project's host, Debian 12's podman 4.3 in a systemd-nspawn 252
machine, hybrid cgroups; docs/containers.md has the commands and what they printed):

- ``SYSTEMD_NSPAWN_API_VFS_WRITABLE=network`` (`NSPAWN_ENV`): nspawn mounts ``/proc/sys``
  read-only, and podman sets sysctls in every network namespace it makes (slirp4netns's:
  "failed to set net.ipv6.conf.default.accept_dad sysctl: ... read-only file system"). The
  machine's /proc/sys/net is its own network namespace's; the rest stays read-only.
- ``--bind=/dev/fuse``: fuse-overlayfs, the users' storage driver (``storage.conf``).
- ``keyring = false``: nspawn's seccomp filter refuses ``keyctl``; a container started by the
  user's systemd units fails ("crun: create keyring `ID`: Operation not permitted: OCI
  permission denied"; run from a login shell it starts). The filter stays as nspawn sets it.
- ``cgroup_manager = "cgroupfs"``: the host has cgroups v1 (hybrid), where rootless
  containers get no cgroup of their own: podman says so and ignores ``--memory`` and
  ``--cpus`` (exit 0!). Scenarios must not rely on limits; the page says so.
- ``events_logger = "file"``: podman's events in the user's runtime directory, not journald.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError
from harness.machines import rootfs

PACKAGES = ("podman", "buildah", "crun", "uidmap", "fuse-overlayfs", "slirp4netns", "catatonit",
            "libpam-systemd", "dbus-user-session")
NSPAWN_ARGS = ("--bind=/dev/fuse",)
# The device nodes a machine's rootless containers open, and why. nspawn binds the host's
# /dev/fuse and copies /dev/net/tun with the host's mode, so a machine's users open them only
# if the host's let everyone, as udev's default rules make them (50-udev-default.rules).
NODES = (("fuse", "fuse-overlayfs, the users' storage driver"),
         ("net/tun", "slirp4netns, the containers' network"))
NODE_MODE = 0o666
# /proc/sys/net writable: it is the machine's own network namespace's (slirp4netns sets
# net.ipv6.conf.default.accept_dad in the user's); the rest of /proc/sys stays read-only.
NSPAWN_ENV = {"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}
SUBID_FIRST = 200_000  # the first user's range; each user gets SUBID_COUNT ids after the last
SUBID_COUNT = 65_536
CONTAINERS_CONF = """\
# written by the harness (harness/machines/containers.py): why each line, in its docstring
[containers]
keyring = false

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"
"""
STORAGE_CONF = """\
# written by the harness (harness/machines/containers.py)
[storage]
driver = "overlay"

[storage.options.overlay]
mount_program = "/usr/bin/fuse-overlayfs"
"""
LINGER = "/var/lib/systemd/linger"


def validate(containers: Mapping[str, Sequence[str]], where: str) -> None:
    """Refuse a user name that cannot be one, or a machine given no users (one line each)."""
    for machine, users in containers.items():
        if not users:
            raise UsageError(f"{where}containers of {machine}: name the users that run them, "
                             f"e.g. containers={{{machine!r}: ('apps',)}}")
        bad = [u for u in users if not u.isascii() or not u.replace("-", "").replace("_", "").isalnum()
               or u[0].isdigit() or u == "root"]
        if bad:
            raise UsageError(f"{where}containers of {machine}: {', '.join(map(repr, bad))} cannot be an "
                             "unprivileged user's name (letters, digits, - and _, not root)")


def unmet(stages: Sequence[Any]) -> str | None:
    """What the last of ``stages`` (`harness.model.stage.Stage`s, in order) needs and none of them
    declares: a hook's ``needs_containers`` (machine, user), as a `harness.engine.build.images.Image` has."""
    declared = {(m, u) for stage in stages for m, users in stage.containers.items() for u in users}
    for hook in (*stages[-1].steps, *stages[-1].ready):
        need = getattr(hook, "needs_containers", None)
        if need is not None and tuple(need) not in declared:
            machine, user = need
            return (f"{getattr(hook, 'title', hook)} needs containers for {user} on {machine}, which "
                    f"neither it nor an earlier stage declares: add containers={{{machine!r}: ({user!r},)}} "
                    f"to the stage that adds {machine}")
    return None


def subid_ranges(users: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Each user's subordinate id range (first, count), one after the other, in order."""
    return {user: (SUBID_FIRST + i * SUBID_COUNT, SUBID_COUNT) for i, user in enumerate(users)}


def definition(users: Sequence[str]) -> dict[str, Any]:
    """What a machine's containers add to its stage's key: everything `install` writes."""
    return {"users": list(users), "packages": list(PACKAGES), "nspawn": list(NSPAWN_ARGS), "env": NSPAWN_ENV,
            "containers.conf": CONTAINERS_CONF, "storage.conf": STORAGE_CONF,
            "subids": {u: list(r) for u, r in subid_ranges(users).items()}}


def install(root: Path, users: Sequence[str], *, packages: bool = True) -> None:
    """Make rootless containers work for ``users`` in the unbooted ``root``: the tools (unless
    not ``packages``: the caller installed `PACKAGES`), the users (made if missing), their id
    ranges, lingering, and the configuration files."""
    if packages:
        rootfs.install_packages(root, PACKAGES)
    rootfs.write_file(root, "/etc/containers/containers.conf", CONTAINERS_CONF)
    ranges = subid_ranges(users)
    for user in users:
        if rootfs.run_in_root(root, ["id", "-u", user], check=False).status != 0:
            rootfs.run_in_root(root, ["useradd", "--create-home", "--shell", "/bin/bash",
                                      "--user-group", user])
    for name in ("subuid", "subgid"):
        path = root / "etc" / name
        kept = [line for line in (path.read_text().splitlines() if path.exists() else [])
                if line.split(":")[0] not in ranges]
        path.write_text("".join(f"{line}\n" for line in kept)
                        + "".join(f"{u}:{first}:{count}\n" for u, (first, count) in ranges.items()))
    for user in users:
        home = rootfs.run_in_root(root, ["sh", "-c", f"getent passwd {shlex.quote(user)} | cut -d: -f6"]
                                  ).stdout.strip()
        rootfs.write_file(root, f"{home}/.config/containers/storage.conf", STORAGE_CONF)
        rootfs.run_in_root(root, ["chown", "-R", f"{user}:{user}", f"{home}/.config"])
        rootfs.write_file(root, f"{LINGER}/{user}", "")


def node_mode_problem(node: str, mode: int) -> str | None:
    """What is wrong with a ``/dev/<node>`` of ``mode`` (its ``st_mode``), or None: a machine
    gets the host's node or a copy of it, so its users open it only if the host's lets
    everyone read and write it (a host without udev leaves it 0600)."""
    if mode & NODE_MODE == NODE_MODE:
        return None
    why = dict(NODES)[node]
    return (f"/dev/{node} is mode {mode & 0o777:04o}: a machine's users cannot open it for {why} "
            f"(`harness setup-host` makes it {NODE_MODE:04o}, as udev's default rules do)")


def host_problems(dev: Path = Path("/dev"), sysctl: Path = Path("/proc/sys")) -> list[str]:
    """What this host lacks for machines with containers, one actionable line each (none: fine).

    nspawn binds the host's ``/dev/fuse`` (fuse-overlayfs) and copies ``/dev/net/tun``
    (slirp4netns) into a machine, modes and all; the users' containers need user namespaces."""
    problems = []
    for node, why in NODES:
        if not (dev / node).is_char_device():
            problems.append(f"/dev/{node} is missing ({why}): load the kernel's "
                            f"{node.split('/')[-1]} module or run on a kernel that has it")
        elif said := node_mode_problem(node, (dev / node).stat().st_mode):
            problems.append(said)
    for key, least in (("user/max_user_namespaces", 1), ("kernel/unprivileged_userns_clone", 1)):
        path = sysctl / key
        if path.exists() and int(path.read_text().split()[0]) < least:
            problems.append(f"sysctl {key.replace('/', '.')} is {path.read_text().strip()}: rootless "
                            f"containers need user namespaces (`sysctl -w {key.replace('/', '.')}=15000`)")
    return problems


def as_user(user: str, command: str) -> str:
    """Shell command running ``command`` as ``user`` in a login shell, with her runtime
    directory (her user manager's, which lingering starts at boot) so podman finds its state."""
    inner = f'export XDG_RUNTIME_DIR=/run/user/$(id -u); cd; {command}'
    return f"runuser -l {shlex.quote(user)} -c {shlex.quote(inner)}"
