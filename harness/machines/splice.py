"""Impaired links: a relay spliced between a machine's veth and its bridge, and taken out again.

`apply` takes each switch port of a machine (or of every machine of a segment) off its
bridge, renames it ``imp<digest>m``, and puts in its place, under its name, one end of a new
veth pair whose other end (``imp<digest>r``) the relay process (`harness.machines.relay`) writes to.
The bridge port keeps its name, so the lab's fault rules (`LabNetwork.partition`, `drop`),
captures and evidence go on naming it. `heal` stops the relay by its pid, waits for it and
reaps it when it is this process's child, and puts the machine's own port back.

What is impaired is recorded in ``/run/harness/impair/<lab>.json`` (target, settings, ports,
the relay's pid and start time): `harness impair` on a lab started with `harness up` and the
lab's own process see the same links, and a failing test's evidence lists them. Everything is
found from the kernel's state (the bridges of the switch namespace, the veths of a machine's),
so a caller needs only the lab's id.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pyroute2 import netns

from harness.core import proc
from harness.core.errors import HarnessError, UsageError
from harness.core.links import port_name
from harness.core.names import LabName
from harness.machines.impair import Impairment
from harness.machines.netlink import NETNS_DIR
from harness.machines.netlink import index as _index
from harness.machines.netlink import namespace as _ns

STATE_DIR = Path("/run/harness/impair")
READY = 15.0  # seconds a relay may take to start (Python's own start on a busy host)
STOP = 10.0


def state_file(lab_id: str) -> Path:
    """Where lab ``lab_id``'s impairments are recorded."""
    return STATE_DIR / f"{lab_id}.json"


def active(lab_id: str) -> list[dict[str, Any]]:
    """The impairments in force on lab ``lab_id``: ``target``, ``settings``, ``ports``, ``pid``."""
    try:
        return list(json.loads(state_file(lab_id).read_text()))
    except FileNotFoundError:
        return []


def describe(lab_id: str) -> str:
    """One line per impaired target (empty when none), for evidence and `harness impair`."""
    return "".join(f"{e['target']} ({', '.join(p['port'] for p in e['ports'])}): "
                   f"{Impairment.from_dict(e['settings']).describe()}; relay pid {e['pid']}\n"
                   for e in active(lab_id))


def machine_side(lab_id: str, port: str) -> list[str]:
    """The name the machine's end of ``port`` has while its link is impaired (none if not)."""
    return [p["machine_side"] for e in active(lab_id) for p in e["ports"] if p["port"] == port]


def _save(lab_id: str, entries: list[dict[str, Any]]) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    if not entries:
        state_file(lab_id).unlink(missing_ok=True)
        return
    temporary = state_file(lab_id).with_suffix(".tmp")
    temporary.write_text(json.dumps(entries, indent=1))
    temporary.replace(state_file(lab_id))


def _names(port: str) -> tuple[str, str, str]:
    """The machine side, relay side and new bridge side (before it takes the port's name)."""
    tag = "imp" + hashlib.sha256(port.encode()).hexdigest()[:10]
    return f"{tag}m", f"{tag}r", f"{tag}q"


def targets(lab_id: str) -> tuple[list[str], list[str]]:
    """The lab's machines (those with a namespace) and segments (the switch's bridges)."""
    switch = str(LabName(lab_id, "sw"))
    prefix = LabName.prefix(lab_id)
    machines = sorted(n[len(prefix):] for n in netns.listnetns() if n.startswith(prefix) and n != switch)
    if switch not in netns.listnetns():
        raise UsageError(f"lab {lab_id} has no network (no namespace {switch}): is it running?")
    with _ns(switch) as sw:
        bridges = sorted(str(link.get("ifname")) for link in sw.get_links()
                         if link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "bridge")
    return machines, bridges


def resolve(lab_id: str, target: str) -> list[str]:
    """The switch ports (bridge side names) of ``target``: a machine's, or a segment's."""
    machines, segments = targets(lab_id)
    switch = str(LabName(lab_id, "sw"))
    renamed = {p["machine_side"]: p["port"] for e in active(lab_id) for p in e["ports"]}
    with _ns(switch) as sw:
        if target in segments:
            bridge = _index(sw, target)
            return sorted(str(link.get("ifname")) for link in sw.get_links()
                          if link.get("master") == bridge)
        if target not in machines:
            raise UsageError(f"lab {lab_id} has no machine or segment {target!r}: machines: "
                             f"{', '.join(machines)}; segments: {', '.join(segments)}")
        with _ns(str(LabName(lab_id, target))) as ns:
            ifnames = [str(link.get("ifname")) for link in ns.get_links()
                       if link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "veth"]
        # By name, not by the veth's peer index: a machine may have veths of its own to
        # other namespaces than the switch's (the internet's narrow link), whose peer index
        # means another interface there.
        bridged = {str(link.get("ifname")) for link in sw.get_links() if link.get("master")}
        ports = [port for port in (port_name(target, name)
                                   for name in ifnames) if port in bridged or port in renamed.values()]
    if not ports:
        raise UsageError(f"machine {target} of lab {lab_id} has no link to impair")
    return sorted(ports)


def apply(lab_id: str, target: str, settings: Impairment) -> dict[str, Any]:
    """Impair every link of ``target`` (a machine or a segment) of lab ``lab_id`` as
    ``settings`` say, replacing any impairment of those links; return the record made."""
    ports = resolve(lab_id, target)
    entries = active(lab_id)
    for entry in [e for e in entries if {p["port"] for p in e["ports"]} & set(ports)]:
        _unsplice(lab_id, entry)
        entries.remove(entry)
        _save(lab_id, entries)
    switch = str(LabName(lab_id, "sw"))
    links = []
    with _ns(switch) as sw:
        for port in ports:
            machine_side, relay_side, bridge_side = _names(port)
            sw.link("add", ifname=bridge_side, kind="veth", peer={"ifname": relay_side})
            _quiet(switch, [bridge_side, relay_side])
            sw.link("set", index=_index(sw, relay_side), state="up")
            bridge = sw.get_links(_index(sw, port))[0].get("master")
            segment = str(sw.get_links(bridge)[0].get("ifname"))
            links.append({"port": port, "segment": segment, "machine_side": machine_side,
                          "relay_side": relay_side})
    relay = _start(lab_id, switch, settings, links)
    cutoff = time.time()  # frames the relay received before it went over the bridge
    try:
        with _ns(switch) as sw:
            for link in links:
                own, bridge = _index(sw, link["port"]), _index(sw, link["segment"])
                _, _, bridge_side = _names(link["port"])
                sw.link("set", index=own, master=0)
                sw.link("set", index=own, ifname=link["machine_side"])
                sw.link("set", index=_index(sw, bridge_side), ifname=link["port"])
                sw.link("set", index=_index(sw, link["port"]), master=bridge, state="up")
        assert relay.stdin is not None
        relay.stdin.write(f"go {cutoff!r}\n".encode())
        relay.stdin.close()
    except BaseException:
        _stop(relay.pid, proc.start_time(relay.pid))
        raise
    entry = {"target": target, "settings": settings.as_dict(), "ports": links, "pid": relay.pid,
             "started": proc.start_time(relay.pid)}
    _save(lab_id, [*entries, entry])
    return entry


def _quiet(switch: str, ifnames: list[str]) -> None:
    """No IPv6 on the relay's veths: the switch's own link-local addresses would send router
    and neighbour solicitations into the lab."""
    netns.pushns(switch)
    try:
        for name in ifnames:
            Path(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").write_text("1\n")
    finally:
        netns.popns()


def _start(lab_id: str, switch: str, settings: Impairment,
           links: list[dict[str, str]]) -> subprocess.Popen[bytes]:
    """Start the relay of ``links`` in its own session and wait until its sockets are bound.

    subprocess.Popen, not proc.spawn: a relay outlives this call (and, started by
    `harness impair`, its process); `heal` stops it by its pid."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    spec = json.dumps({"settings": settings.as_dict(), "links": links})
    argv = ["nsenter", f"--net={NETNS_DIR / switch}", sys.executable, "-m", "harness.machines.relay", spec]
    log = STATE_DIR / f"{lab_id}.relay.log"
    package_root = str(Path(__file__).resolve().parent.parent)
    with log.open("ab") as errors:
        relay = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                                 env=proc.host_env({"PYTHONPATH": package_root}), start_new_session=True)
    assert relay.stdout is not None
    line = relay.stdout.readline() if proc.readable(relay.stdout.fileno(), READY) else b""
    relay.stdout.close()
    if line.strip() != b"ready":
        _stop(relay.pid, None)
        _remove_veths(switch, links)
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise HarnessError(f"the relay for {', '.join(x['port'] for x in links)} did not start within "
                           f"{READY:g}s: {' | '.join(tail) or 'no output'} (log: {log})")
    return relay


def _remove_veths(switch: str, links: list[dict[str, str]]) -> None:
    with _ns(switch) as sw:
        for link in links:
            for found in sw.link_lookup(ifname=link["relay_side"]):
                sw.link("del", index=found)


def _stop(pid: int, started: int | None) -> None:
    """Stop relay ``pid`` (if it is still the process started then), wait for it, reap it if
    it is this process's child (PID 1 here may never reap what it inherits)."""
    if started is not None and proc.start_time(pid) != started:
        return
    proc.kill(pid, signal.SIGTERM)
    if not proc.wait_for_exit(pid, STOP):
        proc.kill(pid)
        proc.wait_for_exit(pid, STOP)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _unsplice(lab_id: str, entry: dict[str, Any]) -> None:
    _stop(int(entry["pid"]), entry.get("started"))
    switch = str(LabName(lab_id, "sw"))
    with _ns(switch) as sw:
        for link in entry["ports"]:
            for found in sw.link_lookup(ifname=link["port"]):
                sw.link("del", index=found)  # the relay's pair: its other end goes with it
            machine_side = _index(sw, link["machine_side"])
            sw.link("set", index=machine_side, ifname=link["port"])
            sw.link("set", index=machine_side, master=_index(sw, link["segment"]), state="up")


def heal(lab_id: str, target: str | None = None) -> list[dict[str, Any]]:
    """Take the relays out of ``target``'s links (every impaired link when None); return
    what was healed."""
    entries = active(lab_id)
    healed = [e for e in entries if target is None or e["target"] == target]
    for entry in healed:
        _unsplice(lab_id, entry)
        entries.remove(entry)
        _save(lab_id, entries)
    return healed


def forget(lab_id: str) -> None:
    """Stop every relay of lab ``lab_id`` and drop its record, links left as they are (the
    lab's namespaces are about to go)."""
    for entry in active(lab_id):
        _stop(int(entry["pid"]), entry.get("started"))
    state_file(lab_id).unlink(missing_ok=True)
    (STATE_DIR / f"{lab_id}.relay.log").unlink(missing_ok=True)
