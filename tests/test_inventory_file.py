"""The inventory file as a run loads it: the run's room size and families as the environment
carries them (`harness.core.settings`), and a plan loaded without an IP family (``--families``),
as if it had never
had any, without hiding a fault of the file."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from harness.core.errors import UsageError
from harness.core.settings import families, inherited
from harness.model.inventory import Family, eui64
from harness.model.inventory_file import FAMILIES_ENV, load, parse
from tests.test_inventory6 import DUAL, inventory, machine

GUESTS = '\n[segments.guests]\ncidr6 = "2001:db8:2::/64"\nipv6 = "slaac"\n' + machine(
    "guest", mac="02:00:00:00:00:03", segment="guests", config="dhcp")
V4, V6 = (Family.IPV4,), (Family.IPV6,)


def plan(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return path


def test_a_run_without_ipv6_loads_the_plan_as_if_it_had_none(tmp_path: Path) -> None:
    only6 = machine("paste", mac="02:00:00:00:00:02", address6="2001:db8:1::2", config="dhcp")
    path = plan(tmp_path, DUAL + only6 + GUESTS)
    both, v4 = load(path), load(path, families=V4)
    assert list(both.hosts) == ["gw", "pc", "paste", "guest"] and both.families() == tuple(Family)
    assert list(v4.hosts) == ["gw", "pc"] and list(v4.segments) == ["lan"] and v4.families() == V4
    assert [(n.address, n.address6, n.config6) for h in v4.hosts.values() for n in h.nics] == \
        [(ipaddress.IPv4Address(a), None, None) for a in ("192.168.0.254", "192.168.0.1")]
    assert v4.segments["lan"].cidr6 is None and v4.segments["lan"].pool6 is None
    assert v4.fingerprint() != both.fingerprint()  # so its stages have keys, and snapshots, of their own


def test_a_run_without_ipv4_keeps_the_ipv6_machines_and_the_slaac_ones(tmp_path: Path) -> None:
    only4 = machine("printer", mac="02:00:00:00:00:04", address="192.168.0.4")
    v6 = load(plan(tmp_path, DUAL + only4 + GUESTS), families=iter(V6))  # any iterable
    assert list(v6.hosts) == ["gw", "pc", "guest"] and v6.families() == V6
    guests = ipaddress.IPv6Network("2001:db8:2::/64")
    assert v6["guest"].nics[0].address6 == eui64(guests, "02:00:00:00:00:03")
    assert all(n.address is None for h in v6.hosts.values() for n in h.nics)


def test_a_machine_keeps_its_other_interfaces_and_a_room_goes_with_its_users(tmp_path: Path) -> None:
    text = (DUAL + '\n[segments.v6lab]\ncidr6 = "2001:db8:3::/64"\n'
            '\n[machines.both]\ninterfaces = [\n'
            '  { name = "lan0", segment = "lan", mac = "02:00:00:00:00:05", address = "192.168.0.5" },\n'
            '  { name = "lab0", segment = "v6lab", mac = "02:00:00:00:00:06", address6 = "2001:db8:3::6" },'
            '\n]\n'
            '\n[rooms.r6]\nsegment = "v6lab"\nmachines = "s{n}"\ncount = 2\naddress6 = "2001:db8:3::10"\n'
            'mac = "02:00:00:00:01:00"\nusers = "u{n}"\n'
            '\n[rooms.r4]\nsegment = "lan"\nmachines = "t{n}"\ncount = 2\naddress = "192.168.0.20"\n'
            'mac = "02:00:00:00:02:00"\nusers = "v{n}"\n')
    path = plan(tmp_path, text)
    v4 = load(path, families=V4)
    assert [n.name for n in v4["both"].nics] == ["lan0"]
    assert list(v4.rooms) == ["r4"] and sorted(v4.users) == ["v1", "v2"] and "s1" not in v4.hosts
    v6 = load(path, families=V6)
    assert [n.name for n in v6["both"].nics] == ["lab0"] and list(v6.rooms) == ["r6"]


def test_a_room_of_ipv4_seats_on_a_slaac_segment_keeps_its_seats_without_ipv4(tmp_path: Path) -> None:
    text = (DUAL.replace('cidr6 = "2001:db8:1::/64"\n', 'cidr6 = "2001:db8:1::/64"\nipv6 = "slaac"\n')
            .replace('pool6 = ["2001:db8:1::ff:0", "2001:db8:1::ff:ff"]\n', "")
            .replace(', address6 = "2001:db8:1::1"', "")
            + '\n[rooms.r]\nsegment = "lan"\nmachines = "s{n}"\ncount = 2\naddress = "192.168.0.20"\n'
              'mac = "02:00:00:00:02:00"\n')
    v6 = load(plan(tmp_path, text), families=V6)
    assert [v6[s].nics[0].address6 for s in ("s1", "s2")] == \
        [eui64(ipaddress.IPv6Network("2001:db8:1::/64"), f"02:00:00:00:02:0{i}") for i in (0, 1)]


@pytest.mark.parametrize("kept", [V4, tuple(Family)])
def test_a_fault_of_the_file_is_still_refused_whatever_the_run_keeps(tmp_path: Path,
                                                                      kept: tuple[Family, ...]) -> None:
    typo = machine("pc2", mac="02:00:00:00:00:09", address="192.168.0.9", segment="lna")
    with pytest.raises(UsageError, match=r"inventory.toml:\d+: \[machines.pc2\]: unknown segment 'lna'"):
        load(plan(tmp_path, DUAL + typo), families=kept)
    with pytest.raises(UsageError, match=r"\[segments.wan\]: a segment needs a network"):
        load(plan(tmp_path, DUAL + "\n[segments.wan]\n"), families=kept)


def test_a_family_the_file_never_plans_is_refused_not_an_empty_lab(tmp_path: Path) -> None:
    v4_only = '[segments.lan]\ncidr = "10.0.0.0/24"\n' + machine("a", mac="02:00:00:00:00:01",
                                                                address="10.0.0.1")
    with pytest.raises(UsageError, match=r"the run keeps ipv6 .*which no segment plans: keep ipv4$"):
        load(plan(tmp_path, v4_only), families=V6)


def test_the_families_come_from_the_environment_and_bad_ones_are_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAMILIES_ENV, "IPv6, ipv4")
    assert inherited("families") == (Family.IPV4, Family.IPV6)
    monkeypatch.setenv(FAMILIES_ENV, "ipv4")
    assert inventory(tmp_path, DUAL).families() == V4
    with pytest.raises(UsageError, match=r"--families='ip4': give ipv4, ipv6 or ipv4,ipv6"):
        families("ip4", "--families")


# A plan with every table, to misspell: the line of each key is known.
STRICT = """[lab]
domain = "office"

[segments.lan]
cidr = "10.0.0.0/24"
pool = ["10.0.0.200", "10.0.0.250"]

[machines.gw]
router = true
interfaces = [
  { name = "lan0", segment = "lan", mac = "02:00:00:00:00:fe", address = "10.0.0.254" },
  { name = "wan0", segment = "lan", mac = "02:00:00:00:00:fd", address = "10.0.0.2", gateway = "10.0.0.3" },
]

[rooms.r1]
segment = "lan"
machines = "pc{n}"
count = 2
address = "10.0.0.10"
mac = "02:00:00:00:01:00"

[users.alice]
name = "Alice"
"""
GW_KEY = 'router = true\n%s = "10.0.0.1"'
NIC_KEYS = r"\(keys: name, segment, mac, address, address6, config, config6, gateway, gateway6\)$"


@pytest.mark.parametrize("old, new, message", [
    ('domain = "office"', 'domian = "office"',
     r":2: \[lab\]: unknown key 'domian': did you mean 'domain'\? \(keys: domain\)$"),
    ('[lab]\ndomain = "office"', 'domain = "office"\n[lab]',
     r":1: the top level: unknown key 'domain': it belongs in \[lab\] \(keys: lab, segments, "),
    ("[users.alice]", "[user.alice]", r":22: the top level: unknown key 'user': did you mean 'users'\?"),
    ("pool = [", "pool4 = [", r":6: \[segments.lan\]: unknown key 'pool4': did you mean 'pool'\?"),
    ("router = true", "router = true\naliasses = []",
     r":10: \[machines.gw\]: unknown key 'aliasses': did you mean 'aliases'\?"),
    (', gateway = "10', ', gatway = "10',
     r":12: \[machines.gw\]: interface wan0: unknown key 'gatway': did you mean 'gateway'\? " + NIC_KEYS),
    ("router = true", GW_KEY % "gateway",
     r":10: \[machines.gw\]: unknown key 'gateway': it belongs in an interface"),
    ("router = true", GW_KEY % "gatway",
     r":10: \[machines.gw\]: unknown key 'gatway': did you mean 'gateway', which belongs in an interface"),
    ("count = 2", "cout = 2", r":18: \[rooms.r1\]: unknown key 'cout': did you mean 'count'\?"),
    ("count = 2", 'count = 2\ngateway = "10.0.0.1"',
     r":19: \[rooms.r1\]: unknown key 'gateway': it belongs in an interface"),
    ('name = "Alice"', 'nmae = "Alice"', r":23: \[users.alice\]: unknown key 'nmae': did you mean 'name'"),
    ('name = "Alice"', "bogus = 1",
     r":23: \[users.alice\]: unknown key 'bogus': no key is named like it \(keys: name, type\)$"),
])
def test_an_unknown_key_is_refused_on_its_line_with_the_nearest_name(tmp_path: Path, old: str, new: str,
                                                                      message: str) -> None:
    assert load(plan(tmp_path, STRICT)).domain == "office"
    assert old in STRICT
    with pytest.raises(UsageError, match="/inventory.toml" + message):
        load(plan(tmp_path, STRICT.replace(old, new, 1)))


def test_an_unknown_key_is_refused_whatever_the_run_keeps_and_in_tables_of_interfaces(tmp_path: Path) -> None:
    typo = STRICT.replace('cidr = "10.0.0.0/24"', 'cidr = "10.0.0.0/24"\ncird6 = "x"')
    with pytest.raises(UsageError, match=r":6: \[segments.lan\]: unknown key 'cird6': did you mean 'cidr6'"):
        load(plan(tmp_path, typo), families=V4)
    tables = ('[segments.lan]\ncidr = "10.0.0.0/24"\n\n[machines.a]\ntype = "service"\n\n'
              '[[machines.a.interfaces]]\nname = "eth0"\nsegment = "lan"\nmac = "02:00:00:00:00:01"\n'
              'adress = "10.0.0.1"\n')
    with pytest.raises(UsageError, match=r":11: \[machines.a\]: interface eth0: unknown key 'adress': "
                                         r"did you mean 'address'\?"):
        load(plan(tmp_path, tables))
    with pytest.raises(UsageError, match=r"^inventory: \[machines.a\]: interface \?: unknown key 'ip'"):
        parse({"machines": {"a": {"interfaces": [{"ip": "10.0.0.1"}]}}})
    with pytest.raises(UsageError, match=r"^inventory: \[segments.lan\]: it must be a table, not 3$"):
        parse({"segments": {"lan": 3}})
