"""A lab's network: namespaces, bridges, veths and addresses, through pyroute2 only.

One lab = one *switch* namespace holding one bridge per segment (``wan``, ``lan``), plus
one namespace per machine holding its ends of the veths, named and addressed as the
caller says. Every namespace name carries the lab id (``harness-<lab>-sw``,
``harness-<lab>-<machine>``), so two labs with the same IP plan coexist on one host, and
teardown removes exactly what this lab created. Lab traffic cannot leave: nothing links
these namespaces to the host's own.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from pyroute2 import NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError

from harness.core import proc
from harness.core.errors import HarnessError, UsageError
from harness.core.links import Interface, switch_port, validate
from harness.core.names import PREFIX, LabName
from harness.machines import splice as links
from harness.machines.impair import Impairment
from harness.machines.netlink import NETNS_DIR
from harness.machines.netlink import index as _index
from harness.machines.netlink import namespace as _ns

_SYSCTL = re.compile(r"net\.[a-z0-9_.-]+")
# Neighbour discovery retransmits every 100 ms on a lab's links, not every second: duplicate
# address detection (one probe, then one retransmission time of silence) makes each new IPv6
# address usable after 0.1 s instead of 1 s. It still runs: a duplicate is still found.
# ARP too: a neighbour asked for while a link was cut (a partition, a pulled cable) is asked
# again at the next retransmission only, so with a second between them a machine saw a healed
# link up to a second late, and a check that gave it a second failed whenever the host was busy
# (a partition scenario under `pytest -n 2`, tests/test_network.py has the case).
ND_RETRANS_MS = "100"
# Nor does a new address wait before its first probe: the kernel delays it by a random time up
# to router_solicitation_delay, a second (RFC 4862, 5.4.2), which on a lab link only delays
# every boot and renewal (a seat's DHCPv6 address waited for it: bench/README.md, "A lab in a blink").
ND_FIRST_PROBE_DELAY = "0"
# ICMPv6 that neighbour discovery is made of (what ARP is to IPv4, and more: RFC 4861), with
# the multicast listener reports a bridge's snooping goes by to deliver it (RFC 3810)
NEIGHBOUR_DISCOVERY = ("nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit",
                       "nd-neighbor-advert", "nd-redirect", "mld-listener-query", "mld-listener-report",
                       "mld-listener-done", "mld2-listener-report")


def namespace_name(lab_id: str, machine: str | None = None) -> str:
    """``harness-<lab>-sw`` for the switch, ``harness-<lab>-<machine>`` for a machine."""
    return str(LabName(lab_id, machine or "sw"))


def set_sysctls(namespace: str, settings: Mapping[str, str]) -> None:
    """Write ``net.*`` sysctls of ``namespace`` (this thread enters it, then comes back)."""
    netns.pushns(namespace)
    try:
        for key, value in settings.items():
            (Path("/proc/sys") / key.replace(".", "/")).write_text(f"{value}\n")
    finally:
        netns.popns()


def read_sysctl(namespace: str, key: str) -> str:
    """The value of ``net.*`` sysctl ``key`` in ``namespace``."""
    netns.pushns(namespace)
    try:
        return (Path("/proc/sys") / key.replace(".", "/")).read_text().strip()
    finally:
        netns.popns()


def lab_namespaces() -> list[str]:
    """Every namespace on this host that a harness lab created (for cleanup and checks)."""
    return sorted(n for n in netns.listnetns() if n.startswith(PREFIX))


def _remove_namespace(name: str) -> None:
    try:
        netns.remove(name)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def processes_in(names: Sequence[str]) -> list[int]:
    """Pids of the host's processes whose network namespace is one of ``names`` (e.g. a
    capture a killed run left behind: it would keep a removed namespace alive)."""
    inodes = set()  # device and inode: a file left where a namespace was mounted is no namespace
    for name in names:
        with contextlib.suppress(OSError):
            held = (NETNS_DIR / name).stat()
            inodes.add((held.st_dev, held.st_ino))
    found = []
    for entry in Path("/proc").glob("[0-9]*/ns/net"):
        with contextlib.suppress(OSError):
            held = entry.stat()
            if (held.st_dev, held.st_ino) in inodes:
                found.append(int(entry.parent.parent.name))
    return sorted(found)


def remove_lab_namespaces(lab_id: str) -> list[str]:
    """Remove every namespace of lab ``lab_id`` (also after a crash), killing any process
    still inside one; return their names."""
    links.forget(lab_id)
    doomed = [n for n in lab_namespaces() if n.startswith(LabName.prefix(lab_id))]
    for pid in processes_in(doomed):
        proc.kill(pid)
    for name in doomed:
        _remove_namespace(name)
    return doomed


class LabNetwork:
    """The namespaces, bridges and veths of one lab; a context manager.

    The constructor only validates. ``with LabNetwork("w1", interfaces) as net:`` creates
    everything; leaving the block removes it all, even after an error.

    >>> lan = [Interface("a", "host0", "lan", "02:00:00:00:00:01", ("10.1.0.1/24",)),
    ...        Interface("b", "host0", "lan", "02:00:00:00:00:02", ("10.1.0.2/24",))]
    >>> with LabNetwork("t1", lan) as net:
    ...     net.namespace_path("a")
    PosixPath('/run/netns/harness-t1-a')
    """

    def __init__(self, lab_id: str, interfaces: Sequence[Interface],
                 machines: Sequence[str] = (),
                 sysctls: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """``machines`` adds namespaces for machines without interfaces (loopback only);
        ``sysctls`` sets ``net.*`` keys in a machine's namespace (nspawn leaves /proc/sys/net
        read-only inside a machine whose namespace was prepared for it)."""
        LabName(lab_id, "sw")  # a bad lab id is a UsageError saying the rule
        validate(interfaces)
        self.lab_id = lab_id
        self.interfaces = tuple(interfaces)
        self.switch = namespace_name(lab_id)
        self.machines = tuple(dict.fromkeys([*machines, *(i.machine for i in interfaces)]))
        self.segments = tuple(dict.fromkeys(i.segment for i in interfaces))
        self._created: list[str] = []
        self._drops = 0  # drop() calls so far: each declares chains of its own
        self.sysctls = {m: dict(s) for m, s in (sysctls or {}).items() if s}
        for machine, settings in self.sysctls.items():
            self.namespace(machine)
            for key in settings:
                if not _SYSCTL.fullmatch(key):
                    raise UsageError(f"{machine}: sysctl {key!r} is not a net.* key "
                                     "(only the network namespace's settings can be set)")

    def namespace(self, machine: str) -> str:
        """Name of ``machine``'s namespace."""
        if machine not in self.machines:
            raise UsageError(f"lab {self.lab_id} has no machine {machine!r}; "
                             f"it has: {', '.join(self.machines)}")
        return namespace_name(self.lab_id, machine)

    def namespace_path(self, machine: str) -> Path:
        """Path to give ``systemd-nspawn --network-namespace-path``."""
        return NETNS_DIR / self.namespace(machine)

    def __enter__(self) -> LabNetwork:
        try:
            self._create()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.remove()

    def adopt(self) -> None:
        """Take over this lab's namespaces, made by another process (a lab left warm): this
        object removes them as if it had created them. `HarnessError` if one is missing."""
        names = (self.switch, *(self.namespace(m) for m in self.machines))
        present = set(netns.listnetns())
        missing = [n for n in names if n not in present]
        if missing:
            raise HarnessError(f"lab {self.lab_id}: namespace(s) {', '.join(missing)} are gone: "
                               "nothing to adopt")
        self._created = list(names)

    def _create(self) -> None:
        for name in (self.switch, *(self.namespace(m) for m in self.machines)):
            if name in netns.listnetns():
                raise HarnessError(f"namespace {name} already exists: a lab with id {self.lab_id} "
                                   "is running or was left behind; run `harness destroy`")
            netns.create(name)
            self._created.append(name)
        with _ns(self.switch) as sw:
            _up(sw, "lo")
            for segment in self.segments:
                sw.link("add", ifname=segment, kind="bridge")
                _up(sw, segment)
            for iface in self.interfaces:
                port = switch_port(iface)
                sw.link("add", ifname=port, kind="veth",
                        peer={"ifname": iface.name, "address": iface.mac,
                              "net_ns_fd": self.namespace(iface.machine)})
                sw.link("set", index=_index(sw, port), master=_index(sw, iface.segment),
                        state="up")
        for machine in self.machines:
            ifaces = [i for i in self.interfaces if i.machine == machine]
            named = [i.name for i in ifaces if "." not in i.name]  # a dot would read as a level of the key
            fast_nd = {f"net.ipv{v}.neigh.{n}.retrans_time_ms": ND_RETRANS_MS
                       for n in named for v in (4, 6)} | {
                f"net.ipv6.conf.{n}.router_solicitation_delay": ND_FIRST_PROBE_DELAY for n in named}
            if fast_nd:
                set_sysctls(self.namespace(machine), fast_nd)
            with _ns(self.namespace(machine)) as ns:
                _up(ns, "lo")
                for iface in ifaces:
                    index = _index(ns, iface.name)
                    for cidr in iface.addresses:
                        ip = ipaddress.ip_interface(cidr)
                        ns.addr("add", index=index, address=str(ip.ip),
                                prefixlen=ip.network.prefixlen)
                    _up(ns, iface.name)
                    for gateway in iface.gateways:
                        ns.route("add", dst="default", gateway=gateway, oif=index,
                                 family=socket.AF_INET6 if ":" in gateway else socket.AF_INET)
            if self.sysctls.get(machine):
                set_sysctls(self.namespace(machine), self.sysctls[machine])

    def set_link(self, machine: str, ifname: str, up: bool) -> None:
        """Plug (``up``) or unplug ``machine``'s ``ifname`` at the switch: a cable pulled (on an
        impaired link, the machine's own end too, or the machine would not see it)."""
        iface = next((i for i in self.interfaces if i.machine == machine and i.name == ifname), None)
        if iface is None:
            raise UsageError(f"lab {self.lab_id}: machine {machine} has no interface {ifname!r}")
        with _ns(self.switch) as sw:
            for port in (switch_port(iface), *links.machine_side(self.lab_id, switch_port(iface))):
                sw.link("set", index=_index(sw, port), state="up" if up else "down")

    # -- faults, for scenarios: nftables rules on the switch's bridges --------------------------

    def _ports(self, machine: str) -> list[str]:
        self.namespace(machine)
        return [switch_port(i) for i in self.interfaces if i.machine == machine]

    def _faults(self, rules: list[str], chains: Mapping[str, list[str]] | None = None) -> None:
        """Append ``rules`` to the fault table's forward chain, and declare ``chains`` (regular
        chains those rules jump to)."""
        script = ["table bridge harness_faults {",
                  *[f"  chain {name} {{\n" + "".join(f"    {r}\n" for r in body) + "  }"
                    for name, body in (chains or {}).items()],
                  "  chain forward {",
                  "    type filter hook forward priority filter; policy accept;",
                  *[f"    {rule}" for rule in rules], "  }", "}"]
        # The table is created empty first, so that `add` never fails and rules accumulate.
        proc.run(["nsenter", f"--net={NETNS_DIR / self.switch}", "nft", "-f", "-"],
                 input="add table bridge harness_faults\n" + "\n".join(script) + "\n")

    def partition(self, a: str, b: str) -> None:
        """Drop every frame between machines ``a`` and ``b`` (both ways) until `heal()`."""
        rules = [f'iifname "{pa}" oifname "{pb}" drop' for pa in self._ports(a) for pb in self._ports(b)]
        rules += [f'iifname "{pb}" oifname "{pa}" drop' for pa in self._ports(a) for pb in self._ports(b)]
        self._faults(rules)

    def drop(self, machine: str, percent: int | None = None, *, every: int | None = None) -> None:
        """Drop IP packets, IPv4 and IPv6, to and from ``machine`` (this kernel has no netem):
        ``percent`` % of them at random, or with ``every=N`` exactly the N-th, 2N-th... of each
        direction, so that what a scenario loses, and how long its retries take, is the same on
        every run.

        Neighbour resolution is spared, ARP and IPv6 neighbour discovery alike: a lost one would
        drop packets in bursts, not a share."""
        if (percent is None) == (every is None):
            raise UsageError("drop: give a percent or every=N, one of the two")
        if percent is not None and not 0 < percent <= 100:
            raise UsageError(f"drop: percent must be within 1..100, not {percent}")
        if every is not None and every < 1:
            raise UsageError(f"drop: every must be 1 or more, not {every}")
        # numgen inc counts the packets that reach it, per rule: 0, 1, ... N-1, 0...
        pick = f"numgen random mod 100 < {percent}" if every is None \
            else f"numgen inc mod {every} {every - 1}"
        # One chain per port and direction: neighbour discovery returns to the forward chain
        # (where a partition may still drop it), and one counter sees both families.
        self._drops += 1
        chains, jumps = {}, []
        for n, (port, way) in enumerate((p, w) for p in self._ports(machine) for w in ("iifname", "oifname")):
            name = f"drop{self._drops}_{n}"
            chains[name] = [f"icmpv6 type {{ {', '.join(NEIGHBOUR_DISCOVERY)} }} return",
                            f"ether type {{ ip, ip6 }} {pick} drop"]
            jumps.append(f'{way} "{port}" jump {name}')
        self._faults(jumps, chains)

    def impair(self, target: str, *, delay: float | str = 0.0, jitter: float | str = 0.0,
               rate: int | str = 0, reorder: float = 0.0, duplicate: float = 0.0, corrupt: float = 0.0,
               loss: float = 0.0, seed: int = 0) -> Impairment:
        """Make every link of ``target`` (a machine, or each machine's link on a segment: a frame
        between two of its machines crosses two) delay, jitter, limit, reorder, duplicate,
        corrupt or lose frames, both ways and both families, until `heal()`, replacing what its
        links had; `harness.machines.impair.Impairment` says what each setting does,
        `harness.machines.splice` how."""
        settings = Impairment.parse(delay=delay, jitter=jitter, rate=rate, reorder=reorder,
                                    duplicate=duplicate, corrupt=corrupt, loss=loss, seed=seed)
        links.apply(self.lab_id, target, settings)
        return settings

    def heal(self) -> None:
        """Remove every partition, drop rule and impairment."""
        proc.run(["nsenter", f"--net={NETNS_DIR / self.switch}", "nft", "delete table bridge "
                  "harness_faults"], check=False)
        links.heal(self.lab_id)

    def remove(self) -> None:
        """Remove the namespaces this object created (their veths and bridges go with them),
        stopping the relays of impaired links first."""
        if self._created:
            links.forget(self.lab_id)
        while self._created:
            _remove_namespace(self._created.pop())


def _up(ns: NetNS, ifname: str) -> None:
    try:
        ns.link("set", index=_index(ns, ifname), state="up")
    except NetlinkError as exc:
        raise HarnessError(f"cannot bring {ifname} up: {exc}") from exc
