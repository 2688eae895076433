"""Services: every service is enabled, active and listening where the plan says."""

from __future__ import annotations

import pytest

from harness.lab import Lab
from harness.machine import Machine

SERVICES = [
    ("gw", "kea-dhcp4-server", "udp://192.168.1.254:67"),
    ("gw", "named", "udp://192.168.1.254:53"),
    ("gw", "named", "tcp://192.168.1.254:53"),
    ("gw", "ssh", "tcp://0.0.0.0:22"),
    ("gw", "nftables", None),
    ("rhfs0", "ssh", "tcp://0.0.0.0:22"),
    ("web", "nginx", "tcp://0.0.0.0:80"),
    ("web", "postgresql", "tcp://0.0.0.0:5432"),
    ("web", "concours", "tcp://127.0.0.1:8000"),
    ("internet", "nginx", "tcp://0.0.0.0:80"),
    ("internet", "named", "udp://10.0.0.1:53"),
]


@pytest.mark.parametrize("machine, service, socket", SERVICES,
                         ids=[f"{m}-{s}-{k or 'oneshot'}" for m, s, k in SERVICES])
def test_service_enabled_active_listening(pas: Machine, lab: Lab, machine: str, service: str,
                                          socket: str | None) -> None:
    host = lab[machine].host
    assert host.service(service).is_enabled, f"{machine}: {service} is not enabled"
    lab[machine].wait_for_unit(f"{service}.service", timeout=30)
    if socket:
        assert host.socket(socket).is_listening, f"{machine}: nothing listens on {socket}"


@pytest.mark.parametrize("machine", ["gw", "internet", "rhfs0", "web", "pas-r11p11"])
def test_no_failed_unit(pas: Machine, lab: Lab, machine: str) -> None:
    failed = lab[machine].succeed("systemctl list-units --failed --plain --no-legend").split("\n")
    units = [line.split()[0] for line in failed if line.strip()]
    why = {u: lab[machine].succeed(f"systemctl status --no-pager --lines=8 {u} || true") for u in units}
    assert not units, f"{machine}: failed units: {why}"


def test_gw_firewall_is_loaded(gw: Machine) -> None:
    rules = gw.succeed("nft list ruleset")
    assert 'oifname "wan0" masquerade' in rules
    assert "policy drop" in rules


def test_internet_answers_the_connectivity_check(gw: Machine) -> None:
    assert gw.succeed("curl -s -o /dev/null -w '%{http_code}' http://10.0.0.1/generate_204") == "204"
