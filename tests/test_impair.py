"""harness.machines.impair, harness.machines.relay, harness.machines.splice: the settings and
decisions (no root), then impaired links of real namespaces, measured by UDP echoes (the host has no ping)."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest
from pyroute2 import NetNS

from harness import cli
from harness.core import proc
from harness.core.errors import UsageError
from harness.core.links import Family
from harness.core.wait import retry
from harness.machines import records, relay
from harness.machines import splice as links
from harness.machines.impair import Impairment, Schedule
from harness.machines.lab import new_lab_id
from harness.machines.network import LabNetwork
from tests.conftest import lan, udp_ends


@pytest.mark.parametrize("kwargs, message", [
    ({}, "nothing to do"),
    ({"delay": "50ms", "jitter": "60ms"}, r"jitter \(60ms\) exceeds delay \(50ms\)"),
    ({"delay": -1}, "not negative"),
    ({"delay": "200 msec"}, "write it as 200ms"),
    ({"delay": "11s"}, "at most 10s"),
    ({"loss": 150}, "loss is a percentage within 0..100, not 150"),
    ({"reorder": 10}, "reorder=10 needs a delay"),
    ({"rate": "10mbps"}, "write it as 10mbit"),
    ({"rate": 100}, "at least 8000 bit/s"),
])
def test_impossible_settings_are_refused_in_one_line(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message) as refused:
        Impairment.parse(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(refused.value)


def test_settings_read_as_tc_writes_them_and_travel_as_data() -> None:
    made = Impairment.parse(delay="200ms", jitter=0.05, rate="10mbit", loss=1, seed=7)
    assert (made.delay, made.jitter, made.rate) == (0.2, 0.05, 10_000_000)
    assert made.describe() == "delay 200ms ±50ms, rate 10mbit, loss 1%, seed 7"
    assert Impairment.from_dict(made.as_dict()) == made
    with pytest.raises(UsageError, match="unknown setting"):
        Impairment.from_dict({"latency": 1})


def test_jitter_keeps_order_and_reorder_overtakes() -> None:
    held = Schedule(Impairment(delay=0.1, jitter=0.05), "a-host0", "up")
    departures = [held.fate(i * 0.001, 100, spared=False).departures[0] for i in range(200)]
    assert departures == sorted(departures)
    assert 0.05 <= departures[0] <= 0.15
    ahead = Schedule(Impairment(delay=0.1, reorder=25), "a-host0", "up")
    fates = [ahead.fate(i * 0.001, 100, spared=False).departures[0] - i * 0.001 for i in range(400)]
    assert 60 < sum(wait == pytest.approx(0.2) for wait in fates) < 140
    assert min(fates) == pytest.approx(0.1)  # never faster than the delay


def test_the_same_seed_gives_the_same_fates_and_spared_frames_draw_nothing() -> None:
    def lost(seed: int, noise: bool) -> list[int]:
        link = Schedule(Impairment(loss=30, seed=seed), "a-host0", "up")
        out = []
        for i in range(100):
            if noise:  # ARP and neighbour discovery neither delayed, lost nor counted
                assert link.fate(i, 60, spared=True).departures == (i,)
            if not link.fate(i, 100, spared=False).departures:
                out.append(i)
        return out
    assert lost(1, False) == lost(1, True)
    assert lost(1, False) != lost(2, False)
    assert 15 < len(lost(1, False)) < 45


def test_a_rate_spaces_frames_and_a_full_queue_drops() -> None:
    link = Schedule(Impairment(rate=1_000_000), "a-host0", "up")
    departures = [link.fate(0.0, 1250, spared=False).departures for _ in range(120)]
    assert [d[0] for d in departures[:3]] == pytest.approx([0.01, 0.02, 0.03])
    assert departures[-1] == ()  # more than a second's worth queued


def _ipv4_udp(payload: bytes) -> bytearray:
    """An Ethernet frame with an IPv4/UDP datagram whose UDP checksum field holds the
    pseudo-header's sum only, as a veth hands it over (CHECKSUM_PARTIAL)."""
    src, dst = bytes([10, 77, 0, 1]), bytes([10, 77, 0, 2])
    length = 8 + len(payload)
    pseudo = sum(struct.unpack("!4H", src + dst)) + 17 + length
    while pseudo >> 16:
        pseudo = (pseudo & 0xFFFF) + (pseudo >> 16)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0, 64, 17, 0, src, dst)
    udp = struct.pack("!HHHH", 7000, 7000, length, pseudo)
    return bytearray(b"\x02" * 12 + b"\x08\x00" + ip + udp + payload)


def _ones_complement_sum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_a_corrupted_frame_gets_its_checksum_first_then_one_flipped_bit() -> None:
    frame = _ipv4_udp(b"hello!!")
    relay.complete_checksum(frame, 34, 6)
    pseudo = frame[26:34] + b"\0\x11" + frame[38:40]
    assert _ones_complement_sum(bytes(pseudo + frame[34:])) == 0xFFFF  # a valid UDP checksum
    packet = relay.VNET.pack(relay.NEEDS_CSUM, 0, 0, 0, 34, 6) + bytes(_ipv4_udp(b"hello!!"))
    damaged = relay.corrupted(packet, 0.99)
    assert damaged is not None
    flags = relay.VNET.unpack_from(damaged)[0]
    assert flags == 0  # the kernel must not compute the checksum again over the damage
    diff = [a ^ b for a, b in zip(damaged[relay.VNET.size:], frame, strict=True)]
    [flipped] = [(at, d) for at, d in enumerate(diff) if d]
    assert flipped[0] == len(frame) - 1 and bin(flipped[1]).count("1") == 1  # one bit, 99% along
    assert relay.corrupted(relay.VNET.pack(1, 1, 54, 1448, 34, 16) + bytes(frame), 0.5) is None


def test_arp_and_neighbour_discovery_are_spared() -> None:
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\0" * 28
    ipv6 = b"\x33\x33\0\0\0\x01" + b"\x02" * 6 + b"\x86\xdd"
    solicit = ipv6 + b"\x60" + b"\0" * 5 + bytes([58, 255]) + b"\0" * 32 + bytes([135]) + b"\0" * 23
    report = ipv6 + b"\x60" + b"\0" * 5 + bytes([0, 1]) + b"\0" * 32 + bytes([58, 0]) + b"\0" * 6 \
        + bytes([143]) + b"\0" * 27
    echo = ipv6 + b"\x60" + b"\0" * 5 + bytes([58, 64]) + b"\0" * 32 + bytes([128]) + b"\0" * 7
    assert relay.spared(arp) and relay.spared(solicit) and relay.spared(report)
    igmp = bytearray(_ipv4_udp(b"x"))
    igmp[14 + 9] = 2
    assert relay.spared(bytes(igmp))
    assert not relay.spared(echo) and not relay.spared(bytes(_ipv4_udp(b"x")))


# -- real namespaces ------------------------------------------------------------------------

PREFIX6 = "2001:db8:78"


def _round_trip(net: LabNetwork, family: Family) -> float:
    """Seconds for one datagram from a to b and its echo back (the best of three)."""
    a, b = udp_ends(net, family, prefix6=PREFIX6, timeout=1.0)
    best = float("inf")
    with a, b:
        for _ in range(3):
            began = time.monotonic()
            a.sendto(b"ping", b.getsockname()[:2])
            data, peer = b.recvfrom(64)
            b.sendto(data, peer)
            a.recvfrom(64)
            best = min(best, time.monotonic() - began)
    return best


def _usable(net: LabNetwork) -> bool:
    try:
        _round_trip(net, Family.IPV6)
    except OSError:  # tentative address, or no answer yet
        return False
    return True


@pytest.fixture
def net() -> LabNetwork:
    with LabNetwork(new_lab_id(), lan("a", "b", prefix6=PREFIX6)) as made:
        retry(lambda last: _usable(made), timeout=10, what="a to echo through b over IPv6")
        yield made  # type: ignore[misc]


@pytest.mark.integration
def test_delay_holds_both_ways_in_both_families_and_heals(net: LabNetwork) -> None:
    net.impair("a", delay="100ms")
    [entry] = links.active(net.lab_id)
    for family in Family:
        rtt = _round_trip(net, family)
        assert 0.2 <= rtt < 0.3, f"{family}: a 100 ms link each way gave a round trip of {rtt:.3f}s"
    net.impair("lan", delay="50ms", jitter="5ms")  # replaces a's: each of a, b crosses its own
    assert not proc.alive(entry["pid"]), "the replaced relay was left behind"
    rtt = _round_trip(net, Family.IPV4)
    assert 0.18 <= rtt < 0.3, f"a segment of 50 ms links gave a round trip of {rtt:.3f}s"
    [entry] = links.active(net.lab_id)
    net.heal()
    assert not proc.alive(entry["pid"]) and links.active(net.lab_id) == []
    assert _round_trip(net, Family.IPV4) < 0.05


@pytest.mark.integration
def test_loss_is_the_same_on_every_run_for_a_seed(net: LabNetwork) -> None:
    settings = net.impair("a", loss=25, seed=3)
    up, down = Schedule(settings, "a-host0", "up"), Schedule(settings, "a-host0", "down")
    wanted = sum(bool(up.fate(0, 0, spared=False).departures)
                 and bool(down.fate(0, 0, spared=False).departures) for _ in range(40))
    a, b = udp_ends(net, Family.IPV4, prefix6=PREFIX6, timeout=0.3)
    got = 0
    with a, b:
        for _ in range(40):
            a.sendto(b"ping", b.getsockname()[:2])
            try:
                data, peer = b.recvfrom(64)
                b.sendto(data, peer)
                a.recvfrom(64)
                got += 1
            except TimeoutError:
                continue
    assert got == wanted, f"loss 25% seed 3: expected the {wanted} echoes the schedule gives, got {got}"


def _received(net: LabNetwork, family: Family, count: int, size: int = 32) -> list[tuple[int, float]]:
    """Send ``count`` numbered datagrams from a to b at once; what b got (number, when)."""
    a, b = udp_ends(net, family, prefix6=PREFIX6, timeout=0.5)
    got = []
    with a, b:
        for n in range(count):
            a.sendto(n.to_bytes(4, "big") + b"\0" * (size - 4), b.getsockname()[:2])
        while True:
            try:
                got.append((int.from_bytes(b.recv(2048)[:4], "big"), time.monotonic()))
            except TimeoutError:
                return got


@pytest.mark.integration
def test_reorder_duplicate_corrupt_and_rate(net: LabNetwork) -> None:
    net.impair("a", delay="50ms", reorder=30, seed=1)
    numbers = [n for n, _ in _received(net, Family.IPV6, 50)]
    assert sorted(numbers) == list(range(50)) and numbers != sorted(numbers), numbers
    net.impair("a", duplicate=100)
    assert sorted(n for n, _ in _received(net, Family.IPV4, 10)) == sorted(list(range(10)) * 2)
    net.impair("a", corrupt=100)  # IPv4: every bit of the datagram is under some checksum
    assert _received(net, Family.IPV4, 10) == []
    net.impair("a", rate="1mbit")
    got = _received(net, Family.IPV4, 60, size=1200)
    spread = got[-1][1] - got[0][1]
    assert len(got) == 60 and 0.5 < spread < 0.8, f"60 frames of 1.25 kB at 1 Mbit/s took {spread:.3f}s"


@pytest.mark.integration
def test_a_cable_pulled_on_an_impaired_link_is_seen_by_the_machine(net: LabNetwork) -> None:
    net.impair("a", delay="10ms")
    net.set_link("a", "host0", up=False)
    with NetNS(net.namespace("a")) as ns:
        assert ns.get_links(ifname="host0")[0].get("carrier") == 0  # NO-CARRIER, as without impairment
    net.set_link("a", "host0", up=True)
    retry(lambda last: _usable(net), timeout=10, what="a to echo through b again")
    assert 0.02 <= _round_trip(net, Family.IPV4) < 0.1


@pytest.mark.integration
def test_relays_go_with_the_network_and_targets_are_named(net: LabNetwork) -> None:
    with pytest.raises(UsageError, match="no machine or segment 'c': machines: a, b; segments: lan"):
        net.impair("c", delay=0.1)
    net.impair("b", delay="10ms")
    [entry] = links.active(net.lab_id)
    net.remove()
    assert not proc.alive(entry["pid"]) and links.active(net.lab_id) == []


# -- harness impair -------------------------------------------------------------------------

def test_impair_without_a_running_lab_says_how_to_start_one(capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setattr(records, "RUN_DIR", tmp_path)
    assert cli.main(["impair", "x1", "pas", "--delay", "10ms"]) == 2
    assert capsys.readouterr().err.strip() == "harness: error: no running lab x1; running: none"


@pytest.mark.integration
def test_harness_impair_lists_impairs_and_heals_a_running_labs_link(
        net: LabNetwork, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    # the record `harness up` leaves of a kept lab, for the lab whose network `net` is
    monkeypatch.setattr(records, "RUN_DIR", tmp_path)
    (tmp_path / f"{net.lab_id}.json").write_text(json.dumps({"id": net.lab_id, "pid": None, "machines": {}}))
    lab_id = net.lab_id
    assert cli.main(["impair", lab_id, "a", "--delay", "50ms", "--jitter", "60ms"]) == 2
    assert "jitter (60ms) exceeds delay (50ms)" in capsys.readouterr().err
    assert cli.main(["impair", lab_id, "a", "--delay", "100ms", "--loss", "0.5"]) == 0
    assert capsys.readouterr().out == (f"lab {lab_id}: a: delay 100ms, loss 0.5%, seed 0 "
                                       f"(heal with `harness impair {lab_id} --heal a`)\n")
    assert 0.2 <= _round_trip(net, Family.IPV4) < 0.3
    assert cli.main(["impair", lab_id]) == 0
    [entry] = links.active(lab_id)
    listed = f"a (a-host0): delay 100ms, loss 0.5%, seed 0; relay pid {entry['pid']}\n"
    assert capsys.readouterr().out == listed
    assert cli.main(["impair", lab_id, "--heal", "b"]) == 2
    assert "b is not impaired; impaired: a" in capsys.readouterr().err
    assert cli.main(["impair", lab_id, "--heal", "a"]) == 0
    assert capsys.readouterr().out == f"lab {lab_id}: healed a\n"
    assert not proc.alive(entry["pid"]) and _round_trip(net, Family.IPV4) < 0.05
