"""harness.probes: what the lab's tools print, read on sample texts, and what the assertion
helpers say when they fail. Pure: the machine is a stand-in that answers canned output."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

import pytest

from harness import probes
from harness.core.errors import CheckFailed
from harness.core.links import Family
from harness.probes import Answer


@dataclass
class Canned:
    """A stand-in for a `Machine`: each command gets the output of the first key it contains."""

    answers: dict[str, tuple[int, str]]
    name: str = "web"
    asked: list[str] = field(default_factory=list)

    def execute(self, command: str) -> tuple[int, str]:
        self.asked.append(command)
        return next(out for key, out in self.answers.items() if key in command)

    def succeed(self, command: str) -> str:
        status, out = self.execute(command)
        assert status == 0, command
        return out


DIG_CNAME = """;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 41236
;; flags: qr aa rd ra; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
; COOKIE: 5a2f4d1c9e0b7a66010000006571c0de1f2e3d4c5b6a7988 (good)
;; ANSWER SECTION:
concours.prolo.\t\t300\tIN\tCNAME\tweb.prolo.
web.prolo.\t\t300\tIN\tA\t192.168.1.100

"""
DIG_NXDOMAIN = """;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 1707
;; flags: qr aa rd ra; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 1

"""
DIG_TIMEOUT = """;; communications error to 192.168.1.254#53: timed out
;; communications error to 192.168.1.254#53: timed out
;; no servers could be reached
"""


def test_dig_reads_the_status_and_the_answer_section_in_order() -> None:
    assert probes.parse_dig(DIG_CNAME) == Answer("NOERROR", ["web.prolo.", "192.168.1.100"])
    assert probes.parse_dig(DIG_NXDOMAIN) == Answer("NXDOMAIN", [])
    assert probes.parse_dig(DIG_TIMEOUT, status=9) == Answer("NO ANSWER", [])
    assert probes.parse_dig(DIG_TIMEOUT, status=9).raw == DIG_TIMEOUT  # kept to be shown, not compared


def test_dig_asks_the_server_with_the_query_as_given() -> None:
    web = Canned({"dig ": (0, DIG_CNAME)})
    answer = probes.dig(web, "+tcp", "concours.prolo", "A", server="192.168.1.254")
    assert answer.records[-1] == "192.168.1.100"
    assert web.asked == ["dig +time=2 +tries=2 +noall +comments +answer @192.168.1.254 "
                         "+tcp concours.prolo A 2>&1"]


def test_expect_leads_with_both_answers_then_what_dig_said() -> None:
    probes.expect(probes.parse_dig(DIG_CNAME), Answer("NOERROR", ["web.prolo.", "192.168.1.100"]), "asked")
    with pytest.raises(CheckFailed) as failed:
        probes.expect(probes.parse_dig(DIG_NXDOMAIN), Answer("NOERROR", ["192.168.1.100"]),
                      "web asked gw (192.168.1.254) for web.prolo A")
    first, *rest = str(failed.value).splitlines()
    assert first == ("web asked gw (192.168.1.254) for web.prolo A: expected NOERROR ['192.168.1.100'], "
                     "the client got NXDOMAIN []")
    assert "--- dig said ---" in rest and any("status: NXDOMAIN" in line for line in rest)


NETWORKD_LEASE = """# This is private data. Do not parse.
ADDRESS=192.168.0.1
NETMASK=255.255.254.0
ROUTER=192.168.1.254
SERVER_ADDRESS=192.168.1.254
T1=900
T2=1800
LIFETIME=3600
DNS=192.168.1.254
DOMAINNAME=prolo
DOMAIN_SEARCH_LIST=prolo
HOSTNAME=pas-r11p1.dyn.prolo
CLIENTID=0102c0a8000001
"""


def test_a_networkd_lease_file_is_its_options_as_received() -> None:
    held = probes.parse_networkd_lease(NETWORKD_LEASE)
    assert held["ADDRESS"] == "192.168.0.1" and held["LIFETIME"] == "3600" and held["T1"] == "900"
    assert held["DOMAIN_SEARCH_LIST"] == "prolo" and not any(key.startswith("#") for key in held)
    pas = Canned({"ip -j link": (0, json.dumps([{"ifindex": 2, "ifname": "lan0"}])),
                  "cat /run/systemd/netif/leases/2": (0, NETWORKD_LEASE)}, name="pas-r11p1")
    assert probes.networkd_lease(pas, "lan0") == held


def _bytes(address: str) -> list[int]:
    return list(socket.inet_pton(socket.AF_INET6, address))


NETWORKCTL = {
    "Name": "lan0",
    "Addresses": [
        {"Family": 10, "Address": _bytes("fe80::c0:a8ff:fe00:1"), "PrefixLength": 64,
         "ConfigSource": "foreign"},
        {"Family": 10, "Address": _bytes("2001:db8:1::1"), "PrefixLength": 128, "ConfigSource": "DHCPv6"},
    ],
    "DNS": [{"Family": 10, "Address": _bytes("2001:db8:1::1:fe"), "ConfigSource": "DHCPv6"},
            {"Family": 2, "Address": [192, 168, 1, 254], "ConfigSource": "DHCPv4"}],
    "SearchDomains": [{"Domain": "prolo", "ConfigSource": "DHCPv6"},
                      {"Domain": "prolo", "ConfigSource": "DHCPv4"}],
    "Routes": [
        {"Family": 10, "Destination": _bytes("::"), "DestinationPrefixLength": 0,
         "Gateway": _bytes("fe80::c0:a8ff:fe01:fe"), "ConfigSource": "NDisc"},
        {"Family": 2, "Destination": [0, 0, 0, 0], "DestinationPrefixLength": 0,
         "Gateway": [192, 168, 1, 254], "ConfigSource": "DHCPv4"},
        {"Family": 10, "Destination": _bytes("2001:db8:1::"), "DestinationPrefixLength": 64,
         "ConfigSource": "NDisc"},
    ],
}
LOGGED = "lan0: DHCPv6 address 2001:db8:1::1/128 (valid for 59min 59s, preferred for 44min 59s)\n"


def test_networkd_s_dhcpv6_state_and_logged_lifetimes_read_like_a_lease() -> None:
    assert probes.parse_networkd_link6(NETWORKCTL) == {
        "ADDRESS": "2001:db8:1::1", "DNS": "2001:db8:1::1:fe", "DOMAIN_SEARCH_LIST": "prolo",
        "ROUTER": "fe80::c0:a8ff:fe01:fe"}
    nothing = {"ADDRESS": "", "DNS": "", "DOMAIN_SEARCH_LIST": "", "ROUTER": ""}
    assert probes.parse_networkd_link6({"Name": "lan0"}) == nothing
    renewed = LOGGED + LOGGED.replace("59min 59s", "1h").replace("44min 59s", "45min")
    assert probes.parse_dhcp6_lifetimes(renewed) == {"LIFETIME": "3600", "PREFERRED": "2700"}  # the last one
    assert probes.parse_dhcp6_lifetimes("") == {}
    pas = Canned({"networkctl status lan0": (0, json.dumps(NETWORKCTL)), "journalctl": (0, LOGGED)})
    held = probes.networkd_lease6(pas, "lan0")
    assert (held["ADDRESS"], held["LIFETIME"], held["PREFERRED"]) == ("2001:db8:1::1", "3599", "2699")
    assert probes.granted(held["LIFETIME"], 3600) and not probes.granted(held["LIFETIME"], 360)
    assert not probes.granted(None, 3600) and not probes.granted("3601", 3600)


@pytest.mark.parametrize("span, wanted", [("59min 59s", 3599), ("1h 2min", 3720), ("1d 2h", 93600),
                                          ("45min", 2700), ("1min 500ms", 60), ("", 0)])
def test_systemd_time_spans_in_seconds(span: str, wanted: int) -> None:
    assert probes.seconds(span) == wanted


def test_resolvectl_s_servers_and_domains_in_order() -> None:
    pas = Canned({"resolvectl dns": (0, "Link 2 (lan0): 192.168.1.254 2001:db8:1::1:fe\n"),
                  "resolvectl domain": (0, "Link 2 (lan0): prolo\n")})
    assert probes.dns_servers(pas, "lan0") == ["192.168.1.254", "2001:db8:1::1:fe"]
    assert probes.search_domains(pas, "lan0") == ["prolo"]
    assert probes.parse_resolvectl("Link 3 (wan0):\n") == []


KEA4 = """\
address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context
192.168.0.1,02:c0:a8:00:00:01,01:02:c0:a8:00:00:01,3600,1700003600,1,1,0,pas-r11p1.dyn.prolo.,0,
192.168.1.200,02:00:00:00:99:01,01:02:00:00:00:99:01,3600,1700003700,1,1,0,dyn-192-168-1-200.dyn.prolo.,0,
192.168.0.1,02:c0:a8:00:00:01,01:02:c0:a8:00:00:01,3600,1700007200,1,1,0,pas-r11p1.dyn.prolo.,0,
"""
KEA6 = ("address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,fqdn_fwd,"
        "fqdn_rev,hostname,hwaddr,state,user_context,hwtype,hwaddr_source\n"
        "2001:db8:1::1,00:03:00:01:02:c0:a8:00:00:01,3600,1700003600,1,2700,0,1,128,1,0,"
        "pas-r11p1.dyn.prolo.,02:c0:a8:00:00:01,0,,1,2\n")


def test_kea_s_lease_file_is_one_row_per_lease_keyed_by_its_header() -> None:
    leases = probes.parse_kea_leases(KEA4)
    assert [row["address"] for row in leases if row["hwaddr"] == "02:c0:a8:00:00:01"] == ["192.168.0.1"] * 2
    assert leases[1]["hostname"] == "dyn-192-168-1-200.dyn.prolo." and leases[1]["valid_lifetime"] == "3600"
    assert probes.parse_kea_leases(KEA4 + KEA4) == leases + leases  # a header met again is not a lease
    assert probes.parse_kea_leases("") == []
    [lease6] = probes.parse_kea_leases(KEA6)
    assert (lease6["address"], lease6["hwaddr"], lease6["pref_lifetime"]) == \
        ("2001:db8:1::1", "02:c0:a8:00:00:01", "2700")
    gw = Canned({"kea-leases6.csv": (0, KEA6), "kea-leases4.csv": (0, KEA4)}, name="gw")
    assert probes.kea_leases(gw, Family.IPV6) == [lease6]
    assert probes.kea_leases(gw, Family.IPV4, "/srv/kea-leases4.csv") == leases
    assert gw.asked == ["cat /var/lib/kea/kea-leases6.csv", "cat /srv/kea-leases4.csv"]


def test_ping_says_what_went_wrong_or_nothing() -> None:
    web = Canned({"192.168.1.254": (0, "1 packets transmitted, 1 received"),
                  "192.168.9.9": (1, "PING 192.168.9.9 56(84) bytes of data.\n\n"
                                     "--- 192.168.9.9 ping statistics ---\n"
                                     "1 packets transmitted, 0 received, 100% packet loss, time 0ms\n"),
                  "10.9.9.9": (2, "")})
    assert probes.ping(web, "192.168.1.254") is None
    assert probes.ping(web, "192.168.9.9") == (  # on one line, for a message
        "PING 192.168.9.9 56(84) bytes of data. --- 192.168.9.9 ping statistics --- "
        "1 packets transmitted, 0 received, 100% packet loss, time 0ms")
    assert probes.ping(web, "10.9.9.9") == "exit status 2"


def test_http_status_asks_once_in_the_family_given() -> None:
    web = Canned({"curl": (0, "204")})
    url = f"http://{probes.in_url('2001:db8:ffff::1')}/generate_204?x"
    assert probes.http_status(web, url, Family.IPV6) == "204"
    assert probes.http_status(web, "http://10.0.0.1/") == "204"
    assert web.asked == ["curl -s -6 --max-time 5 -o /dev/null -w '%{http_code}' "
                         "'http://[2001:db8:ffff::1]/generate_204?x'",
                         "curl -s --max-time 5 -o /dev/null -w '%{http_code}' http://10.0.0.1/"]
    assert probes.in_url("10.0.0.1") == "10.0.0.1"


def test_no_failed_unit_names_each_failed_unit_with_its_status() -> None:
    healthy = Canned({"--failed": (0, "")})
    probes.no_failed_unit(healthy)
    broken = Canned({"--failed": (0, "named.service loaded failed failed BIND Domain Name Server\n"),
                     "systemctl status": (0, "x named.service - BIND Domain Name Server\n  Active: failed")},
                    name="gw")
    with pytest.raises(CheckFailed, match=r"^gw: expected no failed unit, found named.service: "
                                          r"\{'named.service': 'x named.service"):
        probes.no_failed_unit(broken)


def test_assertion_helpers_hide_their_frame() -> None:
    import inspect

    for helper in (probes.expect, probes.no_failed_unit, probes.console_login):
        assert "__tracebackhide__ = True" in inspect.getsource(helper), helper.__name__
