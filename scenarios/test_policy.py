"""The connection policy (stages/policy.py), row by row, as each client sees it: from a
machine on each segment, every service port the table names is accepted or dropped.

Accepted means the exchange completed (a TCP handshake, a DNS answer, a ping reply, a DHCP
renewal answered); dropped means gw's firewall swallowed the packet and nothing came back. A
TCP reset or an ICMP error fails either way: the packet got through the firewall to a
machine that does not serve the port.

A drop is proven where it happens, on gw, as soon as it happens: for the attempt, gw's chain
gets a last rule that counts the row's packets and decides nothing (`DropWatch`); a packet it
counts went past every rule that could accept it, and the chain's policy is drop. The client
must then still hear nothing for a short window (`silence`), sized to the lab's round trip,
not a second. A packet that never reached gw (lost on the way) is not a drop: without gw's
count, the row fails as "lost before gw", however silent the client.

A client with no route to the destination (the uplink has none into the LAN) first adds
one through gw, as an attacker next door would, and removes it after.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Pending

import pytest

from harness import CheckFailed, Family, Lab, Machine, WaitTimeout, retry
from harness.model.inventory import Nic
from stages.inventory import INVENTORY
from stages.policy import ROWS, Proto, Row, cidr_of
from stages.spec import LEASE

WAIT = 1  # seconds of silence that mean dropped: a lab round trip takes a tenth of a millisecond
# DHCPv6 from scratch: a router solicitation, the advertisement, a solicit (sent after a random
# delay of up to a second, RFC 8415), an advertise, a request, a reply
WAIT6 = 5
SILENCE = 0.1  # seconds the client must hear nothing once gw dropped its packet (or ten round trips)
PIDFILE = "/run/harness-policy-probe.pid"


def _seen(status: int, out: str, answered: str) -> tuple[str, str]:
    """Outcome from a probe's exit status and output: ``answered``, dropped, or rejected."""
    text = " ".join(out.split())[-300:] or f"exit status {status}"
    if status == 0:
        return "accepted", answered
    if any(word in out.lower() for word in ("refused", "unreachable", "prohibited")):
        return "rejected", text
    if status == 124 or "timed out" in out or (status == 1 and "0 received" in out):
        return "dropped", f"no answer within {WAIT}s ({text})"
    return "error", text


def _lifetime(client: Machine, ifname: str) -> int:
    links = json.loads(client.succeed(f"ip -j -4 addr show dev {ifname}"))
    return max((a["valid_life_time"] for link in links for a in link["addr_info"] if a.get("dynamic")),
               default=0)  # no lease at all: nothing left


def _renewal(client: Machine, ifname: str) -> tuple[str, str]:
    """Renew ``client``'s DHCPv4 lease: accepted if gw answers (the lease's lifetime starts
    again)."""
    def lifetime() -> int:
        return _lifetime(client, ifname)

    retry(lambda _: lifetime() < LEASE, 5, f"{client.name}: its lease to age")
    before = lifetime()
    client.succeed(f"networkctl renew {ifname}")
    try:
        retry(lambda _: lifetime() > before, WAIT, f"{client.name}: a DHCP answer")
    except WaitTimeout:
        return "dropped", f"no answer within {WAIT}s: the lease still ages ({lifetime()}s left)"
    return "accepted", f"the lease was renewed ({before}s left -> {lifetime()}s)"


def _solicit6(client: Machine, ifname: str) -> tuple[str, str]:
    """Ask DHCPv6 for a lease again (networkd renews DHCPv6 only when reconfigured): accepted
    if one comes within `WAIT6`; the machine then has all its addresses back."""
    mark = client.succeed("date +%s.%N").strip()
    client.succeed(f"networkctl reconfigure {ifname}")
    try:
        client.wait_until_succeeds(f"journalctl -q -u systemd-networkd --since=@{mark} | "
                                   f"grep -q '{ifname}: DHCPv6 address'", timeout=WAIT6)
    except CheckFailed:
        return "dropped", f"no DHCPv6 lease within {WAIT6}s of asking again"
    for address in (a for a in (INVENTORY[client.name].nic("lan").address,
                                INVENTORY[client.name].nic("lan").address6) if a):
        client.wait_for_address(ifname, str(address))
    return "accepted", "a DHCPv6 lease came back"


def probe(row: Row) -> tuple[str, str]:
    """The command that tries ``row``'s service once (giving up after `WAIT`), and what its
    success means."""
    service, address = row.service, row.address
    if service.name == "dns":  # any answer, REFUSED included, is exit 0
        flag = "+tcp" if service.proto is Proto.TCP else "+notcp"
        return (f"dig {flag} +time={WAIT} +tries=1 @{address} -p {service.port} {INVENTORY.domain} SOA",
                "an answer came back")
    if service.proto is Proto.ICMP:
        return f"ping -n -c1 -W{WAIT} {address}", "a reply came back"
    if service.proto is Proto.TCP:
        return f"timeout {WAIT} bash -c '</dev/tcp/{address}/{service.port}'", "the TCP handshake completed"
    raise NotImplementedError(f"no probe for {service.name}/{service.proto}: add one to {__file__}")


def attempt(client: Machine, row: Row) -> tuple[str, str]:
    """What ``client`` saw trying ``row``'s service: (outcome, what it saw)."""
    if row.service.name.startswith("dhcp"):
        ifname = INVENTORY[client.name].nic(row.segment).name
        return _renewal(client, ifname) if row.family is Family.IPV4 else _solicit6(client, ifname)
    command, answered = probe(row)
    result = client.run(f"{command} 2>&1")
    return _seen(result.status, result.stdout, answered)


class DropWatch:
    """A last rule in the gw chain that ``row``'s packets traverse, matching them and deciding
    nothing: each packet it counts was accepted by no rule before it, so the chain's policy
    decides its fate. Removed on leaving (the lab is as it was)."""

    def __init__(self, gw: Machine, row: Row, client: Nic) -> None:
        self.gw = gw
        self.chain = "input" if row.service.machine == gw.name else "forward"
        self.comment = f"harness-drop-{secrets.token_hex(4)}"
        ip = "ip" if row.family is Family.IPV4 else "ip6"
        source = client.address if row.family is Family.IPV4 else client.address6
        match = [f'iifname "{INVENTORY[gw.name].nic(row.segment).name}"', f"{ip} daddr {row.address}",
                 *([f"{ip} saddr {source}"] if source else []),
                 f"{row.service.proto} dport {row.service.port}" if row.service.port else
                 ("icmp type echo-request" if ip == "ip" else "icmpv6 type echo-request")]
        self.rule = " ".join(match)

    def __enter__(self) -> DropWatch:
        added = self.gw.succeed(f"nft --echo --handle add rule inet filter {self.chain} {self.rule} "
                                f"counter comment {self.comment}")
        self.handle = added.rsplit("# handle", 1)[1].split()[0]
        return self

    def __exit__(self, *exc: object) -> None:
        self.gw.succeed(f"nft delete rule inet filter {self.chain} handle {self.handle}")

    def state(self) -> tuple[int, str]:
        """Packets of the row that reached the chain's end so far, and the chain's policy."""
        listing = json.loads(self.gw.succeed(f"nft -j list chain inet filter {self.chain}"))["nftables"]
        rules = (i["rule"] for i in listing if "rule" in i)
        rule: dict[str, list[dict[str, dict[str, int]]]] = \
            next((r for r in rules if r.get("comment") == self.comment), {})
        drops = next((e["counter"]["packets"] for e in rule.get("expr", []) if "counter" in e), 0)
        policy = next((i["chain"].get("policy", "") for i in listing if "chain" in i), "")
        return int(drops), str(policy)


def silence(client: Machine, row: Row) -> float:
    """How long the client must hear nothing once gw dropped its packet: `SILENCE`, or ten of
    the lab's round trips from the client to gw on its segment, if longer (a loaded host)."""
    gw = INVENTORY.router().nic(row.segment)
    target = gw.address if row.family is Family.IPV4 else gw.address6
    pinged = client.run(f"ping -n -q -c3 -i0.01 -W1 {target}")
    if pinged.status != 0:  # gw unreachable: the attempt's outcome will say so
        return SILENCE
    worst = float(pinged.stdout.rsplit("=", 1)[1].split("/")[2]) / 1000  # rtt min/avg/max/mdev = ... ms
    return max(SILENCE, 10 * worst)


def refusal(client: Machine, gw: Machine, row: Row) -> tuple[str, str]:
    """What ``client`` saw trying ``row``'s service, which gw should drop, proven on gw (see
    the module's doc): dropped as soon as gw counts the packet past its chain's rules and the
    client then hears nothing for `silence`; "lost before gw" if gw never saw it."""
    command, answered = probe(row)
    window = silence(client, row)
    killed = False
    with DropWatch(gw, row, INVENTORY[client.name].nic(row.segment)) as watch, \
            ThreadPoolExecutor(1, thread_name_prefix="policy-probe") as pool:
        running = pool.submit(client.run, f"echo $$ > {PIDFILE}; exec {command} 2>&1")
        with contextlib.suppress(WaitTimeout):  # the client's own timeout passed: its outcome tells
            retry(lambda _: running.done() or watch.state()[0] > 0, WAIT + 1, f"gw to drop {row.id}")
        try:
            result = running.result(timeout=window)
        except Pending:  # silent for the window after the drop: stop waiting for the rest of WAIT
            client.run(f"kill $(cat {PIDFILE})")
            killed, result = True, running.result()
        drops, policy = watch.state()
    where = f"gw's {watch.chain} chain"
    seen, detail = _seen(result.status, result.stdout, answered)
    if killed and seen not in ("accepted", "rejected"):  # stopped while it heard nothing
        seen, detail = "dropped", f"the client heard nothing for {window * 1000:.0f} ms after gw's count"
        if drops and policy == "drop":
            return seen, f"{where} dropped it ({drops} packet(s) past every rule, policy drop); {detail}"
    if seen != "dropped":
        return seen, detail
    if drops == 0:
        return "lost before gw", f"{detail}, and {where} never saw the packet: it was lost on the way"
    if policy != "drop":
        return "error", f"{detail}; {drops} packet(s) reached the end of {where}, whose policy is {policy}"
    return "dropped", f"{detail}; {where} dropped {drops} packet(s)"


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id, marks=pytest.mark.machines(*r.machines))
                                 for r in ROWS])
def test_connection(lab: Lab, row: Row) -> None:
    client, gw = lab[row.client], lab[INVENTORY.router().name]
    proven = not row.accepted and not row.service.name.startswith("dhcp") and _filtered(lab, row)
    if row.route_via:  # for this attempt only: the route goes again, whatever the outcome
        route = f"{cidr_of(INVENTORY, row.address)} via {row.route_via}"
        client.succeed(f"ip route add {route}")
        try:
            seen, detail = refusal(client, gw, row) if proven else attempt(client, row)
        finally:
            client.succeed(f"ip route del {route}")
    else:
        seen, detail = refusal(client, gw, row) if proven else attempt(client, row)
    wanted = "accepted" if row.accepted else "dropped"
    port = f"{row.service.proto}/{row.service.port}" if row.service.port else str(row.service.proto)
    assert seen == wanted, (f"{row.client} on the {row.segment} -> {row.service.machine} "
                            f"{row.address} {row.service.name} ({port}): expected {wanted}, "
                            f"the client saw {seen}: {detail}")


def _filtered(lab: Lab, row: Row) -> bool:
    """Whether gw has the chain a drop of ``row`` would be counted in (``inet filter``); a gw
    without it filters nothing of that family, and only the client's silence can tell."""
    chain = "input" if row.service.machine == INVENTORY.router().name else "forward"
    return lab[INVENTORY.router().name].run(f"nft list chain inet filter {chain}").status == 0


# A refused row whose client reaches the service straight through gw: in a lab of IPv4 alone
# there is none (the uplink reaches the LAN only through gw's own address), and no test.
STRAIGHT = [pytest.param(r, id=r.id, marks=pytest.mark.machines(*r.machines)) for r in ROWS
            if not r.accepted and r.route_via is None and r.service.proto is Proto.TCP
            and r.service.machine != INVENTORY.router().name][:1]


@pytest.mark.parametrize("row", STRAIGHT)
def test_a_packet_lost_before_gw_is_not_a_drop(lab: Lab, row: Row) -> None:
    """The client sends its packet to a MAC no machine has (its neighbour entry for gw made
    wrong, put right after): the client hears nothing, but gw never saw the packet, so it is
    no proof of gw's firewall."""
    client = lab[row.client]
    route = json.loads(client.succeed(f"ip -j route get {row.address}"))[0]
    hop, dev = route.get("gateway", row.address), route["dev"]
    client.succeed(f"ip neigh replace {hop} lladdr 02:00:00:00:de:ad dev {dev} nud permanent")
    try:
        seen, detail = refusal(client, lab[INVENTORY.router().name], row)
    finally:
        client.succeed(f"ip neigh del {hop} dev {dev}")
    assert seen == "lost before gw", \
        f"{row.id}, sent to a MAC no one has: the client saw {seen}: {detail}"
