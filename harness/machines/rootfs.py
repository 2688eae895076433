"""Machine roots before they boot: debootstrap, packages, commands, all on the host side.

Downloads happen here, with the host's network, never from a booted lab machine: lab
traffic stays inside the namespaces the harness creates, and no lab route leads to the
host's uplink (the lab's internet is simulated). Every download goes through one host-wide
package cache, bind-mounted as the root's apt archive, so a package is fetched once per
host, ever. The mirror is the one the host's own apt sources already name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.core import proc, settings
from harness.core.errors import HarnessError
from harness.core.names import prep_unit
from harness.machines import nspawn

DEFAULT_CACHE = settings.package_cache()  # HARNESS_CACHE, else /var/cache/harness
# dpkg's --force-unsafe-io: no fsync of every unpacked file. A root being built is thrown
# away whole if anything fails, and btrfs writes what is cached out when the root is
# snapshotted; the fsyncs cost a quarter of an install (bench/README.md, "Package installs").
UNSAFE_IO = ("-o", "Dpkg::Options::=--force-unsafe-io")
_APT_OPTIONS = ["-o", "APT::Keep-Downloaded-Packages=true", "-o", "Dpkg::Use-Pty=0",
                "-o", "Acquire::Retries=3", *UNSAFE_IO]
_APT_INSTALL = ["install", "-y", "--no-install-recommends"]


def debian_mirrors(sources: Iterable[tuple[str, str]], suite: str) -> list[str]:
    """Mirror URIs that serve Debian ``suite`` (main), from (file name, text) of apt source files.

    Reads both one-line (``deb URI SUITE COMPONENTS``) and deb822 (``.sources``) formats.
    """
    found: list[str] = []
    for name, text in sources:
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if ("deb" in fields.get("types", "").split()
                        and suite in fields.get("suites", "").split()
                        and "main" in fields.get("components", "").split()):
                    found += fields.get("uris", "").split()
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(words) >= 4 and words[0] == "deb" and words[2] == suite and "main" in words[3:]:
                    found.append(words[1])
    return list(dict.fromkeys(found))


def host_mirror(suite: str, etc: Path = Path("/etc/apt")) -> str:
    """The Debian mirror the host's apt uses for ``suite``; an error that says what to add if none."""
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list")),
             *sorted((etc / "sources.list.d").glob("*.sources"))]
    texts = [(f.name, f.read_text()) for f in files if f.is_file()]
    mirrors = debian_mirrors(texts, suite)
    if not mirrors:
        raise HarnessError(f"no Debian mirror for '{suite} main' in {etc}/sources.list(.d): add one, "
                           f"e.g. `deb http://deb.debian.org/debian {suite} main`")
    return mirrors[0]


@contextlib.contextmanager
def _cache_lock(cache: Path, shared: bool = False) -> Iterator[Path]:
    """The package cache, held exclusively (apt and debootstrap must not fill it concurrently),
    or ``shared`` by those who only read it."""
    archives = cache / "archives"
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    with open(cache / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield archives


def debootstrap(target: Path, *, suite: str, variant: str, include: Sequence[str],
                mirror: str, cache: Path = DEFAULT_CACHE) -> None:
    """Install a Debian ``suite`` into ``target`` with debootstrap, through the package cache."""
    with _cache_lock(cache) as archives:
        proc.run(["debootstrap", f"--variant={variant}", f"--include={','.join(include)}",
                  f"--cache-dir={archives}", suite, str(target), mirror],
                 timeout=1800)


def run_in_root(root: Path, argv: Sequence[str], *, binds: Sequence[str] = (),
                env: dict[str, str] | None = None, timeout: float = 1800, check: bool = True,
                input: bytes | str | None = None, read_only_binds: Sequence[str] = ()) -> proc.Result:
    """Run ``argv`` (fed ``input``) in the unbooted ``root`` with the host's network
    (systemd-nspawn, no boot); a non-zero exit raises unless not ``check``."""
    # A unique machine name: nspawn keeps per-name runtime state under /run/systemd/nspawn.
    unit = prep_unit(os.getpid(), secrets.token_hex(3))
    setenv = [f"--setenv={k}={v}" for k, v in (env or {}).items()]
    try:
        return proc.run([*nspawn.base_argv(unit, root), "--resolv-conf=copy-host", "--pipe",
                         *[f"--bind={b}" for b in binds], *[f"--bind-ro={b}" for b in read_only_binds],
                         *setenv, "--", *argv],
                        timeout=timeout, check=check, preexec=nspawn.join_cgroup(unit), input=input)
    finally:
        nspawn.forget(unit, root)


def apt_get(root: Path, args: Sequence[str], cache: Path = DEFAULT_CACHE) -> proc.Result:
    """``apt-get ARGS`` in the unbooted ``root``, its archive being the shared package cache."""
    with _cache_lock(cache) as archives:
        return run_in_root(root, ["apt-get", *_APT_OPTIONS, *args],
                           binds=[f"{archives}:/var/cache/apt/archives"],
                           env={"DEBIAN_FRONTEND": "noninteractive"})


def install_packages(root: Path, packages: Sequence[str], cache: Path = DEFAULT_CACHE) -> None:
    """Install ``packages`` (without recommends) into the unbooted ``root``."""
    if packages:
        apt_get(root, [*_APT_INSTALL, *packages], cache)


def install_packages_side_by_side(packages: Mapping[Path, Sequence[str]], cache: Path = DEFAULT_CACHE,
                                  jobs: int | None = None) -> None:
    """Install each unbooted root's ``packages`` (without recommends), ``jobs`` roots at once
    (default: one per core).

    The cache is filled first, one root after another while it is held (``--download-only``);
    then the roots unpack from it side by side, held shared and bound read-only (apt's own
    lock of its archive would queue them). On two cores, two roots' installs take about three
    quarters of their time one after the other (bench/README.md, "Package installs"). An
    interrupt (Ctrl-C, SIGTERM) lets the unpacking under way end, then goes on."""
    wanted = {root: tuple(names) for root, names in packages.items() if names}
    if len(wanted) < 2:
        for root, names in wanted.items():
            install_packages(root, names, cache)
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    with _cache_lock(cache) as archives:
        for root, names in wanted.items():
            run_in_root(root, ["apt-get", *_APT_OPTIONS, *_APT_INSTALL, "--download-only", *names],
                        binds=[f"{archives}:/var/cache/apt/archives"], env=env)
    with _cache_lock(cache, shared=True) as archives, \
            ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        unpacking = [pool.submit(run_in_root, root, ["apt-get", *_APT_OPTIONS, "-o", "Debug::NoLocking=true",
                                                     *_APT_INSTALL, *names],
                                 read_only_binds=[f"{archives}:/var/cache/apt/archives"], env=env)
                     for root, names in wanted.items()]
        for done in unpacking:  # every one ends before the block does; the first failure is raised
            done.result()


def write_file(root: Path, path: str, content: str, mode: int = 0o644) -> Path:
    """Write ``content`` to absolute ``path`` inside ``root``, creating its directories."""
    if not path.startswith("/"):
        raise HarnessError(f"path {path!r} inside a machine must be absolute")
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    target.chmod(mode)
    return target


MACHINE_ID = "/etc/machine-id"
# systemd's default for the container side of nspawn's own veth: DHCP on any interface named
# host0. It sorts before a project's own file for host0 unless that file's name sorts lower
# (lan.network loses to it); in a lab, the project's files or the lab configure interfaces.
CONTAINER_DEFAULT = "/etc/systemd/network/80-container-host0.network"


def make_own(root: Path) -> None:
    """Make ``root``, cloned from the base image or a tree, a machine of its own: a new random
    ``/etc/machine-id`` (every clone had the base image's; the snapshot that stores the root
    keeps the new one), and systemd's `CONTAINER_DEFAULT` masked, so that host0 is configured
    by the project's own ``.network`` files whatever their names, or by none."""
    write_file(root, MACHINE_ID, secrets.token_hex(16) + "\n", 0o444)
    mask = root / CONTAINER_DEFAULT.lstrip("/")
    mask.parent.mkdir(parents=True, exist_ok=True)
    mask.unlink(missing_ok=True)
    mask.symlink_to("/dev/null")


def shared_machine_id(tree: Path, machine: str) -> str:
    """The machine id of ``machine``, which boots ``tree`` read-only with others: derived from
    the tree's own id and its name, so it is the same at every boot of one snapshot and
    differs from every other machine's."""
    try:
        tree_id = (tree / MACHINE_ID.lstrip("/")).read_text().strip()
    except FileNotFoundError:
        tree_id = ""
    return hashlib.sha256(f"{tree_id}\0{machine}".encode()).hexdigest()[:32]


def systemctl(root: Path, *args: str) -> None:
    """``systemctl --root=ROOT ARGS`` on the host: enable, disable or mask units of an unbooted root."""
    proc.run(["systemctl", f"--root={root}", "--quiet", *args])
