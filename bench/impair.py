"""What an impaired link costs: setting one up and healing it, the latency the relay adds
beyond the delay asked for, and what the relay carries at most.

Two namespaces on one bridge, as tests/test_impair.py builds them (no machines boot):

- impair / heal: `LabNetwork.impair` (a relay started and spliced in) and `heal`;
- round trip: a UDP echo between the two, plain, then through a link of 1 ms each way: what
  is above 2 ms is the relay's own cost (two passes each way, a Python process);
- throughput: a burst of 1400-byte datagrams through an impaired link of 1 ms, how many
  arrived and how fast.

With ``--lab``, what impairments cost a resume: the reference lab booted from its last
stage's snapshot to all-ready and torn down, in turns, plain and with every machine's link
of the LAN impaired as soon as it is ready (one relay for them all, `impair("lan", ...)`):
the resume itself, the impairment of the whole segment, and the teardown with the relay
running.

    .venv/bin/python -m bench.impair --reps 5
    .venv/bin/python -m bench.impair --lab --reps 3
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time

from pyroute2 import netns

from harness.core.wait import retry
from harness.machines import splice
from harness.machines.lab import new_lab_id
from harness.machines.network import LabNetwork
from tests.conftest import lan


def _ends(net: LabNetwork) -> tuple[socket.socket, socket.socket]:
    ends = []
    for iface in lan("a", "b"):
        netns.pushns(net.namespace(iface.machine))
        try:
            end = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        finally:
            netns.popns()
        end.bind((iface.addresses[0].split("/")[0], 7000))
        end.settimeout(2)
        ends.append(end)
    return ends[0], ends[1]


def round_trip(net: LabNetwork, count: int = 50) -> float:
    """The median seconds of ``count`` echoes from a to b and back."""
    a, b = _ends(net)
    times = []
    with a, b:
        for _ in range(count):
            began = time.monotonic()
            a.sendto(b"ping", b.getsockname())
            data, peer = b.recvfrom(64)
            b.sendto(data, peer)
            a.recvfrom(64)
            times.append(time.monotonic() - began)
    return statistics.median(times)


def burst(net: LabNetwork, count: int = 5000) -> tuple[int, float]:
    """Datagrams of 1400 bytes from a to b at once: how many arrived, and the seconds from the
    first sent to the last received (b reads in another namespace's socket, buffer enlarged)."""
    a, b = _ends(net)
    b.settimeout(0.5)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
    got, last = 0, 0.0
    with a, b:
        began = time.monotonic()
        for _ in range(count):
            a.sendto(b"x" * 1400, b.getsockname())
        while True:
            try:
                b.recv(2048)
            except TimeoutError:
                return got, last - began
            last = time.monotonic()
            got += 1


def on_a_lab(reps: int) -> None:
    """The reference lab resumed from its last stage, plain and with the LAN impaired, in turns."""
    from harness.engine.build.builder import Builder
    from harness.machines.store import open_store
    from stages import PIPELINE

    builder = Builder(open_store(None), PIPELINE)
    snapshot = builder.ensure(PIPELINE.names[-1])
    figures: dict[str, list[float]] = {k: [] for k in ("ready", "down", "ready ", "impair", "down ")}
    links = 0
    for _ in range(reps):
        for impaired in (False, True):
            tag = " " if impaired else ""
            began = time.monotonic()
            lab = builder.lab(snapshot)
            lab.__enter__()
            figures["ready" + tag].append(time.monotonic() - began)
            if impaired:
                began = time.monotonic()
                lab.network.impair("lan", delay="1ms")
                figures["impair"].append(time.monotonic() - began)
                links = len(splice.active(lab.id)[0]["ports"])
            began = time.monotonic()
            lab.__exit__(None, None, None)
            figures["down" + tag].append(time.monotonic() - began)

    def median(key: str) -> str:
        values = figures[key]
        return f"{statistics.median(values):.2f} s ({min(values):.2f} to {max(values):.2f})"

    print(f"| figure (median of {reps}, in turns) | plain | LAN impaired |\n| --- | --- | --- |")
    print(f"| resume from {snapshot.ref} to all-ready | {median('ready')} | {median('ready ')} |")
    print(f"| impair(\"lan\", delay=\"1ms\"): {links} links, one relay | | {median('impair')} |")
    print(f"| teardown | {median('down')} | {median('down ')} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--lab", action="store_true", help="resume the reference lab, plain and impaired")
    args = parser.parse_args()
    reps = args.reps
    if args.lab:
        on_a_lab(reps)
        return
    with LabNetwork(new_lab_id(), lan("a", "b")) as net:
        retry(lambda last: round_trip(net, 1) > 0, timeout=10, what="a to echo through b")
        plain = round_trip(net)
        setting, healing = [], []
        for _ in range(reps):
            began = time.monotonic()
            net.impair("a", delay="1ms")
            setting.append(time.monotonic() - began)
            began = time.monotonic()
            net.heal()
            healing.append(time.monotonic() - began)
        net.impair("a", delay="1ms")
        relayed = round_trip(net)
        got, took = burst(net)
        net.heal()
    print("| figure | value |\n| --- | --- |")
    print(f"| impair (relay started, port spliced) | {statistics.median(setting) * 1e3:.0f} ms median "
          f"of {reps} |")
    print(f"| heal (relay stopped and reaped, port back) | {statistics.median(healing) * 1e3:.0f} ms median "
          f"of {reps} |")
    print(f"| UDP round trip, plain | {plain * 1e3:.3f} ms |")
    print(f"| UDP round trip, 1 ms each way through the relay | {relayed * 1e3:.3f} ms "
          f"(relay's own: {(relayed - plain - 0.002) * 1e3:.3f} ms) |")
    print(f"| burst of 5000 x 1400 B through the relay | {got} arrived in {took:.3f} s, "
          f"{got * 1400 * 8 / max(took, 1e-9) / 1e6:.0f} Mbit/s |")


if __name__ == "__main__":
    main()
