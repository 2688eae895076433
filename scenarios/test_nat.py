"""NAT, and its absence: the LAN reaches the uplink through gw in both families; over IPv4
the uplink sees gw's address (masquerade), over IPv6 the client's own (the prefix is routed,
not translated). Path MTU discovery works across gw in both. (What the uplink may open into
the LAN, nothing, is in test_policy.py.)"""

from __future__ import annotations

from harness import Family, Lab, Machine
from scenarios.conftest import by_family, seen_by_the_internet, source_seen_outside
from stages.spec import FAR, NARROW_MTU


@by_family
def test_the_uplink_sees_lan_requests_from_gw_over_ipv4_and_from_the_client_over_ipv6(
        web: Machine, lab: Lab, family: Family) -> None:
    wanted, seen = source_seen_outside("web", family), seen_by_the_internet(web, lab, family)
    why = "gw: NAT" if family is Family.IPV4 else "web itself: no NAT"
    assert seen == wanted, f"internet: expected web's {family} request to come from {wanted} ({why}), " \
                           f"it came from {seen}"


@by_family
def test_a_narrower_link_beyond_the_uplink_teaches_a_lan_client_its_path_mtu(web: Machine,
                                                                             family: Family) -> None:
    """Path MTU discovery across gw: the internet routes FAR over a NARROW_MTU-byte link and
    answers a bigger packet that may not be fragmented with packet-too-big (IPv6; routers
    never fragment) or fragmentation-needed (IPv4, DF set). gw must pass that error back as
    related to the client's flow; else the client never learns, and its big packets vanish."""
    far, v = str(FAR[family].network_address + 2), family.version
    size = NARROW_MTU + 100  # the ping's payload: with its headers, bigger than the narrow link
    # Each try sends one such packet (ping fails: nothing answers beyond the link), then reads
    # the route to FAR, which shows the path MTU the kernel learnt; on timeout, the last one.
    web.wait_until_succeeds(
        f"ping -{v} -M do -c 1 -W 1 -s {size} {far} >/dev/null 2>&1; r=$(ip -{v} route get {far}); "
        f"echo \"$r\"; echo \"$r\" | grep -q ' mtu {NARROW_MTU}'", timeout=15)
