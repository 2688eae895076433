"""pas: a diskless contestant machine (the first seat of the first room) as its user sees it:
DHCP, console login, a home from rhfs0. test_rooms.py checks every seat at once."""

from __future__ import annotations

import secrets

import pytest

from harness import CheckFailed, Family, Lab, Machine
from harness.probes import console_login, dns_servers, search_domains
from scenarios.conftest import address, by_family, gw_address, seen_by_the_internet, source_seen_outside
from stages.inventory import INVENTORY
from stages.spec import DYNAMIC

PAS = INVENTORY[INVENTORY.seats()[0]].nic("lan")  # the `pas` fixture's machine
GW = str(INVENTORY["gw"].nic("lan").address)


@by_family
def test_pas_uses_its_reservation_and_gw_in_each_family(pas: Machine, family: Family) -> None:
    mine, gw = str(PAS.address_of(family)), gw_address(family)
    held = pas.addresses("lan0", family, dynamic=True)
    assert held == [mine], f"pas holds {held} in {family}, not its reservation {mine}"
    route = pas.succeed(f"ip -{family.version} route show default").split()
    assert route[:2] == ["default", "via"], f"pas has no {family} default route: {route}"
    dns = [a for a in dns_servers(pas, "lan0") if Family.of(a) is family]
    assert dns == [gw], f"pas was given {family} DNS servers {dns}, not gw {gw}"
    rhfs0 = pas.execute(f"getent ahostsv{family.version} rhfs0")[1].split()[:1]
    wanted = address("rhfs0", family)
    assert rhfs0 == [wanted], f"pas resolves the short name rhfs0 in {family} to {rhfs0}, not {wanted}"


def test_pas_is_named_by_dhcp(pas: Machine) -> None:
    domains = search_domains(pas, "lan0")
    assert INVENTORY.domain in domains, f"pas searches domains {domains}, not {INVENTORY.domain}"
    # nspawn names the machine plain (pas-r11p1): a qualified name can only come from DHCP.
    dhcp_name = f"{pas.name}.{DYNAMIC}.{INVENTORY.domain}"
    try:
        pas.wait_until_succeeds(f"test \"$(hostnamectl --transient)\" = {dhcp_name}", timeout=10)
    except CheckFailed:
        seen = pas.succeed("hostnamectl --transient").strip()
        raise AssertionError(f"pas was named {seen} by DHCP, not {dhcp_name}") from None


def test_root_takes_writes(pas: Machine) -> None:
    # that they vanish at the next boot is asserted by the reboot in the home test below
    status, _ = pas.execute("touch /etc/written-by-a-contestant && rm /etc/written-by-a-contestant")
    assert status == 0, "pas could not write to its root: a contestant machine needs a writable /"


@by_family
def test_the_uplink_sees_pas_from_gw_over_ipv4_and_as_itself_over_ipv6(pas: Machine, lab: Lab,
                                                                       family: Family) -> None:
    wanted, seen = source_seen_outside(pas.name, family), seen_by_the_internet(pas, lab, family)
    assert seen == wanted, f"the uplink saw pas's {family} request come from {seen}, not {wanted}"


@pytest.mark.fresh_lab
def test_a_users_file_lives_on_rhfs0_and_survives_a_reboot(pas: Machine, rhfs: Machine, lab: Lab) -> None:
    text = f"written-{secrets.token_hex(4)}"
    with console_login(pas, "alice") as tty:
        mounted = tty.shell("findmnt -no FSTYPE,SOURCE /home/alice")
        assert "fuse.sshfs" in mounted, f"alice logged in on pas; her home is not from rhfs0: {mounted!r}"
        tty.shell(f"echo {text} > ~/notes.txt; echo scratch > /tmp/scratch; sync")
    on_rhfs = rhfs.execute("stat -c '%U' /home/alice/notes.txt; cat /home/alice/notes.txt")[1].split()
    assert on_rhfs == ["alice", text], f"alice wrote {text!r} in her home; rhfs0 has (owner, text) {on_rhfs}"
    pas.succeed("touch /etc/written-on-the-overlay")
    pas = lab.reboot(pas.name)
    pas.wait_for_address("lan0", str(PAS.address))
    status, _ = pas.execute("test -e /etc/written-on-the-overlay")
    assert status != 0, "a file written to pas's root survived a reboot: the root is not volatile"
    with console_login(pas, "alice") as tty:
        seen = tty.shell("cat ~/notes.txt")
        assert seen == text, f"after a reboot of pas, alice's notes read {seen!r}, not {text!r}"


@pytest.mark.fresh_lab
def test_cut_off_and_restored_pas_gets_its_lease_back(pas: Machine, lab: Lab) -> None:
    lab.network.set_link(pas.name, PAS.name, up=False)
    pas.wait_until_succeeds("ip -o link show dev lan0 | grep -q NO-CARRIER", timeout=10)
    pas.fail(f"ping -c1 -W1 {GW}")
    lab.network.set_link(pas.name, PAS.name, up=True)
    pas.wait_for_address("lan0", str(PAS.address), timeout=30)
    pas.wait_until_succeeds("getent hosts mdb", timeout=30)
