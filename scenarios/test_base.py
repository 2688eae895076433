"""Scenarios on the base image: what every machine of the lab inherits from bootstrap."""

from __future__ import annotations

from harness.machine import Machine


def test_boots_with_no_failed_unit(base_machine: Machine) -> None:
    assert base_machine.succeed("systemctl is-system-running").strip() == "running"
    assert base_machine.succeed("systemctl list-units --failed --plain --no-legend") == ""


def test_is_named_by_the_lab_not_the_host(base_machine: Machine) -> None:
    assert base_machine.host.check_output("hostname") == "base"
    assert base_machine.host.file("/etc/resolv.conf").content_string == ""


def test_has_no_way_off_the_lab(base_machine: Machine) -> None:
    # Traffic rule: the only routes are the lab segment's own; nothing leads to the host's uplink.
    assert base_machine.succeed("ip -4 route show default") == ""
    assert base_machine.host.interface("host0").addresses[0] == "192.168.1.10"
    assert [i for i in base_machine.host.interface.names() if i != "lo"] == ["host0"]
    base_machine.fail("ping -c1 -W1 10.0.0.1")
