"""stages/generate.py and harness.inventory: the reference lab's configuration, derived from its inventory."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.inventory import load, parse
from stages import generate
from stages.inventory import INVENTORY


def test_kea_reserves_every_dhcp_machine_with_the_lan_options() -> None:
    config = json.loads(generate.kea_dhcp4(INVENTORY))["Dhcp4"]
    subnet = config["subnet4"][0]
    assert config["interfaces-config"]["interfaces"] == ["lan0"]
    assert subnet["subnet"] == "192.168.0.0/23"
    assert subnet["pools"] == [{"pool": "192.168.1.200 - 192.168.1.250"}]
    assert {r["hostname"]: (r["hw-address"], r["ip-address"]) for r in subnet["reservations"]} == {
        "rhfs0": ("02:c0:a8:01:00:01", "192.168.1.1"),
        "web": ("02:c0:a8:01:00:64", "192.168.1.100"),
        "pas-r11p11": ("02:c0:a8:00:00:01", "192.168.0.1"),
    }
    options = {o["name"]: o["data"] for o in subnet["option-data"]}
    assert options == {"routers": "192.168.1.254", "domain-name-servers": "192.168.1.254",
                       "domain-name": "prolo", "domain-search": "prolo"}


def test_strangers_are_named_in_the_dynamic_zone_by_signed_updates() -> None:
    dhcp = json.loads(generate.kea_dhcp4(INVENTORY))["Dhcp4"]
    assert dhcp["ddns-qualifying-suffix"] == "dyn.prolo." and dhcp["ddns-generated-prefix"] == "dyn"
    ddns = json.loads(generate.kea_ddns(INVENTORY))["DhcpDdns"]
    [domain] = ddns["forward-ddns"]["ddns-domains"]
    assert (domain["name"], domain["key-name"]) == ("dyn.prolo.", "ddns-key")
    assert ddns["reverse-ddns"]["ddns-domains"] == []  # the static reverse zones stay static
    local = generate.named_conf(INVENTORY)["/etc/bind/named.conf.local"]
    assert 'zone "dyn.prolo" { type primary; file "/var/lib/bind/db.dyn.prolo"; ' \
           'allow-update { key "ddns-key"; }; };' in local


def test_zones_name_every_lan_machine_and_alias_once() -> None:
    zone = generate.zone_forward(INVENTORY)
    assert "gw IN A 192.168.1.254" in zone and "mdb IN CNAME gw" in zone
    assert "concours IN CNAME web" in zone and "internet" not in zone
    assert [generate.reverse_name(n) for n in generate.reverse_zones(INVENTORY)] == [
        "0.168.192.in-addr.arpa", "1.168.192.in-addr.arpa"]
    low = generate.zone_reverse(INVENTORY, ipaddress.IPv4Network("192.168.0.0/24"))
    assert low.splitlines()[-1] == "1 IN PTR pas-r11p11.prolo."


def test_bind_recurses_for_the_lan_only_and_forwards_to_the_uplink() -> None:
    options = generate.named_conf(INVENTORY)["/etc/bind/named.conf.options"]
    assert "acl lan { 192.168.0.0/23; 127.0.0.0/8; };" in options
    assert "allow-recursion { lan; };" in options and "forwarders { 10.0.0.1; };" in options


def test_network_units_follow_the_interface_config() -> None:
    gw = generate.network_units(INVENTORY, INVENTORY["gw"])
    assert "Address=10.0.0.254/24\nGateway=10.0.0.1" in gw["/etc/systemd/network/10-wan0.network"]
    web = generate.network_units(INVENTORY, INVENTORY["web"])["/etc/systemd/network/10-lan0.network"]
    assert "DHCP=ipv4" in web and "Address=" not in web


def test_the_firewall_masquerades_lan_to_uplink_only() -> None:
    rules = generate.nftables_router(INVENTORY)
    assert 'iifname "lan0" oifname "wan0" accept' in rules
    assert 'oifname "wan0" masquerade' in rules and "policy drop" in rules


BASE = """
[segments.lan]
cidr = "192.168.0.0/23"

[machines.a]
interfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:01", address = "192.168.0.1" }]
"""


@pytest.mark.parametrize("extra, message", [
    ('[machines.b]\ninterfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:01", '
     'address = "192.168.0.2" }]',
     r"inventory.toml:8: \[machines.b\]: MAC 02:00:00:00:00:01 is already used by a"),
    ('[machines.b]\ninterfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:02", '
     'address = "192.168.0.1" }]', r"\[machines.b\]: address 192.168.0.1 is already used by a"),
    ('[machines.b]\ninterfaces = [{ name = "lan0", segment = "wan", mac = "02:00:00:00:00:02", '
     'address = "192.168.0.2" }]', r"\[machines.b\]: unknown segment 'wan'; segments: lan"),
    ('[machines.b]\ninterfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:02", '
     'address = "10.0.0.2" }]', r"address 10.0.0.2 is outside segment lan \(192.168.0.0/23\)"),
    ('[segments.wan]\ncidr = "10.0.0.0/33"', r"inventory.toml:8: \[segments.wan\]: bad cidr"),
    ('[machines.b]\ntype = "robot"', r"\[machines.b\]: type must be one of service, user, uplink"),
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
