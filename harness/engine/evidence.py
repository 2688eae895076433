"""What a failing test leaves behind: the lab's state at the moment it failed.

A `Capture` records every frame crossing the lab's switch while a test runs (one pcap
per segment). When the test fails, `collect()` writes, into one directory, each
machine's journal since the test began, its addresses, routes and nftables ruleset,
whatever the stages declared as evidence (the DHCP leases...), the switch's fault
rules and impaired links, the pcaps and the topology as an SVG. The plugin attaches these files to the
allure report and ``--keep-failed`` ships them with the lab's snapshot.
"""

from __future__ import annotations

import contextlib
import platform
import re
import signal
import struct
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from harness.core import proc
from harness.core.errors import CheckFailed, HarnessError, present
from harness.machines import splice as links
from harness.machines.lab import Lab
from harness.machines.netlink import NETNS_DIR
from harness.machines.network import LabNetwork
from harness.machines.store import Store
from harness.model.pipeline import Pipeline

# Per machine: what each attachment holds and the command that produces it.
MACHINE_EVIDENCE = {
    "ip-addr": "ip addr",
    "ip-route": "ip route; ip -6 route",
    "ip-neigh": "ip neigh",
    "nftables": "command -v nft >/dev/null && nft list ruleset",
}
TCPDUMP_READY = 10.0


@dataclass(frozen=True)
class Evidence:
    """One file of evidence: the title it is attached under and where it is."""

    title: str
    path: Path


class Capture:
    """tcpdump on the lab's switch, from `start()` to `stop()`: one pcap per segment.

    Each segment's bridge is captured, promiscuous (tcpdump's default): a bridge in that
    mode passes a copy of every frame it switches up to its own device, unicast between
    two ports included, before the forward hook where injected faults drop frames. So one
    tcpdump per segment records what one per switch port did (254 of them, each awaited,
    took minutes for a room), each frame once: ``-Q in`` leaves out what the switch's own
    stack sends. ``--immediate-mode`` matters: without it the kernel hands packets over in
    blocks up to a second late, and stopping loses the last ones.
    """

    def __init__(self, network: LabNetwork, directory: Path) -> None:
        self.network = network
        self.directory = directory
        self._pcaps: dict[str, Path] = {}  # segment -> what its tcpdump writes
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # segment -> its tcpdump
        self._stack = contextlib.ExitStack()

    def start(self) -> Capture:
        """Start capturing; returns once every tcpdump is listening."""
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            for segment in self.network.segments:
                pcap = self.directory / f"{segment}.bridge.pcap"
                argv = ["nsenter", f"--net={NETNS_DIR / self.network.switch}", "tcpdump", "-i", segment,
                        "-Q", "in", "-n", "--immediate-mode", "-U", "-s", "0", "-w", str(pcap)]
                child = self._stack.enter_context(proc.spawn(argv, stdout=subprocess.DEVNULL,
                                                             stderr=subprocess.PIPE, grace=5))
                self._children[segment] = child
                self._pcaps[segment] = pcap
            for segment, child in self._children.items():
                _await_listening(child, segment)
        except BaseException:
            self._stack.close()
            raise
        return self

    def since(self, start: float | None, directory: Path) -> list[Evidence]:
        """One pcap per segment in ``directory`` of what was captured from ``start`` (epoch
        seconds; None: from the beginning) until now, the capture going on: a test's share of
        its lab's capture.

        A lab shared by many tests is captured once for all of them (a capture started and
        stopped per test cost every one of hundreds of tests: bench/README.md, "A lab in a
        blink"); each failing test takes its window."""
        directory.mkdir(parents=True, exist_ok=True)
        found = []
        for segment, pcap in self._pcaps.items():
            cut = directory / f"{segment}.pcap"
            merge_pcaps([pcap] if pcap.exists() else [], cut, since=start)
            found.append(Evidence(f"pcap {segment}", cut))
        return found

    def stop(self) -> list[Evidence]:
        """Stop capturing; return one merged pcap per segment (idempotent: later calls return [])."""
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGINT)  # tcpdump writes what it holds and exits
        for child in self._children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        self._stack.close()
        self._children.clear()
        found = self.since(None, self.directory)
        self._pcaps.clear()
        return found


_PCAP_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")


def merge_pcaps(sources: Sequence[Path], target: Path, since: float | None = None) -> None:
    """Merge pcap files of one link type into ``target``, records in time order (those from
    ``since``, epoch seconds, if given).

    Records cut short (a capture stopped mid-write) are dropped. With no source, ``target``
    holds an empty capture: a header and no packet.
    """
    header = _PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)  # Ethernet
    records: list[tuple[int, int, int, bytes]] = []
    for order, source in enumerate(sources):
        data = source.read_bytes()
        if len(data) < _PCAP_HEADER.size or _PCAP_HEADER.unpack_from(data)[0] != 0xA1B2C3D4:
            continue
        header = data[:_PCAP_HEADER.size]
        offset = _PCAP_HEADER.size
        while offset + _RECORD_HEADER.size <= len(data):
            seconds, micros, length, _ = _RECORD_HEADER.unpack_from(data, offset)
            end = offset + _RECORD_HEADER.size + length
            if end > len(data):
                break
            if since is None or seconds + micros / 1e6 >= since:
                records.append((seconds, micros, order, data[offset:end]))
            offset = end
    records.sort(key=lambda r: r[:3])
    target.write_bytes(header + b"".join(r[3] for r in records))


def _await_listening(child: subprocess.Popen[bytes], segment: str) -> None:
    """Wait until tcpdump says it is capturing (it prints ``listening on`` once it is)."""
    stderr = present(child.stderr, "tcpdump's errors")
    seen = b""
    deadline = time.monotonic() + TCPDUMP_READY
    fd = stderr.fileno()
    while b"listening on" not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or child.poll() is not None:
            raise HarnessError(f"tcpdump on segment {segment}'s bridge did not start capturing within "
                               f"{TCPDUMP_READY:g}s: {seen.decode(errors='replace').strip()}")
        if proc.readable(fd, left):
            chunk = stderr.read1(4096)  # type: ignore[attr-defined]
            seen += chunk


def safe_name(text: str) -> str:
    """``text`` as a file or snapshot name part: lowercase ``[a-z0-9._-]``, runs squeezed."""
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "x"


def _write(directory: Path, name: str, content: str) -> Path:
    path = directory / name
    path.write_text(content)
    return path


def collect(lab: Lab, directory: Path, *, since: float,
            declared: Mapping[str, Mapping[str, str]] | None = None) -> list[Evidence]:
    """Write the evidence of ``lab`` into ``directory`` and return it (empty outputs omitted).

    ``declared``: per machine, more evidence as ``{title: shell command}`` (the stages'
    own, e.g. the DHCP leases). A machine that cannot answer gets the error as its evidence.
    """
    directory.mkdir(parents=True, exist_ok=True)
    found: list[Evidence] = []
    addresses: dict[str, str] = {}
    for name, machine in lab.machines.items():
        commands = {"journal": None, **MACHINE_EVIDENCE, **(declared or {}).get(name, {})}
        for title, command in commands.items():
            try:
                if command is None:
                    text = machine.journal(since=since)
                else:
                    text = machine.run(command, timeout=30).stdout
            except (HarnessError, CheckFailed) as exc:  # journalctl's failure too
                text = f"could not run on {name}: {exc}\n"
            if title == "ip-addr":
                addresses[name] = text
            if text.strip() and text.strip() != "-- No entries --":
                file = _write(directory, f"{name}.{safe_name(title)}.txt", text)
                found.append(Evidence(f"{name}: {title}", file))
    faults = proc.run(["nsenter", f"--net={NETNS_DIR / lab.network.switch}", "nft", "list",
                       "ruleset"], check=False).stdout
    if faults.strip():
        found.append(Evidence("switch: fault rules", _write(directory, "switch.nftables.txt", faults)))
    impaired = links.describe(lab.id)  # the links that misbehaved on purpose when it failed
    if impaired:
        file = _write(directory, "switch.impairments.txt", impaired)
        found.append(Evidence("switch: impaired links", file))
    dot = _write(directory, "topology.dot", topology_dot(lab, addresses))
    svg = directory / "topology.svg"
    rendered = proc.run(["dot", "-Tsvg", "-o", str(svg), str(dot)], check=False)
    found.append(Evidence("topology", svg if rendered.status == 0 else dot))
    return found


_INET = re.compile(r"^\s+inet6? (\S+)", re.M)


def topology_dot(lab: Lab, ip_addr: Mapping[str, str]) -> str:
    """The lab as it is: segments, machines and each interface with the addresses it holds now
    (``ip_addr``: per machine, the output of ``ip addr``)."""
    lines = ["graph lab {", '  graph [rankdir=LR, fontname="sans"];',
             '  node [fontname="sans", fontsize=11]; edge [fontname="sans", fontsize=9];']
    for segment in lab.network.segments:
        lines.append(f'  "{segment}" [shape=box, style="rounded,filled", fillcolor="#e8f0fe"];')
    for name in lab.machines:
        lines.append(f'  "{name}" [shape=box];')
    for iface in lab.network.interfaces:
        held = _addresses_of(ip_addr.get(iface.machine, ""), iface.name)
        label = "\\n".join([iface.name, *[a for a in held if not a.startswith("fe80:")]])
        lines.append(f'  "{iface.machine}" -- "{iface.segment}" [label="{label}"];')
    return "\n".join([*lines, "}"]) + "\n"


def _addresses_of(ip_addr: str, ifname: str) -> list[str]:
    blocks = re.split(r"^\d+: ", ip_addr, flags=re.M)
    for block in blocks:
        if block.split("@")[0].split(":")[0] == ifname:
            return _INET.findall(block)
    return []


def dpkg_versions(root: Path, packages: Sequence[str]) -> dict[str, str]:
    """Installed versions of ``packages`` in the Debian root ``root`` (from its dpkg status)."""
    try:
        status = (root / "var/lib/dpkg/status").read_text()
    except OSError:
        return {}
    versions = {}
    for entry in status.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", entry, re.M))
        if fields.get("Package") in packages and "installed" in fields.get("Status", ""):
            versions[fields["Package"]] = fields.get("Version", "?")
    return versions


HARNESS_PACKAGES = ("harness", "pytest", "pytest-xdist", "pytest-testinfra", "pyroute2",
                    "allure-pytest", "pexpect")


def environment(pipeline: Pipeline | None, store: Store | None) -> dict[str, str]:
    """What a report's reader needs to reproduce a run: host, tool versions, stage keys and the
    versions of every package the stages install (read from the last stage's snapshot)."""
    props = {"host.kernel": platform.release(), "host.python": platform.python_version()}
    nspawn = proc.run(["systemd-nspawn", "--version"], check=False).stdout.splitlines()
    props["host.systemd"] = nspawn[0] if nspawn else "not installed"
    for package in HARNESS_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            props[f"python.{package}"] = metadata.version(package)
    if pipeline is None:
        return props
    props.update({f"stage.{name}": key for name, key in pipeline.keys().items()})
    snapshot = None
    for name in reversed(pipeline.names):  # the furthest stage this store holds, as keyed now
        snapshot = store.get(pipeline.ref(name)) if store else None
        if snapshot is not None:
            break
    if snapshot is not None:
        base = snapshot.members[0]
        props.update({f"lab.{base}.{p}": v for p, v in
                      dpkg_versions(snapshot.path / base, ("systemd", "base-files")).items()})
        for stage in pipeline.stages:
            for member, packages in stage.packages.items():
                if member in snapshot.members:
                    props.update({f"lab.{member}.{p}": v for p, v in
                                  dpkg_versions(snapshot.path / member, packages).items()})
    return props
