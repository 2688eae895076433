"""Rooms: an inventory's rooms expand into ordinary machines and users; bad ones are refused
with the room's line; `harness.machines.fleet` reports every machine; `harness.machines.limits`
raises or refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from harness.core.errors import CheckFailed, HarnessError, UsageError
from harness.machines import fleet, limits
from harness.model.inventory import Config
from harness.model.inventory_file import ROOM_SIZE_ENV, load
from stages import PIPELINE, generate
from stages.inventory import INVENTORY

INVENTORY_HEAD = """[segments.lan]
cidr = "192.168.0.0/24"
pool = ["192.168.0.200", "192.168.0.250"]

[machines.gw]
interfaces = [{ name = "lan0", segment = "lan", mac = "02:00:00:00:00:fe", address = "192.168.0.254" }]
"""
ROOM = """
[rooms.r1]
segment = "lan"
machines = "pc-r1p{n}"
count = 3
address = "192.168.0.10"
mac = "02:00:00:00:01:0a"
users = "r1p{n}"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.toml"
    path.write_text(text)
    return path


def test_a_room_expands_into_machines_with_consecutive_addresses_macs_and_users(tmp_path: Path) -> None:
    inv = load(write(tmp_path, INVENTORY_HEAD + ROOM))
    assert inv.seats() == ("pc-r1p1", "pc-r1p2", "pc-r1p3")
    nics = [inv[seat].nics[0] for seat in inv.seats()]
    assert [str(n.address) for n in nics] == ["192.168.0.10", "192.168.0.11", "192.168.0.12"]
    assert [n.mac for n in nics] == ["02:00:00:00:01:0a", "02:00:00:00:01:0b", "02:00:00:00:01:0c"]
    assert {(n.name, n.config) for n in nics} == {("lan0", Config.DHCP)}
    assert [inv.room_of(s).user_of(s) for s in inv.seats()] == ["r1p1", "r1p2", "r1p3"]
    assert {inv.users[u].kind for u in ("r1p1", "r1p2", "r1p3")} == {"contestant"}
    assert inv[inv.seats()[0]].room == "r1"


def test_the_room_size_overrides_every_count_and_changes_the_fingerprint(tmp_path: Path) -> None:
    path = write(tmp_path, INVENTORY_HEAD + ROOM)
    small, big = load(path), load(path, room_size=40)
    assert len(big.seats()) == 40 and big.seats()[-1] == "pc-r1p40"
    assert small.fingerprint() != big.fingerprint()
    assert load(path).fingerprint() == small.fingerprint()


def test_the_room_size_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, INVENTORY_HEAD + ROOM)
    monkeypatch.setenv(ROOM_SIZE_ENV, "5")
    assert len(load(path).seats()) == 5
    monkeypatch.setenv(ROOM_SIZE_ENV, "many")
    with pytest.raises(UsageError, match=f"{ROOM_SIZE_ENV}='many': give a whole number"):
        load(path)


@pytest.mark.parametrize("size, message", [
    (191, r"inventory.toml:8: \[rooms.r1\]: pc-r1p191's address 192.168.0.200 is inside the pool"),
    (245, r"inventory.toml:7: \[rooms.r1\]: pc-r1p245's address 192.168.0.254 is already used by gw"),
    (246, r"inventory.toml:7: \[rooms.r1\]: 246 machines from 192.168.0.10 overflow segment lan "
          r"\(192.168.0.0/24\): the last would be 192.168.0.255.*--room-size"),
])
def test_a_room_that_does_not_fit_is_refused_at_its_line(tmp_path: Path, size: int, message: str) -> None:
    without_pool = INVENTORY_HEAD.replace('pool = ["192.168.0.200", "192.168.0.250"]\n', "")
    path = write(tmp_path, (INVENTORY_HEAD if size == 191 else without_pool) + ROOM)
    with pytest.raises(UsageError, match=message):
        load(path, room_size=size)


@pytest.mark.parametrize("change, message", [
    (("count = 3", "count = 0"), "count must be a whole number of machines, 1 or more"),
    (('machines = "pc-r1p{n}"', 'machines = "pc-r1p"'), r"machines must be a pattern with \{n\}"),
    (('address = "192.168.0.10"\n', ""), "a room needs its first seat's address"),
    (('users = "r1p{n}"', 'users = "r1p{n}"\n[users.r1p2]\nname = "taken"'), "user r1p2 of seat pc-r1p2"),
])
def test_bad_rooms_name_the_room_and_the_fault(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=rf"\[rooms.r1\]: {message}"):
        load(write(tmp_path, INVENTORY_HEAD + ROOM.replace(*change)))


def test_the_reference_lab_names_no_seat_outside_its_inventory() -> None:
    assert PIPELINE["pas"].machines == INVENTORY.seats()
    assert PIPELINE.rooms == {name: room.machines for name, room in INVENTORY.rooms.items()}
    dhcp = json.loads(generate.kea_dhcp4(INVENTORY))["Dhcp4"]
    reservations = {r["hostname"] for r in dhcp["subnet4"][0]["reservations"]}
    assert set(INVENTORY.seats()) <= reservations
    zone = generate.zone_forward(INVENTORY)
    assert all(f"{seat} IN A " in zone for seat in INVENTORY.seats())


def test_a_bigger_room_size_gives_every_stage_after_bootstrap_new_keys(tmp_path: Path) -> None:
    def keys(size: str) -> dict[str, str]:
        code = "import json, stages; print(json.dumps(stages.PIPELINE.keys()))"
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, ROOM_SIZE_ENV: size},
                             capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent.parent).stdout
        return dict(json.loads(out))

    small, big = keys("3"), keys("40")
    assert small["bootstrap"] == big["bootstrap"]
    assert all(small[stage] != big[stage] for stage in ("gw", "rhfs", "web", "pas"))


# -- harness.machines.fleet: every machine's failure, in one error --------------------------------------


class Fake:
    def __init__(self, name: str) -> None:
        self.name = name


def test_on_each_reports_every_failing_machine_in_natural_order() -> None:
    machines = [Fake(f"pc-p{n}") for n in range(1, 13)]

    def check(machine: Fake) -> str:
        assert machine.name not in ("pc-p2", "pc-p10"), f"{machine.name} is broken"
        return machine.name.upper()

    with pytest.raises(CheckFailed) as info:
        fleet.on_each(machines, check, what="the check")  # type: ignore[arg-type]
    first = str(info.value).splitlines()[0]
    assert first == "the check: 2 of 12 machine(s) failed: pc-p2, pc-p10"
    assert fleet.on_each(machines[:1], check, what="x") == {"pc-p1": "PC-P1"}  # type: ignore[arg-type]


def test_a_fleets_deadline_grows_with_its_size_over_the_hosts_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet, "cores", lambda: 2.0)
    room = [Fake(f"pc-p{n}") for n in range(1, 101)]
    assert fleet.deadline(room[:1], 1.0, base=30) == 30.5
    assert fleet.deadline(room, 1.0, base=30) == 80  # 100 CPU-s over 2 cores, beyond one's 30 s
    monkeypatch.setattr(fleet, "cores", lambda: 8.0)
    assert fleet.deadline(room, 1.0, base=30) == 42.5


def test_the_cores_a_run_may_use_are_its_affinity_capped_by_its_cgroup_and_shared_by_workers(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fleet.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    membership = tmp_path / "cgroup"
    membership.write_text("1:name=systemd:/runner\n0::/runner\n")
    root = tmp_path / "sys"
    assert fleet.cores(root, membership) == 8  # no cpu.max: the affinity
    limit = root / "unified" / "runner" / "cpu.max"  # a hybrid host's
    limit.parent.mkdir(parents=True)
    limit.write_text("max 100000\n")
    assert fleet.cores(root, membership) == 8
    limit.write_text("150000 100000\n")  # a runner held to 1.5 CPUs
    assert fleet.cores(root, membership) == 1.5
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    assert fleet.cores(root, membership) == 0.5


def test_on_each_calls_a_harness_failure_broken_not_failed() -> None:
    def check(machine: Fake) -> None:
        raise HarnessError("no such machine") if machine.name == "b" else AssertionError("wrong")

    with pytest.raises(HarnessError, match="2 of 2 machine"):
        fleet.on_each([Fake("a"), Fake("b")], check, what="x")  # type: ignore[arg-type]


# -- harness.machines.limits -----------------------------------------------------------------------------


def test_a_limit_too_low_is_raised_and_one_high_enough_is_left(tmp_path: Path) -> None:
    low, high = tmp_path / "low", tmp_path / "high"
    low.write_text("128\n")
    high.write_text("999999\n")
    chosen = (limits.Limit("low", 16, 100), limits.Limit("high", 16, 100))
    with mock.patch.object(limits, "SYSCTL", tmp_path):
        limits.ensure(250, limits=chosen)
    assert low.read_text() == "4000\n" and high.read_text() == "999999\n"


def test_a_limit_that_cannot_be_raised_stops_with_the_command_to_raise_it(tmp_path: Path) -> None:
    (tmp_path / "fs").mkdir()
    (tmp_path / "fs" / "inotify").write_text("128\n")
    refused = mock.patch.object(Path, "write_text", side_effect=PermissionError(13, "Permission denied"))
    wanted = r"fs.inotify is 128; 250 machines need 4000 .*`sysctl -w fs.inotify=4000`"
    with mock.patch.object(limits, "SYSCTL", tmp_path), refused, pytest.raises(UsageError, match=wanted):
        limits.ensure(250, limits=(limits.Limit("fs.inotify", 16, 100),))


def test_a_segment_with_more_machines_than_a_bridge_takes_is_refused() -> None:
    with pytest.raises(UsageError, match="segment lan would have 1100 machines on one bridge"):
        limits.ensure(1, {"lan": 1100}, limits=())


def test_a_bad_room_size_is_a_usage_error_before_anything_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "scenarios", "--collect-only", "-q",
                             "-p", "no:cacheprovider", "--room-size=0"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "--room-size='0': give a whole number of machines per room, 1 or more" in result.stderr


def test_the_reference_lab_without_ipv4_is_refused_in_one_line_before_anything_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "scenarios", "--collect-only", "-q",
                             "-p", "no:cacheprovider", "--families=ipv6"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "ERROR: pipeline stages: the run keeps ipv6 alone (HARNESS_FAMILIES, from --families or ini "
        "harness_families), but the reference lab needs IPv4 (its internet is IPv4, reached through NAT "
        "and NAT64): keep ipv4,ipv6 or ipv4"]


def test_a_room_that_overflows_at_the_run_s_size_is_one_line_not_a_conftest_traceback() -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "scenarios", "--collect-only", "-q",
                             "-p", "no:cacheprovider", "--room-size=300"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 4, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ERROR: pipeline stages: ") and "[rooms.r11]" in line and "--room-size" in line
