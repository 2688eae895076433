"""harness.engine.evidence: the pure parts (pcap merging, address parsing, dpkg versions), no root."""

from __future__ import annotations

import struct
from pathlib import Path

from harness.engine import evidence

HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def record(seconds: int, micros: int, payload: bytes) -> bytes:
    return struct.pack("<IIII", seconds, micros, len(payload), len(payload)) + payload


def test_merge_orders_records_by_time_and_drops_a_cut_record(tmp_path: Path) -> None:
    a, b, merged = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "m.pcap"
    a.write_bytes(HEADER + record(10, 5, b"first") + record(12, 0, b"third"))
    b.write_bytes(HEADER + record(11, 0, b"second") + record(13, 0, b"cut-short")[:-3])
    evidence.merge_pcaps([a, b], merged)
    data = merged.read_bytes()
    assert data == HEADER + record(10, 5, b"first") + record(11, 0, b"second") + record(12, 0, b"third")


def test_merge_of_nothing_is_an_empty_capture(tmp_path: Path) -> None:
    evidence.merge_pcaps([], tmp_path / "m.pcap")
    assert (tmp_path / "m.pcap").read_bytes() == HEADER


IP_ADDR = """1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536
    inet 127.0.0.1/8 scope host lo
2: lan0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500
    link/ether 02:00:00:00:01:0a brd ff:ff:ff:ff:ff:ff link-netnsid 0
    inet 192.168.1.10/23 brd 192.168.1.255 scope global dynamic lan0
    inet6 fe80::1/64 scope link
"""


def test_addresses_of_an_interface_come_from_ip_addr() -> None:
    assert evidence._addresses_of(IP_ADDR, "lan0") == ["192.168.1.10/23", "fe80::1/64"]
    assert evidence._addresses_of(IP_ADDR, "wan0") == []


def test_dpkg_versions_reads_installed_packages_only(tmp_path: Path) -> None:
    status = tmp_path / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True)
    status.write_text("Package: nginx\nStatus: install ok installed\nVersion: 1.22.1-9\n\n"
                      "Package: bind9\nStatus: deinstall ok config-files\nVersion: 1:9.18\n\n"
                      "Package: curl\nStatus: install ok installed\nVersion: 7.88\n")
    assert evidence.dpkg_versions(tmp_path, ("nginx", "bind9")) == {"nginx": "1.22.1-9"}
    assert evidence.dpkg_versions(tmp_path / "nowhere", ("nginx",)) == {}


def test_safe_name_makes_a_test_id_a_snapshot_name_part() -> None:
    assert evidence.safe_name("scenarios/test_dns.py::test_x[gw-A]") == "scenarios-test_dns.py-test_x-gw-a"
