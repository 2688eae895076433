"""A refused connection proven where it is refused, as soon as it is: on the router's
firewall, by nftables's own counter, with the client's silence still asserted after it.

A client that hears nothing after a second proves little (its packet may have been lost on
the way, or the answer may be slow), and waiting that second per refused connection is most
of a policy suite's time. `refusal` instead gives the router's chain a last rule
(`DropWatch`) that matches the attempt's packets, counts them and decides nothing: a packet
it counts went past every rule that could accept it, so the chain's policy decides its fate.
Once it counts one and the policy is drop, the client must hear nothing for a short window
(`round_trip_window`: ten of the lab's round trips, at least 0.1 s), and the attempt is
stopped. A packet the router never counted was lost before it ("lost before gw"), never
"dropped", however silent the client.

Outcomes, as the client sees them (`outcome`): *accepted* (the exchange completed),
*rejected* (a reset or an ICMP error: the packet got through to something that refused it),
*dropped* (nothing came back), *lost before* the router (named), or *error*. Any lab whose router runs
nftables can use it; what the packets of one attempt look like (`DropWatch`'s ``match``) is
the lab's to say.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Pending

from harness.core.errors import WaitTimeout
from harness.core.wait import retry
from harness.probes import Shell

PIDFILE = "/run/harness-drop-probe.pid"  # the attempt's pid, in the client: to stop it early
FLOOR = 0.1  # seconds: the least silence asked of a client once its packet was counted


def outcome(status: int, out: str, answered: str, wait: float) -> tuple[str, str]:
    """What a client's attempt (its exit status and output, the attempt's command having given
    up after ``wait`` seconds) amounts to: (accepted with ``answered``, rejected, dropped or
    error; what was seen)."""
    text = " ".join(out.split())[-300:] or f"exit status {status}"
    if status == 0:
        return "accepted", answered
    if any(word in out.lower() for word in ("refused", "unreachable", "prohibited")):
        return "rejected", text
    if status == 124 or "timed out" in out or (status == 1 and "0 received" in out):
        return "dropped", f"no answer within {wait:g}s ({text})"
    return "error", text


class DropWatch:
    """A last rule in ``router``'s nftables chain ``chain`` (of ``table``) that matches
    ``match`` (nft's syntax: ``iifname "uplink0" ip daddr 192.0.2.1 tcp dport 22``), counts
    and decides nothing; removed on leaving, the ruleset as it was."""

    def __init__(self, router: Shell, chain: str, match: str, table: str = "inet filter") -> None:
        self.router = router
        self.chain = chain
        self.table = table
        self.match = match
        self.comment = f"harness-drop-{secrets.token_hex(4)}"
        self.handle = ""

    def __enter__(self) -> DropWatch:
        added = self.router.succeed(f"nft --echo --handle add rule {self.table} {self.chain} {self.match} "
                                    f"counter comment {self.comment}")
        self.handle = added.rsplit("# handle", 1)[1].split()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        self.router.succeed(f"nft delete rule {self.table} {self.chain} handle {self.handle}")

    def state(self) -> tuple[int, str]:
        """Packets the rule counted so far (they reached the chain's end), and the chain's policy."""
        listing = json.loads(self.router.succeed(f"nft -j list chain {self.table} {self.chain}"))["nftables"]
        rules = (i["rule"] for i in listing if "rule" in i)
        rule: dict[str, list[dict[str, dict[str, int]]]] = \
            next((r for r in rules if r.get("comment") == self.comment), {})
        drops = next((e["counter"]["packets"] for e in rule.get("expr", []) if "counter" in e), 0)
        policy = next((i["chain"].get("policy", "") for i in listing if "chain" in i), "")
        return int(drops), str(policy)


def filters(router: Shell, chain: str, table: str = "inet filter") -> bool:
    """Whether ``router`` has the chain a drop would be counted in; without it, nothing of
    that family is filtered there, and only a client's silence can tell."""
    return router.execute(f"nft list chain {table} {chain}")[0] == 0


def round_trip_window(client: Shell, router_address: str) -> float:
    """How long ``client`` must hear nothing once the router counted its packet: `FLOOR`, or
    ten of its round trips to ``router_address``, if longer (a loaded host)."""
    status, out = client.execute(f"ping -n -q -c3 -i0.01 -W1 {router_address}")
    if status != 0:  # the router is unreachable: the attempt's outcome will say so
        return FLOOR
    worst = float(out.rsplit("=", 1)[1].split("/")[2]) / 1000  # rtt min/avg/max/mdev = ... ms
    return max(FLOOR, 10 * worst)


def refusal(client: Shell, watch: DropWatch, command: str, answered: str, *, wait: float,
            window: float) -> tuple[str, str]:
    """What ``client`` saw running ``command`` (an attempt that gives up after ``wait``
    seconds; ``answered`` says what its success means) while ``watch`` counts on the router:
    dropped once the router counted the packet past every rule of a chain whose policy is drop
    and the client then heard nothing for ``window`` seconds; "lost before ROUTER" (its name)
    if it never counted one; else what `outcome` says."""
    stopped = False
    with watch, ThreadPoolExecutor(1, thread_name_prefix="drop-probe") as pool:
        running = pool.submit(client.execute, f"echo $$ > {PIDFILE}; exec {command} 2>&1")
        with contextlib.suppress(WaitTimeout):  # the client's own timeout passed: its outcome tells
            retry(lambda _: running.done() or watch.state()[0] > 0, wait + 1, "the router to count a drop")
        try:
            result = running.result(timeout=window)
        except Pending:  # silent for the window after the count: stop waiting for the rest of wait
            client.execute(f"kill $(cat {PIDFILE})")
            stopped, result = True, running.result()
        drops, policy = watch.state()
    router = watch.router.name
    where = f"{router}'s {watch.chain} chain"
    seen, detail = outcome(*result, answered, wait)
    if stopped and seen not in ("accepted", "rejected"):  # stopped while it heard nothing
        detail = f"the client heard nothing for {window * 1000:.0f} ms after {router}'s count"
        seen = "dropped"
        if drops and policy == "drop":
            return seen, f"{where} dropped it ({drops} packet(s) past every rule, policy drop); {detail}"
    if seen != "dropped":
        return seen, detail
    if drops == 0:
        return f"lost before {router}", f"{detail}, and {where} never saw the packet: it was lost on the way"
    if policy != "drop":
        return "error", f"{detail}; {drops} packet(s) reached the end of {where}, whose policy is {policy}"
    return "dropped", f"{detail}; {where} dropped {drops} packet(s)"
