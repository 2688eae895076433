"""The firewall policy's rows tried from a client (stages/policy.py): the command that tries
a row's service once, and a refused row proven on gw as it is refused (`refusal`, built on
`harness.probes.drops`). Shared by scenarios/test_policy.py (the LAN's and the uplink's rows)
and scenarios/test_routed6.py (the internet's way to apps's container)."""

from __future__ import annotations

from harness import Family, Machine
from harness.probes import drops
from stages.inventory import INVENTORY
from stages.policy import Proto, Row

WAIT = 1  # seconds of silence that mean dropped: a lab round trip takes a tenth of a millisecond


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


def watch(gw: Machine, client: Machine, row: Row) -> drops.DropWatch:
    """A drop counter (`drops.DropWatch`) at the end of the gw chain that ``row``'s packets
    traverse (input for gw's own ports, forward for the rest), matching only the packets of
    ``client``'s attempt at ``row``."""
    nic = INVENTORY[client.name].nic(row.segment)
    ip = "ip" if row.family is Family.IPV4 else "ip6"
    source = nic.address if row.family is Family.IPV4 else nic.address6
    match = [f'iifname "{INVENTORY[gw.name].nic(row.segment).name}"', f"{ip} daddr {row.address}",
             *([f"{ip} saddr {source}"] if source else []),
             f"{row.service.proto} dport {row.service.port}" if row.service.port else
             ("icmp type echo-request" if ip == "ip" else "icmpv6 type echo-request")]
    return drops.DropWatch(gw, chain(row), " ".join(match))


def chain(row: Row) -> str:
    """The gw chain ``row``'s packets traverse: input for gw's own ports, forward for the rest."""
    return "input" if row.service.machine == INVENTORY.router().name else "forward"


def refusal(client: Machine, gw: Machine, row: Row) -> tuple[str, str]:
    """What ``client`` saw trying ``row``'s service, which gw should drop, proven on gw
    (`harness.probes.drops.refusal`): dropped as soon as gw counts the packet past its
    chain's rules and the client then hears nothing for ten round trips to gw (at least
    0.1 s); "lost before gw" if gw never saw it."""
    command, answered = probe(row)
    router = INVENTORY.router().nic(row.segment)
    window = drops.round_trip_window(client, str(router.address if row.family is Family.IPV4
                                                 else router.address6))
    return drops.refusal(client, watch(gw, client, row), command, answered, wait=WAIT, window=window)
