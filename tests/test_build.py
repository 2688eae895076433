"""harness.engine.build.builder on real machines: what every machine a stage adds gets from the
harness (an id of
its own, no container default on host0), and a router that forwards from the inventory alone.

The lab is a small office (tests.conftest.office_inventory): laptop on ``lan``, printer on
``dmz``, the router between them; two seats boot one tree read-only, as diskless machines
do. Each test builds on a scratch store seeded with the bootstrap snapshot.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine.build import debian
from harness.engine.build.builder import Build, Builder
from harness.machines import rootfs
from harness.machines.lab import Lab
from harness.machines.store import Store
from harness.model.pipeline import Pipeline
from harness.model.stage import Stage
from tests.conftest import office_inventory

pytestmark = pytest.mark.integration

# The printer's own file for host0: a name that sorts after systemd's 80-container-host0.network.
PRINTER_NETWORK = "[Match]\nName=host0\n\n[Network]\nAddress=10.81.2.2/24\nGateway=10.81.2.1\n"
SEATS = ("seat1", "seat2")


def printer_network(build: Build) -> None:
    """give the printer its own network file and systemd-networkd"""
    build.write("printer", "/etc/systemd/network/lan.network", PRINTER_NETWORK)
    rootfs.systemctl(build.root("printer"), "enable", "systemd-networkd.service")
    rootfs.systemctl(build.root("printer"), "mask", "systemd-networkd-wait-online.service")


def office(directory: Path, *, router: bool = True) -> Pipeline:
    """bootstrap, then the office: the laptop's and the router's addresses set by the lab, the
    printer's by its own networkd file, and two seats that boot tree ``thin`` read-only."""
    inventory = office_inventory(directory, router=router)
    stage = Stage("office", machines=("router", "laptop", "printer", *SEATS), trees=("thin",),
                  sources={s: "thin" for s in SEATS}, boot_args={s: ("--volatile=overlay",) for s in SEATS},
                  prepare=printer_network)
    interfaces = {name: inventory.interfaces(name, static_addresses=name != "printer")
                  for name in inventory.hosts}
    return Pipeline([debian.base_stage(), stage], interfaces, inventory=inventory)


def machine_ids(lab: Lab) -> dict[str, str]:
    return {name: machine.succeed("cat /etc/machine-id").strip() for name, machine in lab.machines.items()}


def test_every_machine_has_an_id_of_its_own_kept_across_resumes(tmp_path: Path, seeded_store: Store,
                                                                base: Path) -> None:
    builder = Builder(seeded_store, office(tmp_path))
    snapshot = builder.ensure("office")
    with builder.lab(snapshot) as lab:
        first = machine_ids(lab)
        for seat in SEATS:  # its id given at boot, none of its units failed for it
            assert lab[seat].succeed("systemctl --failed --no-legend --plain").strip() == ""
    assert sorted(first) == sorted(["router", "laptop", "printer", *SEATS])
    assert len(set(first.values())) == len(first), first  # no two alike
    assert (base / "etc/machine-id").read_text().strip() not in first.values()  # none the base image's
    with builder.lab(snapshot) as lab:
        assert machine_ids(lab) == first  # the same machines, resumed from the same snapshot


def test_a_network_file_for_host0_counts_whatever_its_name(tmp_path: Path, seeded_store: Store) -> None:
    builder = Builder(seeded_store, office(tmp_path))
    with builder.lab(builder.ensure("office")) as lab:
        status = lab["printer"].succeed("networkctl status host0 --no-pager")
        assert "/etc/systemd/network/lan.network" in status, status
        assert "10.81.2.2/24" in lab["printer"].succeed("ip -4 -o addr show host0")


def test_the_router_forwards_from_the_inventory_alone(tmp_path: Path, seeded_store: Store) -> None:
    for router in (True, False):  # the same lab, but for router = true
        (tmp_path / str(router)).mkdir()
        builder = Builder(seeded_store, office(tmp_path / str(router), router=router))
        with builder.lab(builder.ensure("office")) as lab:
            forwards = [lab["router"].succeed(f"cat /proc/sys/net/{key}").strip()
                        for key in ("ipv4/ip_forward", "ipv6/conf/all/forwarding")]
            assert forwards == (["1", "1"] if router else ["0", "0"])
            assert lab["laptop"].succeed("cat /proc/sys/net/ipv4/ip_forward").strip() == "0"
            # its gateways, the router's, are its default routes: the lab set them with its addresses
            for family, gateway in (("-4", "10.81.1.1"), ("-6", "fd81:1::1")):
                route = lab["laptop"].succeed(f"ip {family} route show default").split()
                assert route[:3] == ["default", "via", gateway], route
            lab["printer"].succeed("ip -4 -o addr show host0 | grep -q 10.81.2.2/24")  # it would answer
            reached = lab["laptop"].run("ping -c1 -W3 10.81.2.2").status == 0
            assert reached is router, f"router = {router}: the laptop reached the printer: {reached}"
