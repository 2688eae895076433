"""DHCP, in each family: every DHCP client of the inventory holds exactly the lease gw owes
it (its reservation and every option, as the client's systemd-networkd recorded them: from
Kea DHCPv4, or from Kea DHCPv6 and gw's router advertisements) and uses it; the lease names
it in DNS; a stranger gets a pool address and a name; gw keeps its leases across a restart.

The rows come from the inventory: every interface with ``config = "dhcp"`` is a client, in
each family it has an address of.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from harness import CheckFailed, Family, Lab, Machine, WaitTimeout, retry
from harness.core import proc
from harness.engine.evidence import Capture
from harness.model.inventory import Config, Config6, Nic, eui64
from harness.probes import dig, granted
from harness.probes import kea_leases as kea_lease_rows
from harness.probes import networkd_lease6 as lease6
from scenarios.conftest import by_family, lease, one_seat_for_all
from stages.common import wait_for_lease
from stages.inventory import INVENTORY
from stages.policy import router
from stages.spec import DYNAMIC, LEASE, PREFERRED

GW = router(INVENTORY)
LAN = INVENTORY.segments["lan"]
RECORD = {Family.IPV4: "A", Family.IPV6: "AAAA"}


def _dhcp(nic: Nic, family: Family) -> bool:
    return nic.config is Config.DHCP if family is Family.IPV4 else nic.config6 is Config6.DHCP


CLIENTS = [(host.name, nic, family) for host in one_seat_for_all(list(INVENTORY.hosts.values()))
           for nic in host.nics for family in nic.families() if _dhcp(nic, family)]


def _id(name: str, nic: Nic, family: Family) -> str:
    several = sum(n == name and f is family for n, _, f in CLIENTS) > 1
    return f"{family}-{name}-{nic.name}" if several else f"{family}-{name}"


def clients(family: Family | None = None) -> pytest.MarkDecorator:
    """Parametrize a test over the DHCP clients (of ``family``, else of every family)."""
    rows = [c for c in CLIENTS if family in (None, c[2])]
    return pytest.mark.parametrize("machine, nic, family", rows, ids=[_id(*c) for c in rows],
                                   indirect=["machine"])


def owed(name: str, nic: Nic, family: Family) -> dict[str, str]:
    """The lease ``name`` should hold on ``nic`` in ``family``, keyed as `lease` and `lease6`
    record it."""
    server = str(GW.nic(nic.segment).address_of(family))
    if family is Family.IPV6:
        return {
            "ADDRESS": str(nic.address6),  # its reservation
            "DNS": server, "DOMAIN_SEARCH_LIST": INVENTORY.domain,
            # gw advertises itself as the router, from its link-local address
            "ROUTER": str(eui64(ipaddress.IPv6Network("fe80::/64"), GW.nic(nic.segment).mac)),
            "LIFETIME": str(LEASE), "PREFERRED": str(PREFERRED),
        }
    return {
        "ADDRESS": str(nic.address),  # its reservation
        "NETMASK": str(LAN.network(family).netmask),
        "ROUTER": server, "SERVER_ADDRESS": server, "DNS": server,
        "DOMAINNAME": INVENTORY.domain, "DOMAIN_SEARCH_LIST": INVENTORY.domain,
        "LIFETIME": str(LEASE), "T1": str(LEASE // 4), "T2": str(LEASE // 2),
        # Kea replaces every client's name with its reservation's, qualified in the DDNS zone
        "HOSTNAME": f"{name}.{DYNAMIC}.{INVENTORY.domain}",
    }


OPTIONS = [(c, option) for c in CLIENTS for option in owed(*c)]


@pytest.mark.parametrize("machine, nic, family, option", [(*c, o) for c, o in OPTIONS],
                         ids=[f"{_id(*c)}-{o.lower()}" for c, o in OPTIONS], indirect=["machine"])
def test_client_received_the_option(machine: Machine, nic: Nic, family: Family, option: str) -> None:
    wanted = owed(machine.name, nic, family)[option]
    held = (lease(machine, nic.name) if family is Family.IPV4 else lease6(machine, nic.name)).get(option)
    logged = family is Family.IPV6 and option in ("LIFETIME", "PREFERRED")
    assert granted(held, int(wanted)) if logged else held == wanted, (
        f"{machine.name}/{nic.name}: expected {family} DHCP to give {option}={wanted}, the client has "
        f"{option}={held}")


@clients()
def test_client_uses_its_lease(machine: Machine, nic: Nic, family: Family) -> None:
    who, server = f"{machine.name}/{nic.name}", str(GW.nic(nic.segment).address_of(family))
    held = machine.addresses(nic.name, family, dynamic=True)
    mine = str(nic.address_of(family))
    assert held == [mine], f"{who}: expected to hold {mine} by DHCP, holds {held}"
    route = machine.succeed(f"ip -{family.version} route show default").split()
    via = server if family is Family.IPV4 else owed(machine.name, nic, family)["ROUTER"]
    assert route[:5] == ["default", "via", via, "dev", nic.name], \
        f"{who}: expected a default route via {via}, has {' '.join(route) or 'none'}"
    resolvers = machine.succeed(f"resolvectl dns {nic.name}").partition(":")[2].split()
    assert [r for r in resolvers if Family.of(r) is family] == [server], \
        f"{who}: expected to resolve through {server} in {family}, uses {resolvers}"
    domains = machine.succeed(f"resolvectl domain {nic.name}").partition(":")[2].split()
    assert domains == [INVENTORY.domain], f"{who}: expected the search domain {INVENTORY.domain}, " \
                                          f"uses {domains}"


@clients()
def test_the_lease_names_the_client_in_dns(web: Machine, machine: Machine, nic: Nic, family: Family) -> None:
    # Kea tells BIND (DDNS) the reservation's name for each lease: A and AAAA side by side.
    name, dns = f"{machine.name}.{DYNAMIC}.{INVENTORY.domain}", str(GW.nic(nic.segment).address_of(family))
    answer = dig(web, name, RECORD[family], server=dns)
    assert answer.records == [str(nic.address_of(family))], \
        f"web asked gw ({dns}) for {name} {RECORD[family]}: expected {nic.address_of(family)}, got {answer}"


LEASES = {Family.IPV4: "/var/lib/kea/kea-leases4.csv", Family.IPV6: "/var/lib/kea/kea-leases6.csv"}


def kea_leases(gw: Machine, nic: Nic, family: Family) -> list[str]:
    """gw's lease file lines for ``nic`` (by its MAC)."""
    return [line for line in gw.succeed(f"cat {LEASES[family]}").splitlines() if f",{nic.mac}," in line]


@clients()
def test_gw_recorded_the_lease(gw: Machine, machine: Machine, nic: Nic, family: Family) -> None:
    leases = kea_leases(gw, nic, family)
    mine = str(nic.address_of(family))
    assert leases and leases[-1].startswith(f"{mine},"), \
        f"gw: expected a lease of {mine} to {nic.mac} in {LEASES[family]}, found {leases}"


SEATS6 = [(name, nic) for name, nic, family in CLIENTS if family is Family.IPV6 and name in INVENTORY.seats()]


# A private lab: reconfiguring the seat's link asks DHCPv4 again too, and a test of the shared
# lab that read the seat's DHCPv4 lease after this one found no HOSTNAME in it (the bench's
# ordered suite, three runs of three).
@pytest.mark.fresh_lab
@pytest.mark.parametrize("machine, nic", SEATS6[:1], ids=[n for n, _ in SEATS6[:1]], indirect=["machine"])
def test_the_dhcpv6_server_tells_a_client_to_take_its_offer_at_once(lab: Lab, machine: Machine, nic: Nic,
                                                                     tmp_path: Path) -> None:
    # The LAN's only DHCPv6 server says so with preference 255: a client requests at once
    # instead of collecting Advertises for a second (RFC 8415, 18.2.1). Seen on the wire.
    capture = Capture(lab.network, tmp_path).start()
    try:
        since = machine.succeed(f"date +%s.%N && networkctl reconfigure {nic.name}").strip()
        wait_for_lease(machine, nic.name, since, families=(Family.IPV6,))
    finally:
        pcaps = {p.path.stem: p.path for p in capture.stop()}
    decoded = proc.run(["tcpdump", "-n", "-v", "-r", str(pcaps[nic.segment])]).stdout
    mac = nic.mac.replace(":", "")
    offers = [line for line in decoded.splitlines() if "dhcp6 advertise" in line and mac in line]
    assert offers, f"{machine.name}: no DHCPv6 Advertise to its DUID ({mac}) on the wire:\n{decoded[-2000:]}"
    assert all("(preference 255)" in offer for offer in offers), (
        f"{machine.name}: expected gw's DHCPv6 Advertise to carry preference 255, got:\n" + "\n".join(offers))


WEB = INVENTORY["web"].nic("lan")
POOLS = {Family.IPV4: LAN.pool, Family.IPV6: LAN.pool6}


@pytest.mark.fresh_lab
@by_family
def test_an_unknown_mac_gets_a_pool_address_and_a_name(gw: Machine, web: Machine, family: Family) -> None:
    pool, server = POOLS[family], str(GW.nic("lan").address_of(family))
    assert pool is not None, f"the inventory gives the LAN no {family} pool: no stranger can get an address"
    # Bringing the link up is what starts networkd's DHCP clients afresh, with the new MAC: no
    # `networkctl reconfigure` after it. A reconfigure that lands just after the link-up client's
    # lease drops that address and asks for it again while its removal is pending, and
    # networkd 252 then never configures it (its journal: "Requesting DHCPv4 address
    # (removing)", then "address ... is not ready" for good): the unknown-MAC failure of issue 25.
    web.succeed("ip link set dev lan0 down && ip link set dev lan0 address 02:99:00:00:00:01 "
                "&& ip link set dev lan0 up")
    mine = str(WEB.address_of(family))
    try:
        web.wait_until_succeeds(f"ip -{family.version} -o addr show dev lan0 scope global -tentative "
                                f"| grep -v ' {mine}/' | grep -q inet", timeout=30)
    except CheckFailed:
        raise AssertionError(f"web with an unknown MAC got no {family} address besides {mine}: "
                             f"{web.addresses('lan0', family)}") from None
    held = web.addresses("lan0", family, dynamic=True)
    first, last = (int(a) for a in pool)
    assert len(held) == 1 and first <= int(ipaddress.ip_address(held[0])) <= last, (
        f"web with an unknown MAC: expected one {family} address in the pool {pool[0]}-{pool[1]}, "
        f"holds {held}")
    # Kea names it and tells BIND (DDNS): the LAN finds the stranger by name.
    name = f"{DYNAMIC}-{held[0].replace('.', '-').replace(':', '-')}.{DYNAMIC}.{INVENTORY.domain}"
    try:
        gw.wait_until_succeeds(f"dig +short @{server} {name} {RECORD[family]} | grep -qx {held[0]}",
                               timeout=20)
    except CheckFailed:
        seen = gw.execute(f"dig +short @{server} {name} {RECORD[family]}")[1].split()
        raise AssertionError(f"gw: expected DDNS to name the stranger {name} -> {held[0]}, "
                             f"DNS answers {seen or 'nothing'}") from None


STRANGERS = """[Match]
Name=st*

[Network]
DHCP={dhcp}
IPv6AcceptRA={ra}
LinkLocalAddressing=ipv6
"""
ALLOC_FAIL = {Family.IPV4: "ALLOC_ENGINE_V4_ALLOC_FAIL", Family.IPV6: "ALLOC_ENGINE_V6_ALLOC_FAIL"}


def _held(web: Machine, family: Family) -> dict[str, str]:
    """Each stranger interface of web (st*), with the pool address it holds ('' if none)."""
    names = [link["ifname"] for link in json.loads(web.succeed("ip -j link show"))
             if link["ifname"].startswith("st")]
    held = {link["ifname"]: next((a["local"] for a in link.get("addr_info", []) if a.get("scope") == "global"
                                  and a.get("dynamic") and not a.get("tentative")), "")
            for link in json.loads(web.succeed(f"ip -j -{family.version} addr show"))}  # those with one
    return {name: held.get(name, "") for name in names}


@pytest.mark.fresh_lab
@by_family
def test_the_pool_hands_out_its_first_to_its_last_address_and_nothing_past_it(gw: Machine, web: Machine,
                                                                               family: Family) -> None:
    # One more stranger than the pool has addresses left comes onto the LAN at once (macvlan
    # links of web, each with its own MAC, a DHCP client of their own): together they hold
    # the whole pool, its first and last address included, and the one left over gets none,
    # which Kea logs as an allocation failure (it does not answer: the client keeps asking).
    pool = POOLS[family]
    assert pool is not None, f"the inventory gives the LAN no {family} pool"
    first, last = (int(a) for a in pool)
    everything = {str(ipaddress.ip_address(n)) for n in range(first, last + 1)}
    latest = {row["address"]: row for row in kea_lease_rows(gw, family)}  # the memfile appends
    now = int(gw.succeed("date +%s"))
    leased = {a for a, row in latest.items()  # held by someone else already: not ours to take
              if a in everything and row.get("state") == "0" and int(row.get("expire") or 0) > now}
    count = len(everything - leased) + 1
    since = gw.succeed("date '+%Y-%m-%d %H:%M:%S'").strip()
    web.succeed("cat > /etc/systemd/network/05-strangers.network && networkctl reload",
                input=STRANGERS.format(dhcp=family.value, ra="yes" if family is Family.IPV6 else "no"))
    web.succeed(" && ".join(f"ip link add st{n} link lan0 address 02:98:00:00:{n // 256:02x}:{n % 256:02x} "
                            f"type macvlan mode bridge && ip link set st{n} up" for n in range(count)))
    try:
        retry(lambda _: sum(bool(a) for a in _held(web, family).values()) >= count - 1, 60,
              f"{count - 1} strangers on web to hold {family} pool addresses")
    except WaitTimeout:
        held = _held(web, family)
        raise AssertionError(f"of {count} strangers, {sum(map(bool, held.values()))} got a {family} pool "
                             f"address (expected {count - 1}): {held}") from None
    held = _held(web, family)
    handed = {a for a in held.values() if a}
    assert handed | leased == everything, (
        f"the {family} pool {pool[0]}-{pool[1]} was not handed out whole: missing "
        f"{sorted(everything - handed - leased, key=ipaddress.ip_address)}, outside it "
        f"{sorted(handed - everything)}")
    left = [name for name, address in held.items() if not address]
    assert len(left) == 1, f"expected one stranger past the end of the {family} pool, without address: {held}"
    try:
        gw.wait_until_succeeds(f"journalctl --since='{since}' -u {KEA[family][0]} "
                               f"| grep -q {ALLOC_FAIL[family]}", timeout=20)
    except CheckFailed:
        raise AssertionError(f"{left[0]} got no {family} address, but gw's Kea logged no allocation "
                             f"failure ({ALLOC_FAIL[family]}) since {since}") from None


KEA = {Family.IPV4: ("kea-dhcp4-server", 67, "DHCP4_STARTED", "DHCP4_LEASE_ALLOC"),
       Family.IPV6: ("kea-dhcp6-server", 547, "DHCP6_STARTED", "DHCP6_LEASE_ALLOC")}


@by_family
def test_leases_survive_a_gw_restart(gw: Machine, web: Machine, family: Family) -> None:
    # On the shared lab: a restart keeps every lease, and web holds all its addresses again after.
    unit, port, started, allocated = KEA[family]
    listening = str(GW.nic("lan").address) if family is Family.IPV4 else "ff02::1:2"
    cursor = gw.journal_cursor()
    gw.succeed(f"systemctl restart {unit}")
    gw.wait_for_open_port(port, listening, "udp")
    # Kea binds its sockets before it serves: a renewal that comes in between is never answered,
    # and networkd asks again only after a minute. It serves once it says so.
    gw.wait_for_journal(started, unit=unit, after=cursor)
    assert kea_leases(gw, WEB, family), f"gw: expected web's {family} lease ({WEB.mac}) kept across a " \
                                        "restart, found none"
    mark = gw.succeed("date +%s").strip()
    # networkd renews DHCPv4 on demand; for DHCPv6 it asks again only when reconfigured
    web.succeed("networkctl renew lan0" if family is Family.IPV4 else "networkctl reconfigure lan0")
    gw.wait_until_succeeds(f"journalctl -u {unit} --since=@{mark} | grep -q {allocated}")
    for address in (WEB.address_of(f) for f in WEB.families()):
        web.wait_for_address("lan0", str(address))
    mine = str(WEB.address_of(family))
    held = web.addresses("lan0", family, dynamic=True)
    assert held == [mine], f"web after gw's restart: expected to keep {mine}, holds {held}"
