"""The connection policy (stages/policy.py), row by row, as each client sees it: from a
machine on each segment, every service port the table names is accepted or dropped.

Accepted means the exchange completed (a TCP handshake, a DNS answer, a ping reply, a DHCP
renewal answered); dropped means gw's firewall swallowed the packet and nothing came back. A
TCP reset or an ICMP error fails either way: the packet got through the firewall to a
machine that does not serve the port.

A drop is proven where it happens, on gw, as soon as it happens: for the attempt, gw's chain
gets a last rule that counts the row's packets and decides nothing (`harness.probes.drops`);
a packet it counts went past every rule that could accept it, and the chain's policy is drop.
The client must then still hear nothing for a short window, sized to the lab's round trip,
not a second. A packet that never reached gw (lost on the way) is not a drop: without gw's
count, the row fails as "lost before gw", however silent the client.

A client with no route to the destination (the uplink has none into the LAN) first adds
one through gw, as an attacker next door would, and removes it after.
"""

from __future__ import annotations

import json

import pytest

from harness import CheckFailed, Family, Lab, Machine, WaitTimeout, retry
from harness.probes import drops
from scenarios.firewall import WAIT, chain, probe, refusal
from stages.inventory import INVENTORY
from stages.policy import ROWS, Proto, Row, cidr_of
from stages.spec import LEASE

# DHCPv6 from scratch: a router solicitation, the advertisement, a solicit (sent after a random
# delay of up to a second, RFC 8415), an advertise, a request, a reply
WAIT6 = 5


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


def attempt(client: Machine, row: Row) -> tuple[str, str]:
    """What ``client`` saw trying ``row``'s service: (outcome, what it saw)."""
    if row.service.name.startswith("dhcp"):
        ifname = INVENTORY[client.name].nic(row.segment).name
        return _renewal(client, ifname) if row.family is Family.IPV4 else _solicit6(client, ifname)
    command, answered = probe(row)
    result = client.run(f"{command} 2>&1")
    return drops.outcome(result.status, result.stdout, answered, WAIT)


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
    """Whether gw has the chain a drop of ``row`` would be counted in (`drops.filters`)."""
    return drops.filters(lab[INVENTORY.router().name], chain(row))


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
