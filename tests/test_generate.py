"""stages/generate/ and harness.model.inventory: the reference lab's configuration, derived
from its inventory."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import tomllib
from pathlib import Path

import pytest

from harness.core.errors import UsageError
from harness.model.inventory import Config, Family, Inventory
from harness.model.inventory_file import load, parse
from stages import generate, policy, spec
from stages.inventory import INVENTORY
from stages.inventory import PATH as PLAN

GW = INVENTORY.router()
LAN = INVENTORY.segments["lan"]
DOMAIN = INVENTORY.domain


def test_kea_reserves_every_dhcp_machine_with_the_lan_options() -> None:
    config = json.loads(generate.kea_dhcp4(INVENTORY))["Dhcp4"]
    subnet = config["subnet4"][0]
    assert config["interfaces-config"]["interfaces"] == [GW.nic("lan").name]
    assert subnet["subnet"] == str(LAN.cidr)
    assert LAN.pool and subnet["pools"] == [{"pool": f"{LAN.pool[0]} - {LAN.pool[1]}"}]
    clients = {h.name: (n.mac, str(n.address)) for h in INVENTORY.hosts.values() for n in h.nics
               if n.segment == "lan" and n.config is Config.DHCP and n.address}
    assert clients, "the reference lab has DHCP clients"
    assert {r["hostname"]: (r["hw-address"], r["ip-address"]) for r in subnet["reservations"]} == clients
    options = {o["name"]: o["data"] for o in subnet["option-data"]}
    gw = str(GW.nic("lan").address)
    assert options == {"routers": gw, "domain-name-servers": gw, "domain-name": DOMAIN,
                       "domain-search": DOMAIN}
    assert (config["valid-lifetime"], config["renew-timer"], config["rebind-timer"]) == \
        (spec.LEASE, spec.LEASE // 4, spec.LEASE // 2)


def test_the_generated_files_say_what_the_spec_says() -> None:
    dhcp6 = json.loads(generate.kea_dhcp6(INVENTORY))["Dhcp6"]
    assert (dhcp6["preferred-lifetime"], dhcp6["valid-lifetime"]) == (spec.PREFERRED, spec.LEASE)
    internet = generate.uplink_named(INVENTORY)
    assert f'zone "{spec.UPLINK_ZONE}"' in internet["/etc/bind/named.conf.local"]
    zone = internet[f"/etc/bind/db.{spec.UPLINK_ZONE}"].splitlines()
    assert [line.split()[2] for line in zone if line.startswith(f"{spec.UPLINK_IPV4_ONLY} ")] == ["A"]
    assert f"dns64 {spec.NAT64_PREFIX} " in generate.named_conf(INVENTORY)["/etc/bind/named.conf.options"]
    assert f"prefix {spec.NAT64_PREFIX}\n" in generate.tayga(INVENTORY)["/etc/tayga.conf"]
    far = generate.far_network(INVENTORY)
    assert far["/etc/systemd/network/20-far0.netdev"].count(f"MTUBytes={spec.NARROW_MTU}\n") == 2
    assert {f"Address={net.network_address + 1}/{net.prefixlen}" for net in spec.FAR.values()} <= \
        set(far["/etc/systemd/network/10-far0.network"].splitlines())


def test_strangers_are_named_in_the_dynamic_zone_by_signed_updates() -> None:
    dynamic = f"{spec.DYNAMIC}.{DOMAIN}"
    dhcp = json.loads(generate.kea_dhcp4(INVENTORY))["Dhcp4"]
    assert dhcp["ddns-qualifying-suffix"] == f"{dynamic}." and dhcp["ddns-generated-prefix"] == "dyn"
    ddns = json.loads(generate.kea_ddns(INVENTORY))["DhcpDdns"]
    [domain] = ddns["forward-ddns"]["ddns-domains"]
    assert (domain["name"], domain["key-name"]) == (f"{dynamic}.", "ddns-key")
    assert ddns["reverse-ddns"]["ddns-domains"] == []  # the static reverse zones stay static
    local = generate.named_conf(INVENTORY)["/etc/bind/named.conf.local"]
    assert f'zone "{dynamic}" {{ type primary; file "/var/lib/bind/db.{dynamic}"; ' \
           'allow-update { key "ddns-key"; }; };' in local


def test_zones_name_every_lan_machine_and_alias_once() -> None:
    zone = generate.zone_forward(INVENTORY).splitlines()
    reverse = [line for net in generate.reverse_zones(INVENTORY)
               for line in generate.zone_reverse(INVENTORY, net).splitlines()]
    for host in INVENTORY.hosts.values():
        named = [line for line in zone if line.split()[0] in (host.name, *host.aliases)]
        if not any(n.segment == "lan" for n in host.nics):
            assert named == [], f"{host.name} is not on the LAN"
            continue
        nic = host.nic("lan")
        a = [f"{host.name} IN A {nic.address}"] if nic.address else []  # none for an IPv6-only machine
        assert named == [*a, f"{host.name} IN AAAA {nic.address6}",
                         *(f"{alias} IN CNAME {host.name}" for alias in host.aliases)]
        if nic.address:
            assert reverse.count(f"{str(nic.address).split('.')[-1]} IN PTR {host.name}.{DOMAIN}.") == 1
        nibbles = ".".join(reversed(nic.address6.exploded.replace(":", "")[16:]))
        assert reverse.count(f"{nibbles} IN PTR {host.name}.{DOMAIN}.") == 1


def test_reverse_zones_cover_the_lan_in_24s_and_its_ipv6_prefix() -> None:
    zones = generate.reverse_zones(INVENTORY)
    assert LAN.cidr and LAN.cidr6
    whole = LAN.cidr if LAN.cidr.prefixlen <= 24 else LAN.cidr.supernet(new_prefix=24)
    v4 = [z for z in zones if isinstance(z, ipaddress.IPv4Network)]
    assert all(z.prefixlen == 24 for z in v4) and list(ipaddress.collapse_addresses(v4)) == [whole]
    assert [z for z in zones if z.version == 6] == [LAN.cidr6]
    assert generate.reverse_name(ipaddress.IPv4Network("192.168.1.0/24")) == "1.168.192.in-addr.arpa"
    assert generate.reverse_name(ipaddress.IPv6Network("2001:db8:1::/64")) == \
        "0.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"


def test_bind_recurses_for_the_lan_only_and_forwards_to_the_uplink() -> None:
    options = generate.named_conf(INVENTORY)["/etc/bind/named.conf.options"]
    upstream = INVENTORY["internet"].nic("uplink").address
    assert f"acl lan {{ {LAN.cidr}; {LAN.cidr6}; 127.0.0.0/8; ::1; }};" in options
    assert "listen-on-v6 { any; };" in options
    assert "allow-recursion { lan; };" in options and f"forwarders {{ {upstream}; }};" in options


def test_network_units_follow_the_interface_config() -> None:
    for host in INVENTORY.hosts.values():
        units = generate.network_units(INVENTORY, host)
        for nic in host.nics:
            unit = units[f"/etc/systemd/network/10-{nic.name}.network"]
            segment = INVENTORY.segments[nic.segment]
            if nic.config is Config.DHCP:
                assert f"DHCP={'ipv4' if nic.address else 'no'}" in unit and "Address=" not in unit, unit
                assert "IPv6AcceptRA=yes" in unit and "DUIDType=link-layer" in unit, unit
            else:
                assert segment.cidr and segment.cidr6
                assert f"Address={nic.address}/{segment.cidr.prefixlen}" in unit and "DHCP" not in unit, unit
                assert f"Address={nic.address6}/{segment.cidr6.prefixlen}" in unit, unit
                assert (f"Gateway={nic.gateway}" in unit) == (nic.gateway is not None), unit
                assert (f"Gateway={nic.gateway6}" in unit) == (nic.gateway6 is not None), unit
                assert "IPv6AcceptRA=no" in unit
                # gw advertises the LAN's prefix (clients ask DHCPv6 for addresses), not the uplink's
                advertises = host.router and nic.segment == "lan"
                assert ("IPv6SendRA=yes" in unit and "Managed=yes" in unit
                        and f"Prefix={segment.cidr6}" in unit) == advertises, unit
    uplink = INVENTORY["internet"].nic("uplink").name
    units = generate.network_units(INVENTORY, INVENTORY["internet"])
    internet = units[f"/etc/systemd/network/10-{uplink}.network"]
    assert f"Destination={LAN.cidr6}\nGateway={GW.nic('uplink').address6}" in internet


def test_only_the_router_forwards() -> None:
    for host in INVENTORY.hosts.values():
        forwarding = {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}
        assert INVENTORY.sysctls(host.name) == (forwarding if host.router else {})


def _chain(rules: str, name: str) -> list[str]:
    body = rules.split(f"chain {name} {{")[1].split("\n    }")[0]
    return [line.strip() for line in body.splitlines() if line.strip()]


def test_gw_accepts_what_the_policy_allows_from_each_segment_and_drops_the_rest() -> None:
    chain = _chain(generate.nftables_router(INVENTORY), "input")
    assert "type filter hook input priority filter; policy drop;" in chain
    for service in (s for s in policy.SERVICES if s.machine == GW.name):
        matches = [f"{service.proto} dport {service.port}"]
        if service.proto is policy.Proto.ICMP:
            matches = ["icmp type echo-request", "icmpv6 type echo-request"]
        for segment in INVENTORY.segments:
            for what in matches:
                rule = f'iifname "{GW.nic(segment).name}" {what} accept comment "{service.name}"'
                assert (rule in chain) == (segment in service.allowed), rule
    opened = [r for r in chain if " accept comment " in r]  # nothing else is open
    assert len(opened) == sum(len(s.allowed) * (2 if s.proto is policy.Proto.ICMP else 1)
                              for s in policy.SERVICES if s.machine == GW.name)
    # neighbour discovery from anywhere: IPv6 needs it (RFC 4890)
    assert f"icmpv6 type {{ {', '.join(generate.ICMPV6_LINK)} }} accept" in chain


def test_gw_forwards_new_connections_only_where_the_policy_routes_and_masquerades() -> None:
    rules = generate.nftables_router(INVENTORY)
    chain = _chain(rules, "forward")
    lan, wan, tun = GW.nic("lan").name, GW.nic("uplink").name, generate.NAT64_TUN
    assert chain[0].endswith("policy drop;") and chain[1] == "ct state established,related accept"
    assert chain[2:] == [*(f'iifname "{GW.nic(a).name}" oifname "{GW.nic(b).name}" accept'
                           for a, b in policy.ROUTED),
                         # the containers' /80 (spec.APPS_ROUTED6), routed to apps, inside the LAN
                         f'iifname "{lan}" oifname "{lan}" ip6 daddr {spec.APPS_ROUTED6} accept '
                         'comment "routed to apps"',
                         # the uplink's one opening (policy.INGRESS): hello's address and port alone
                         f'iifname "{wan}" oifname "{lan}" ip6 daddr {spec.APPS_CONTAINER_ADDRESS} tcp '
                         f'dport {spec.APPS_CONTAINER_PORT} accept comment "ingress {spec.APPS_CONTAINER}"',
                         # NAT64, for the IPv6-only machines: into TAYGA from the LAN, out to the uplink
                         f'iifname "{lan}" oifname "{tun}" accept comment "nat64"',
                         f'iifname "{tun}" oifname "{wan}" accept comment "nat64"']
    assert f'oifname "{GW.nic("uplink").name}" masquerade' in rules


def test_the_policy_refuses_a_table_that_contradicts_routing() -> None:
    closed = policy.Service("internet", "http", policy.Proto.TCP, 80, frozenset({"uplink"}))
    with pytest.raises(UsageError, match="internet http/tcp: allowed from lan must say what gw "
                                         "does: forward all of it"):
        policy.check(INVENTORY, (closed,))
    with pytest.raises(UsageError, match="no machine 'nosuch'"):
        policy.check(INVENTORY, (policy.Service("nosuch", "x", policy.Proto.TCP, 1, frozenset()),))


def test_the_policy_refuses_an_opening_that_is_no_exception_or_comes_from_nowhere() -> None:
    web = str(INVENTORY["web"].nic("lan").address6)
    with pytest.raises(UsageError, match="lan reaches lan already"):
        policy.check(INVENTORY, openings=(policy.Opening("lan", "web", web, policy.Proto.TCP, 80),))
    with pytest.raises(UsageError, match="unknown segment 'dmz'"):
        policy.check(INVENTORY, openings=(policy.Opening("dmz", "web", web, policy.Proto.TCP, 80),))
    # an address in no segment of the lab opens nothing (the /80 of a lab without IPv6)
    nowhere = policy.Opening("uplink", "x", "2001:db8:9::1", policy.Proto.TCP, 1)
    assert policy.ingress(INVENTORY, (nowhere,)) == ()
    [opening] = policy.ingress(INVENTORY)
    assert (opening.family, policy.inside(INVENTORY, opening)) == (Family.IPV6, "lan")


def test_an_inventory_with_two_routers_or_none_is_refused_in_one_line() -> None:
    def lab(*routers: str) -> Inventory:
        return parse({"segments": {"lan": {"cidr": "192.168.0.0/23"}}, "machines": {
            name: {"router": name in routers, "interfaces": [{"name": "lan0", "segment": "lan",
                                                              "mac": f"02:00:00:00:00:0{n}",
                                                              "address": f"192.168.0.{n}"}]}
            for n, name in enumerate(("gw", "gw2", "pc"), 1)}})

    assert lab("gw").router().name == "gw"
    with pytest.raises(UsageError, match=r"^the inventory marks gw, gw2 as router: keep router = true on "
                                         r"exactly one machine, the gateway$"):
        policy.check(lab("gw", "gw2"))  # what importing stages.policy does with stages/inventory.toml
    with pytest.raises(UsageError, match="marks no machine as router"):
        lab().router()


def test_every_policy_row_has_a_client_on_its_segment_and_a_way_there() -> None:
    rows = policy.rows(INVENTORY)
    assert {(r.segment, r.service) for r in rows} >= {
        (seg, s) for s in policy.SERVICES if s.machine == GW.name and not s.name.startswith("dhcp")
        for seg in INVENTORY.segments}, "gw's services are tried from every segment"
    assert {r.id.rsplit("-", 1)[1] for r in rows} == {"ipv4", "ipv6"}
    for row in rows:
        client = INVENTORY[row.client]
        assert row.client != row.service.machine and not client.router
        assert any(n.segment == row.segment for n in client.nics)
        assert row.accepted == (row.segment in row.service.allowed)
        if row.route_via:  # a client with no route of its own goes through gw
            assert row.route_via == str(GW.nic(row.segment).address_of(row.family))


BASE = """
[segments.lan]
cidr = "192.168.0.0/23"

[machines.a]
interfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:01", address = "192.168.0.1" }]
"""


@pytest.mark.parametrize("extra, message", [
    ('[machines.b]\ninterfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:01", '
     'address = "192.168.0.2" }]',
     r"inventory.toml:8: \[machines.b\]: b's MAC 02:00:00:00:00:01 is already used by a"),
    ('[machines.b]\ninterfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:02", '
     'address = "192.168.0.1" }]', r"\[machines.b\]: b's address 192.168.0.1 is already used by a"),
    ('[machines.b]\ninterfaces = [{ name = "lan0", segment = "wan", mac = "02:00:00:00:00:02", '
     'address = "192.168.0.2" }]', r"\[machines.b\]: unknown segment 'wan'; segments: lan"),
    ('[machines.b]\ninterfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:02", '
     'address = "10.0.0.2" }]', r"address 10.0.0.2 is outside segment lan \(192.168.0.0/23\)"),
    ('[segments.wan]\ncidr = "10.0.0.0/33"', r"inventory.toml:8: \[segments.wan\]: bad cidr"),
    ('[machines.b]\ntype = "robot"', r"\[machines.b\]: type must be one of service, user, uplink"),
    ('[machines.b]\ninterfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:02", '
     'address = "192.168.0.2", gateway = "10.0.0.1" }]', r":8: \[machines.b\]: gateway 10.0.0.1 is not on "
                                                        r"segment lan \(192.168.0.0/23\)$"),
    ('[machines.b]\ninterfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:02", '
     'address = "192.168.0.2", gateway = "192.168.0.1", config = "dhcp" }]',
     r"\[machines.b\]: lan0 takes its IPv4 address by DHCP, whose lease brings the default route: "
     r"drop gateway$"),
])
def test_bad_inventories_name_the_line_and_the_fault(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "inventory.toml"
    path.write_text(BASE + "\n" + extra + "\n")
    with pytest.raises(UsageError, match=message):
        load(path)


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "inventory.toml"
    path.write_text(BASE + "\n[machines.b\n")
    with pytest.raises(UsageError, match=r"inventory.toml: .*line 8"):
        load(path)


def test_an_alias_may_not_shadow_a_machine() -> None:
    data = {"segments": {}, "machines": {"a": {"aliases": ["b"]}, "b": {}}}
    with pytest.raises(UsageError, match="alias b is already a machine or an alias"):
        parse(data)


def test_the_topology_picture_is_current() -> None:
    docs = Path(__file__).resolve().parent.parent / "docs"
    assert (docs / "lab.dot").read_text() == generate.topology_dot(INVENTORY), \
        "docs/lab.dot is stale: run `.venv/bin/python -m stages.docs`"
    assert "<svg" in (docs / "lab.svg").read_text()


def test_docs_policy_table_is_current() -> None:
    from stages import docs

    page = (docs.DOCS / "lab.md").read_text()
    assert docs.with_policy(page) == page, "docs/lab.md's policy table is stale: run " \
                                           "`.venv/bin/python -m stages.docs`"


def test_docs_list_every_mutant() -> None:
    from stages import PIPELINE, docs

    page = (docs.DOCS / "mutants.md").read_text()
    listed = [line.split("`")[1] for line in page.splitlines() if line.startswith("| `")]
    assert listed == list(PIPELINE.mutants), "docs/mutants.md is stale: run `.venv/bin/python -m stages.docs`"


def ipv4_only() -> Inventory:
    """The reference plan as a run that keeps IPv4 alone loads it (``--families=ipv4``)."""
    return load(PLAN, families=(Family.IPV4,))


def test_an_ipv4_only_plan_generates_no_ipv6_and_no_ipv6_rows() -> None:
    inv = ipv4_only()
    assert inv.families() == (Family.IPV4,)
    files = {**generate.named_conf(inv), "nft": generate.nftables_router(inv),
             **{k: v for h in inv.hosts.values() for k, v in generate.network_units(inv, h).items()}}
    for name, text in files.items():
        assert "None" not in text and "IPv6SendRA" not in text and "AAAA" not in text, (name, text)
    assert "listen-on-v6 { none; };" in files["/etc/bind/named.conf.options"]
    assert all(z.version == 4 for z in generate.reverse_zones(inv))
    assert {r.family for r in policy.rows(inv)} == {Family.IPV4}
    assert "paste" not in inv.hosts and all(s.machine in inv.hosts for s in policy.served(inv))
    assert "dns64" not in files["/etc/bind/named.conf.options"] and "nat64" not in files["nft"]
    assert policy.ingress(inv) == () and "ingress" not in files["nft"]  # hello's opening is IPv6


def test_a_dhcp_client_takes_its_search_domain_from_dhcpv6_and_from_the_advertisement() -> None:
    [(path, unit)] = generate.dhcp_unit("lan0", ipv4=False, ipv6=True).items()
    sections = {name.strip("[]"): body.split() for name, body in re.findall(r"(\[\w+\])\n([^[]*)", unit)}
    assert "UseDomains=yes" in sections["DHCPv6"]
    assert "UseDomains=yes" in sections["IPv6AcceptRA"]  # SLAAC: networkd ignores DNSSL by default
    assert path == "/etc/systemd/network/10-lan0.network"


MIXED = """
[segments.lan]
cidr = "10.0.0.0/24"
pool = ["10.0.0.200", "10.0.0.250"]
cidr6 = "2001:db8:1::/64"
ipv6 = "slaac"

[machines.gw]
router = true
""" + ('interfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:fe", address = "10.0.0.254", '
       'address6 = "2001:db8:1::fe" }]\n')


def _unit(text: str, machine: str) -> list[str]:
    inv = parse(tomllib.loads(MIXED + text), MIXED + text)
    [unit] = generate.network_units(inv, inv[machine]).values()
    return unit.split("[Network]\n", 1)[1].split("\n\n", 1)[0].splitlines()  # its [Network] section


def test_a_static_family_keeps_its_address_and_gateway_beside_a_dynamic_one() -> None:
    v4 = _unit('[machines.a]\ninterfaces = [{ name = "eth0", segment = "lan", mac = "02:00:00:00:00:01", '
               'address = "10.0.0.1", gateway = "10.0.0.254", config6 = "slaac" }]\n', "a")
    assert v4 == ["Address=10.0.0.1/24", "Gateway=10.0.0.254", "DHCP=no",
                                              "IPv6AcceptRA=yes"]
    v6 = _unit('[machines.b]\ninterfaces = [{ name = "eth0", segment = "lan", mac = "02:00:00:00:00:02", '
               'address = "10.0.0.2", config = "dhcp", config6 = "static", address6 = "2001:db8:1::2", '
               'gateway6 = "2001:db8:1::fe" }]\n', "b")
    assert v6 == ["Address=2001:db8:1::2/64", "Gateway=2001:db8:1::fe", "DHCP=ipv4",
                                              "IPv6AcceptRA=no"]


def test_a_dhcp_client_without_an_address_asks_every_family_and_has_no_reservation() -> None:
    text = MIXED + ('[machines.c]\ninterfaces = [{ name = "eth0", segment = "lan", '
                    'mac = "02:00:00:00:00:03", config = "dhcp" }]\n')
    inv = parse(tomllib.loads(text), text)
    assert _unit(text.removeprefix(MIXED), "c")[:2] == ["DHCP=ipv4", "IPv6AcceptRA=yes"]
    assert json.loads(generate.kea_dhcp4(inv))["Dhcp4"]["subnet4"][0]["reservations"] == []
    zone = generate.zone_forward(inv)
    assert "c IN A " not in zone and f"c IN AAAA {inv['c'].nics[0].address6}" in zone  # SLAAC's, computed
    assert generate.ipv6_only(inv) == []  # it has IPv4 too: no DNS64 for it
    assert 'label="eth0 2001:db8:1' in generate.topology_dot(inv)


def test_gw_routes_the_containers_80_to_apps_and_names_them_in_a_zone_apps_updates() -> None:
    apps = INVENTORY["apps"].nic("lan").address6
    [unit] = [t for p, t in generate.network_units(INVENTORY, GW).items() if p.endswith("10-lan0.network")]
    assert f"[Route]\nDestination={spec.APPS_ROUTED6}\nGateway={apps}\n" in unit
    assert f"[IPv6RoutePrefix]\nRoute={spec.APPS_ROUTED6}\n" in unit  # clients route it via gw
    named = generate.named_conf(INVENTORY)
    zone = f"{spec.APPS_ZONE}.{INVENTORY.domain}"
    assert (f'zone "{zone}" {{ type primary; file "/var/lib/bind/db.{zone}"; '
            f'allow-update {{ key "{generate.CONTAINERS_KEY[0]}"; }}; }};'
            ) in named["/etc/bind/named.conf.local"]
    assert f"/var/lib/bind/db.{zone}" in named
    only6 = named["/etc/bind/named.conf.options"].split("acl ipv6-only")[1].splitlines()[0]
    assert spec.APPS_ROUTED6 in only6  # DNS64 for the containers too: they have no IPv4
    # a lab without apps has none of it
    other = dataclasses.replace(INVENTORY, hosts={n: h for n, h in INVENTORY.hosts.items() if n != "apps"})
    assert generate.routed6(other) is None
