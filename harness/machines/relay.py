"""The relay: one process that carries the frames of impaired links, both ways, as
`harness.machines.impair.Schedule` decides (run as ``python -m harness.machines.relay SPEC``
by `harness.machines.splice`, inside the lab's switch namespace).

Each link is two interfaces: the machine's veth end, taken off its bridge, and one end of a
new veth pair whose other end took its place on the bridge. Frames are read and written
with packet sockets carrying a virtio-net header (PACKET_VNET_HDR): a veth hands over
frames whose checksums are not computed yet (the receiver trusts them) and TCP bursts not
cut into frames yet; the header tells the kernel so again when the frame is written, where
a raw copy would reach its receiver with a bad checksum and be dropped.

The protocol with the starter: the relay binds its sockets, prints ``ready``, and reads
``go CUTOFF``: frames the kernel received before CUTOFF (the wall clock, when the starter
began moving the machine's port off its bridge) reached the bridge directly and are
discarded; every later one is relayed, those that waited in the socket meanwhile included,
so a frame sent the moment the splice returns is not lost. SIGTERM ends the relay; so does
an interface that went away.
"""

from __future__ import annotations

import errno
import heapq
import json
import math
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass

from harness.machines.impair import Impairment, Schedule

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23  # what this socket writes is not read back by it
SO_TIMESTAMPNS = 35  # Linux's (the socket module has it from Python 3.14 only)
TIMESPEC = struct.Struct("qq")
VNET = struct.Struct("<BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
NEEDS_CSUM, DATA_VALID = 1, 2
BUFFER = 1 << 18  # a TCP burst not yet cut into frames is up to 64 KiB, and more with BIG TCP
HELD = 10_000  # frames held per direction at most (netem's default limit is 1000)
ETHERNET = 14
# ICMPv6 neighbour discovery and multicast listener messages (RFC 4861, RFC 3810)
_ND_TYPES = frozenset({130, 131, 132, 133, 134, 135, 136, 137, 143})
GONE = frozenset({errno.ENODEV, errno.ENXIO})
# A cable pulled (`LabNetwork.set_link`): the socket reports it once, and works again once
# the link is back up. What was to be sent meanwhile is lost, as on a pulled cable.
DOWN = errno.ENETDOWN


def spared(frame: bytes) -> bool:
    """Whether ``frame`` is ARP, IPv6 neighbour discovery or a multicast listener report (IGMP,
    MLD after its hop-by-hop header), never lost, duplicated or corrupted."""
    if len(frame) < ETHERNET + 1:
        return True
    kind = int.from_bytes(frame[12:14], "big")
    if kind == 0x0806:
        return True
    if kind == 0x0800:  # IGMP, IPv4's multicast listener reports (the switch's bridges send some)
        return len(frame) > ETHERNET + 9 and frame[ETHERNET + 9] == 2
    if kind != 0x86DD or len(frame) < ETHERNET + 42:
        return False
    header, at = frame[ETHERNET + 6], ETHERNET + 40
    if header == 0:  # hop-by-hop options: MLD carries a router alert
        header, at = frame[at], at + (frame[at + 1] + 1) * 8
    return header == 58 and at < len(frame) and frame[at] in _ND_TYPES


def complete_checksum(frame: bytearray, start: int, offset: int) -> None:
    """Write the checksum the kernel left to the hardware: the ones' complement sum of
    ``frame[start:]``, whose checksum field holds the pseudo-header's sum (as
    skb_checksum_help does), stored at ``start + offset``."""
    data = bytes(frame[start:]) + b"\0" * ((len(frame) - start) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    value = ~total & 0xFFFF or 0xFFFF  # 0 means "no checksum" to UDP: its equal is 0xFFFF
    frame[start + offset:start + offset + 2] = value.to_bytes(2, "big")


def corrupted(packet: bytes, where: float) -> bytes | None:
    """``packet`` (virtio-net header, then the frame) with one bit flipped past the Ethernet
    header, its checksums complete first so that the receiver sees the damage; None for a TCP
    burst the kernel has not cut into frames yet (its checksums are per frame, computed after
    us): it is dropped whole, as the receiver would drop the one damaged frame."""
    flags, gso, hdr_len, gso_size, start, offset = VNET.unpack_from(packet)
    if gso:
        return None
    frame = bytearray(packet[VNET.size:])
    if len(frame) <= ETHERNET:
        return bytes(packet)
    if flags & NEEDS_CSUM:
        complete_checksum(frame, start, offset)
    bit = min(int(where * (len(frame) - ETHERNET) * 8), (len(frame) - ETHERNET) * 8 - 1)
    frame[ETHERNET + bit // 8] ^= 1 << (bit % 8)
    return VNET.pack(0, 0, hdr_len, gso_size, 0, 0) + bytes(frame)


@dataclass
class Direction:
    """One way of one link: where frames are read, where they go, and their schedule."""

    source: socket.socket
    target: socket.socket
    schedule: Schedule


def packet_socket(ifname: str) -> socket.socket:
    """A packet socket on ``ifname``, with virtio-net headers, blind to its own writes."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((ifname, ETH_P_ALL))
    sock.setblocking(False)
    return sock


def serve(settings: Impairment, links: list[dict[str, str]]) -> int:
    """Relay ``links`` (each: ``port``, the machine side's name now; ``relay_side``) until
    killed; returns the exit status."""
    directions: dict[int, Direction] = {}
    for link in links:
        machine, relay = packet_socket(link["port"]), packet_socket(link["relay_side"])
        directions[machine.fileno()] = Direction(machine, relay, Schedule(settings, link["port"], "up"))
        directions[relay.fileno()] = Direction(relay, machine, Schedule(settings, link["port"], "down"))
    print("ready", flush=True)
    words = sys.stdin.readline().split()
    if len(words) != 2 or words[0] != "go":
        return 1
    cutoff = float(words[1])
    poller = select.poll()
    for fd in directions:
        poller.register(fd, select.POLLIN)
    held: list[tuple[float, int, socket.socket, bytes]] = []
    count: dict[socket.socket, int] = {}
    sequence = 0
    while True:
        wait = -1 if not held else max(0, math.ceil((held[0][0] - time.monotonic()) * 1000))
        for fd, _events in poller.poll(wait):
            way = directions[fd]
            while (got := _receive(way.source)) is not None:
                received, stamp = got
                if stamp < cutoff:
                    continue  # it went over the bridge before the splice
                # when it arrived, on the monotonic clock: it may have waited in the socket
                now = time.monotonic() - max(0.0, time.time() - stamp)
                fate = way.schedule.fate(now, len(received) - VNET.size, spared=spared(received[VNET.size:]))
                packet = received if fate.corrupt is None else corrupted(received, fate.corrupt)
                if packet is None or count.get(way.target, 0) >= HELD:
                    continue
                for leave in fate.departures:
                    sequence += 1
                    heapq.heappush(held, (leave, sequence, way.target, packet))
                    count[way.target] = count.get(way.target, 0) + 1
        now = time.monotonic()
        while held and held[0][0] <= now:
            _leave, _n, target, packet = heapq.heappop(held)
            count[target] -= 1
            try:
                target.send(packet)
            except OSError as exc:
                if exc.errno in GONE:
                    return 0
                # ENOBUFS and the like: the frame is lost, as on a busy wire


def _receive(sock: socket.socket) -> tuple[bytes, float] | None:
    """The next frame on ``sock`` and when the kernel received it (wall clock), or None."""
    try:
        data, ancillary, _flags, _address = sock.recvmsg(BUFFER, socket.CMSG_SPACE(TIMESPEC.size))
    except BlockingIOError:
        return None
    except OSError as exc:
        if exc.errno == DOWN:
            return None
        if exc.errno in GONE:
            raise SystemExit(0) from None
        raise
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = TIMESPEC.unpack_from(value)
            return data, seconds + nanoseconds / 1e9
    return data, time.time()


def main(argv: list[str]) -> int:
    """``python -m harness.machines.relay SPEC``: SPEC is JSON, ``{"settings": {...}, "links": [...]}``."""
    spec = json.loads(argv[0])
    return serve(Impairment.from_dict(spec["settings"]), list(spec["links"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
