"""harness.machines.network: names and validation (no root), then real namespaces, bridges and veths."""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import pytest
from pyroute2 import NetNS

from harness.core import links, proc
from harness.core.errors import HarnessError, UsageError
from harness.core.links import IFNAMSIZ, Family, Interface
from harness.core.wait import retry
from harness.machines import network
from harness.machines.lab import new_lab_id
from harness.machines.network import LabNetwork
from tests.conftest import lan, udp_ends


def test_namespace_names_carry_the_lab_id() -> None:
    assert network.namespace_name("w1") == "harness-w1-sw"
    assert network.namespace_name("w1", "gw") == "harness-w1-gw"


def test_switch_port_fits_ifnamsiz_and_stays_distinct() -> None:
    short = Interface("gw", "lan0", "lan", "02:00:00:00:00:01")
    assert network.switch_port(short) == "gw-lan0"
    a = Interface("pas-r11p7", "host0", "lan", "02:00:00:00:00:02")
    b = Interface("pas-r11p7", "host1", "lan", "02:00:00:00:00:03")
    assert len(network.switch_port(a)) <= IFNAMSIZ
    assert network.switch_port(a) != network.switch_port(b)


@pytest.mark.parametrize("kwargs, message", [
    ({"mac": "02:00:00:00:00:0G"}, "bad MAC"),
    ({"mac": "02:00:00:00:00"}, "bad MAC"),
    ({"name": "a-very-long-interface"}, "bad interface name"),
    ({"segment": "0lan"}, "bad segment name"),
    ({"addresses": ("192.168.1.300/24",)}, "bad address '192.168.1.300/24'"),
    ({"machine": "Gw"}, "bad machine name"),
    ({"addresses": ("10.0.0.1/24",), "gateways": ("10.0.1.1",)},
     r"gw/lan0: gateway 10\.0\.1\.1 is on none of its networks \(10\.0\.0\.0/24\)"),
    ({"gateways": ("10.0.0.254",)}, r"gateway 10\.0\.0\.254 is on none of its networks \(no address\)"),
    ({"addresses": ("10.0.0.1/24",), "gateways": ("10.0.0.x",)}, "bad gateway '10.0.0.x'"),
])
def test_bad_interface_is_refused(kwargs: dict[str, object], message: str) -> None:
    fields = {"machine": "gw", "name": "lan0", "segment": "lan", "mac": "02:00:00:00:00:01"}
    fields.update(kwargs)
    with pytest.raises(UsageError, match=message):
        Interface(**fields)  # type: ignore[arg-type]


def test_duplicates_are_named() -> None:
    a, b = lan("a", "b")
    with pytest.raises(UsageError, match="MAC 02:00:00:00:00:01 is used twice: by a/host0 and by b/host0"):
        links.validate([a, Interface("b", "host0", "lan", a.mac)])
    with pytest.raises(UsageError, match=r"address 10\.77\.0\.1 is used twice"):
        links.validate([a, Interface("b", "host0", "lan", b.mac, a.addresses)])


@pytest.mark.integration
def test_lab_network_builds_and_removes_exactly_its_namespaces() -> None:
    lab_id = new_lab_id()
    interfaces = lan("a", "b")
    with LabNetwork(lab_id, interfaces, machines=["c"]) as net:
        made = {network.namespace_name(lab_id, n) for n in ("a", "b", "c", None)}  # None: the switch
        assert set(network.lab_namespaces()) >= made
        with NetNS(net.namespace("a")) as ns:
            link = ns.get_links(ifname="host0")[0]
            assert link.get("address") == "02:00:00:00:00:01"
            assert link.get("operstate") in ("UP", "UNKNOWN", "LOWERLAYERDOWN")
            addrs = [(a.get("address"), a["prefixlen"]) for a in ns.get_addr(family=2)]
            assert ("10.77.0.1", 24) in addrs
        # a new IPv6 address is probed at once and every 100 ms: usable in 0.1 s, not 1 to 2 s
        assert network.read_sysctl(net.namespace("a"), "net.ipv6.neigh.host0.retrans_time_ms") == "100"
        assert network.read_sysctl(net.namespace("a"), "net.ipv4.neigh.host0.retrans_time_ms") == "100"
        assert network.read_sysctl(net.namespace("a"), "net.ipv6.conf.host0.router_solicitation_delay") == "0"
        with NetNS(net.switch) as sw:
            bridge = sw.link_lookup(ifname="lan")[0]
            ports = {link.get("ifname") for link in sw.get_links() if link.get("master") == bridge}
            assert ports == {"a-host0", "b-host0"}
        with NetNS(net.namespace("c")) as ns:
            assert [link.get("ifname") for link in ns.get_links()] == ["lo"]
    assert not [n for n in network.lab_namespaces() if n.startswith(f"harness-{lab_id}-")]


@pytest.mark.integration
def test_two_labs_with_one_ip_plan_coexist_and_leave_each_other_alone() -> None:
    first, second = new_lab_id(), new_lab_id()
    with LabNetwork(first, lan("a", "b")):
        with LabNetwork(second, lan("a", "b")):
            pass
        assert f"harness-{first}-a" in network.lab_namespaces()
        assert f"harness-{second}-a" not in network.lab_namespaces()


@pytest.mark.integration
def test_a_taken_lab_id_is_refused_and_the_owner_keeps_it() -> None:
    lab_id = new_lab_id()
    with LabNetwork(lab_id, lan("a")):
        with pytest.raises(HarnessError, match=r"already exists: .*harness destroy"):
            LabNetwork(lab_id, lan("a")).__enter__()
        assert f"harness-{lab_id}-a" in network.lab_namespaces()


@pytest.mark.integration
def test_gateways_are_the_default_routes_of_their_family() -> None:
    dual = Interface("a", "host0", "lan", "02:00:00:00:00:01", ("10.77.0.1/24", "fd77::1/64"),
                     ("10.77.0.254", "fd77::fe"))
    with LabNetwork(new_lab_id(), [dual, *lan("a", "b")[1:]]) as net:
        for family, gateway in ((socket.AF_INET, "10.77.0.254"), (socket.AF_INET6, "fd77::fe")):
            with NetNS(net.namespace("a")) as ns:
                [route] = ns.get_routes(family=family, dst_len=0, table=254)
            assert route.get_attr("RTA_GATEWAY") == gateway
        with NetNS(net.namespace("b")) as ns:  # without a gateway, no default route
            assert not list(ns.get_routes(family=socket.AF_INET, dst_len=0, table=254))


def test_only_network_sysctls_can_be_set() -> None:
    with pytest.raises(UsageError, match=r"a: sysctl 'kernel.hostname' is not a net\.\* key"):
        LabNetwork("t", lan("a"), sysctls={"a": {"kernel.hostname": "x"}})


@pytest.mark.integration
def test_sysctls_apply_to_one_machine_namespace_only() -> None:
    lab_id = new_lab_id()
    host_before = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    with LabNetwork(lab_id, lan("a", "b"), sysctls={"a": {"net.ipv4.ip_forward": "1"}}) as net:
        assert network.read_sysctl(net.namespace("a"), "net.ipv4.ip_forward") == "1"
        assert network.read_sysctl(net.namespace("b"), "net.ipv4.ip_forward") == "0"
        assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_before  # back home


def test_drop_share_must_be_a_percentage() -> None:
    with pytest.raises(UsageError, match=r"drop: percent must be within 1\.\.100, not 0"):
        LabNetwork("t", lan("a")).drop("a", 0)


@pytest.mark.parametrize("args, kwargs, message", [
    ((), {"every": 0}, r"drop: every must be 1 or more, not 0"),
    ((15,), {"every": 3}, r"drop: give a percent or every=N, one of the two"),
    ((), {}, r"drop: give a percent or every=N, one of the two"),
])
def test_drop_takes_a_percent_or_a_period(args: tuple[int, ...], kwargs: dict[str, int],
                                          message: str) -> None:
    with pytest.raises(UsageError, match=message):
        LabNetwork("t", lan("a")).drop("a", *args, **kwargs)


def _echoes(net: LabNetwork, count: int, family: Family = Family.IPV4) -> int:
    """Of ``count`` UDP datagrams from machine a to machine b, one at a time, how many b got
    and echoed back to a."""
    # a lab round trip takes microseconds: a tenth of a second of silence is a drop
    a, b = udp_ends(net, family, prefix6=PREFIX6, timeout=0.1)
    answered = 0
    with a, b:
        for _ in range(count):
            a.sendto(b"ping", b.getsockname()[:2])
            answered += _echoed(a, b)
    return answered


def _echoed(a: socket.socket, b: socket.socket) -> bool:
    """Whether b received a datagram and a its echo, each within the sockets' timeout."""
    try:
        data, peer = b.recvfrom(64)
        b.sendto(data, peer)
        a.recvfrom(64)
    except TimeoutError:
        return False
    return True


def _burst(net: LabNetwork, count: int, family: Family, within: float = 1.0) -> int:
    """Of ``count`` UDP datagrams sent by a at once, how many b echoed back to a within
    ``within`` seconds (a ping's wait: ``ping -c COUNT -i 0.01 -W 1``)."""
    a, b = udp_ends(net, family, prefix6=PREFIX6, timeout=0.1)
    answered = 0
    with a, b:
        for _ in range(count):
            with contextlib.suppress(OSError):  # EHOSTUNREACH: the neighbour failed
                a.sendto(b"ping", b.getsockname()[:2])
        deadline = time.monotonic() + within
        while answered < count and time.monotonic() < deadline:
            answered += _echoed(a, b)
    return answered


PREFIX6 = "2001:db8:77"


def _usable(net: LabNetwork) -> bool:
    """Whether a and b can bind their IPv6 addresses: duplicate address detection is over."""
    try:
        return _echoes(net, 1, Family.IPV6) == 1
    except OSError:  # EADDRNOTAVAIL while an address is tentative
        return False


@pytest.mark.integration
def test_dropping_every_third_packet_loses_the_same_share_of_both_families_and_spares_nd() -> None:
    with LabNetwork(new_lab_id(), lan("a", "b", prefix6=PREFIX6)) as net:
        retry(lambda last: _usable(net), timeout=10, what="a to echo through b over IPv6")
        for family in Family:
            net.drop("a", every=3)
            # a must ask for b's MAC again, past the drop
            proc.run(["ip", "-n", net.namespace("a"), "neigh", "flush", "dev", "host0"])
            # each way drops its 3rd, 6th...: 20 of 30 requests pass, and 14 of their 20 replies
            assert _echoes(net, 30, family) == 14, f"{family}: a neighbour query was counted or lost"
            net.heal()
            assert _echoes(net, 5, family) == 5



@pytest.mark.integration
def test_a_healed_partition_is_seen_at_once_even_by_a_neighbour_asked_for_during_it() -> None:
    # a asks for b's MAC while the partition holds, for 2.5 s; once healed, its next packets
    # must reach b within a ping's one-second wait, wherever the heal falls in the neighbour's
    # resolution. With ARP's default second between its three tries, a heal after the last try
    # left the entry waiting to fail, with a's packets queued behind it: 0 of 5, every time.
    with LabNetwork(new_lab_id(), lan("a", "b", prefix6=PREFIX6)) as net:
        retry(lambda last: _usable(net), timeout=10, what="a to echo through b over IPv6")
        for family in Family:
            proc.run(["ip", "-n", net.namespace("a"), "neigh", "flush", "dev", "host0"])
            net.partition("a", "b")
            assert _burst(net, 5, family, within=2.5) == 0, f"{family}: the partition let a datagram through"
            net.heal()
            assert _burst(net, 5, family) == 5, f"{family}: a healed partition stayed cut for a"
