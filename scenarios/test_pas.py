"""pas: a diskless contestant machine as its user sees it: DHCP, console login, a home from rhfs0."""

from __future__ import annotations

import secrets

import pytest

from harness.lab import Lab
from harness.machine import Machine
from stages.generate import DYNAMIC
from stages.inventory import INVENTORY

PAS = INVENTORY["pas-r11p11"].nic("lan")
GW = str(INVENTORY["gw"].nic("lan").address)


def test_lease_matches_the_reservation_with_all_options(pas: Machine) -> None:
    held = pas.addresses("lan0", dynamic=True)
    assert held == [str(PAS.address)], f"pas holds {held}, not its reservation {PAS.address}"
    assert pas.succeed("ip -4 route show default").split()[:3] == ["default", "via", GW]
    assert pas.succeed("resolvectl dns lan0").split()[-1] == GW
    assert pas.succeed("resolvectl domain lan0").split()[-1] == INVENTORY.domain
    assert pas.succeed("getent hosts rhfs0").split()[0] == str(INVENTORY["rhfs0"].nic("lan").address)
    # nspawn names the machine plain "pas-r11p11": a qualified name can only come from DHCP.
    dhcp_name = f"pas-r11p11.{DYNAMIC}.{INVENTORY.domain}"
    pas.wait_until_succeeds(f"test \"$(hostnamectl --transient)\" = {dhcp_name}", timeout=10)


def test_root_is_read_only_with_a_volatile_overlay(pas: Machine) -> None:
    mounts = pas.succeed("findmnt -no FSTYPE,OPTIONS /")
    assert mounts.startswith("overlay"), mounts


def test_the_uplink_sees_pas_coming_from_gw(pas: Machine, lab: Lab) -> None:
    marker = f"pas-{secrets.token_hex(3)}"
    status = pas.succeed(f"curl -s -o /dev/null -w '%{{http_code}}' 'http://10.0.0.1/generate_204?{marker}'")
    assert status == "204"
    seen = lab["internet"].succeed(f"grep -F '{marker}' /var/log/nginx/clients.log").split()[0]
    assert seen == str(INVENTORY["gw"].nic("uplink").address)


@pytest.mark.fresh_lab
def test_a_users_file_lives_on_rhfs0_and_survives_a_reboot(pas: Machine, rhfs: Machine, lab: Lab) -> None:
    text = f"written-{secrets.token_hex(4)}"
    with pas.console() as tty:
        tty.login("alice", "alice")
        assert "fuse.sshfs" in tty.shell("findmnt -no FSTYPE /home/alice")
        tty.shell(f"echo {text} > ~/notes.txt; echo scratch > /tmp/scratch; sync")
    on_rhfs = rhfs.succeed("stat -c '%U' /home/alice/notes.txt; cat /home/alice/notes.txt").split()
    assert on_rhfs == ["alice", text]
    pas.succeed("touch /etc/written-on-the-overlay")
    pas = lab.reboot("pas-r11p11")
    pas.wait_for_address("lan0", str(PAS.address))
    pas.fail("test -e /etc/written-on-the-overlay")  # the root is volatile
    with pas.console() as tty:
        tty.login("alice", "alice")
        assert tty.shell("cat ~/notes.txt") == text  # the home is not


@pytest.mark.fresh_lab
def test_cut_off_and_restored_pas_gets_its_lease_back(pas: Machine, lab: Lab) -> None:
    lab.network.set_link("pas-r11p11", "lan0", up=False)
    pas.wait_until_succeeds("ip -o link show dev lan0 | grep -q NO-CARRIER", timeout=10)
    pas.fail(f"ping -c1 -W1 {GW}")
    lab.network.set_link("pas-r11p11", "lan0", up=True)
    pas.wait_for_address("lan0", str(PAS.address), timeout=30)
    pas.wait_until_succeeds("getent hosts mdb", timeout=30)
