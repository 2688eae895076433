"""harness.probes.drops: how a refused connection is told from a lost one and from an answer.
Pure: the router and the client are stand-ins that answer as nft, ping and a probe would."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from harness.probes import drops


@dataclass
class Router:
    """A stand-in router: nft adds the rule with handle 17, and lists the chain with the
    rule's counter at ``counted`` and the chain's ``policy``."""

    counted: int = 1
    policy: str = "drop"
    name: str = "gw"
    asked: list[str] = field(default_factory=list)

    def execute(self, command: str) -> tuple[int, str]:
        self.asked.append(command)
        if command.startswith("nft --echo --handle add rule"):
            return 0, f"add rule inet filter forward {command.split('forward ', 1)[1]} # handle 17\n"
        if command.startswith("nft -j list chain"):
            comment = next(c.split("comment ")[1].split()[0] for c in self.asked if "comment" in c)
            return 0, json.dumps({"nftables": [
                {"metainfo": {"json_schema_version": 1}},
                {"chain": {"family": "inet", "table": "filter", "name": "forward", "policy": self.policy}},
                {"rule": {"chain": "forward", "handle": 5, "expr": [{"accept": None}]}},
                {"rule": {"chain": "forward", "handle": 17, "comment": comment,
                          "expr": [{"counter": {"packets": self.counted, "bytes": 60 * self.counted}}]}}]})
        return 0, ""

    def succeed(self, command: str) -> str:
        status, out = self.execute(command)
        assert status == 0, command
        return out


@dataclass
class Client:
    """A stand-in client whose attempt ends at once with ``status`` and ``out``."""

    status: int
    out: str = ""
    name: str = "internet"

    def execute(self, command: str) -> tuple[int, str]:
        return (self.status, self.out) if "exec " in command else (0, "")

    def succeed(self, command: str) -> str:
        return self.execute(command)[1]


@pytest.mark.parametrize(("status", "out", "seen"), [
    (0, "", "accepted"),
    (1, "bash: connect: Connection refused", "rejected"),
    (1, "From 192.0.2.1 icmp_seq=1 Destination Host Unreachable", "rejected"),
    (124, "", "dropped"),
    (9, ";; connection timed out; no servers could be reached", "dropped"),
    (1, "1 packets transmitted, 0 received, 100% packet loss", "dropped"),
    (2, "dig: couldn't get address", "error")])
def test_an_attempt_is_told_by_its_status_and_output(status: int, out: str, seen: str) -> None:
    assert drops.outcome(status, out, "the handshake completed", 1)[0] == seen


def test_a_silent_client_whose_packet_the_router_counted_was_dropped() -> None:
    router = Router()
    seen, detail = drops.refusal(Client(124), drops.DropWatch(router, "forward", "tcp dport 22"),
                                 "timeout 1 nc x 22", "the handshake completed", wait=1, window=0.1)
    assert (seen, detail.rsplit("; ", 1)[1]) == ("dropped", "gw's forward chain dropped 1 packet(s)")
    assert router.asked[-1] == "nft delete rule inet filter forward handle 17"  # the ruleset as it was


def test_a_silent_client_whose_packet_the_router_never_saw_lost_it_on_the_way() -> None:
    seen, detail = drops.refusal(Client(124), drops.DropWatch(Router(counted=0), "forward", "tcp dport 22"),
                                 "timeout 1 nc x 22", "the handshake completed", wait=1, window=0.1)
    assert seen == "lost before gw" and "never saw the packet" in detail


def test_a_count_under_a_chain_that_accepts_is_no_drop() -> None:
    watch = drops.DropWatch(Router(policy="accept"), "forward", "tcp dport 22")
    seen, detail = drops.refusal(Client(124), watch, "timeout 1 nc x 22", "the handshake completed",
                                 wait=1, window=0.1)
    assert seen == "error" and detail.endswith("whose policy is accept")


def test_an_answer_is_an_answer_whatever_the_router_counted() -> None:
    assert drops.refusal(Client(0), drops.DropWatch(Router(), "forward", "tcp dport 22"),
                         "timeout 1 nc x 22", "the handshake completed", wait=1, window=0.1) \
        == ("accepted", "the handshake completed")


@pytest.mark.parametrize(("rtt", "window"), [("0.050/0.060/0.070/0.010", 0.1), ("20.0/30.0/40.0/1.0", 0.4)])
def test_the_silence_asked_is_ten_round_trips_or_a_tenth_of_a_second(rtt: str, window: float) -> None:
    class Pinger(Client):
        def execute(self, command: str) -> tuple[int, str]:
            return 0, f"3 packets transmitted, 3 received\nrtt min/avg/max/mdev = {rtt} ms\n"

    assert drops.round_trip_window(Pinger(0), "192.0.2.1") == pytest.approx(window)
