"""The connection policy (stages/policy.py), row by row, as each client sees it: from a
machine on each segment, every service port the table names is accepted or dropped.

Accepted means the exchange completed (a TCP handshake, a DNS answer, a ping reply, a DHCP
renewal answered); dropped means nothing at all came back within the wait. A TCP reset or
an ICMP error fails either way: the packet got through the firewall to a machine that does
not serve the port. A client with no route to the destination (the uplink has none into
the LAN) first adds one through gw, as an attacker next door would, and removes it after.
"""

from __future__ import annotations

import json

import pytest

from harness import CheckFailed, Family, Lab, Machine, WaitTimeout, retry
from stages.inventory import INVENTORY
from stages.policy import ROWS, Proto, Row, cidr_of
from stages.spec import LEASE

WAIT = 1  # seconds of silence that mean dropped: a lab round trip takes a tenth of a millisecond
# DHCPv6 from scratch: a router solicitation, the advertisement, a solicit (sent after a random
# delay of up to a second, RFC 8415), an advertise, a request, a reply
WAIT6 = 5


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


def attempt(client: Machine, row: Row) -> tuple[str, str]:
    """What ``client`` saw trying ``row``'s service: (outcome, what it saw)."""
    service, address = row.service, row.address
    if service.name.startswith("dhcp"):
        ifname = INVENTORY[client.name].nic(row.segment).name
        return _renewal(client, ifname) if row.family is Family.IPV4 else _solicit6(client, ifname)
    if service.name == "dns":
        flag = "+tcp" if service.proto is Proto.TCP else "+notcp"
        command = f"dig {flag} +time={WAIT} +tries=1 @{address} -p {service.port} {INVENTORY.domain} SOA"
        result = client.run(f"{command} 2>&1")  # any answer, REFUSED included, is exit 0
        return _seen(result.status, result.stdout, "an answer came back")
    if service.proto is Proto.ICMP:
        result = client.run(f"ping -n -c1 -W{WAIT} {address} 2>&1")
        return _seen(result.status, result.stdout, "a reply came back")
    if service.proto is Proto.TCP:
        result = client.run(f"timeout {WAIT} bash -c '</dev/tcp/{address}/{service.port}' 2>&1")
        return _seen(result.status, result.stdout, "the TCP handshake completed")
    raise NotImplementedError(f"no probe for {service.name}/{service.proto}: add one to {__file__}")


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id, marks=pytest.mark.machines(*r.machines))
                                 for r in ROWS])
def test_connection(lab: Lab, row: Row) -> None:
    client = lab[row.client]
    if row.route_via:  # for this attempt only: the route goes again, whatever the outcome
        route = f"{cidr_of(INVENTORY, row.address)} via {row.route_via}"
        client.succeed(f"ip route add {route}")
        try:
            seen, detail = attempt(client, row)
        finally:
            client.succeed(f"ip route del {route}")
    else:
        seen, detail = attempt(client, row)
    wanted = "accepted" if row.accepted else "dropped"
    port = f"{row.service.proto}/{row.service.port}" if row.service.port else str(row.service.proto)
    assert seen == wanted, (f"{row.client} on the {row.segment} -> {row.service.machine} "
                            f"{row.address} {row.service.name} ({port}): expected {wanted}, "
                            f"the client saw {seen}: {detail}")
