"""Evidence of a failing scenario: a deliberately failing test run on the reference lab.

The failing test lives here (run through pytester), never in scenarios/: it makes DNS
traffic cross the LAN, writes a marker into gw's journal, then fails. Its allure result
must carry every attachment, each non-empty and holding what happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.engine import evidence
from harness.machines.store import Store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent

FAILING = '''
def test_before_it_on_the_same_lab(web):
    web.succeed("dig +short @192.168.1.254 earlier-test.prolo A")


def test_deliberately_broken(web, gw, lab):
    lab.network.impair(web.name, delay="5ms", seed=4)
    gw.succeed("logger -t evidence-test marker-in-the-journal")
    web.succeed("logger -t evidence-test marker-in-webs-journal")
    web.succeed("dig +short @192.168.1.254 gw.prolo A")
    gw.succeed("test -e /etc/this-file-is-not-there")
'''


@dataclass(frozen=True)
class Run:
    """A finished pytest run of the failing test: its exit status, output and reports."""

    status: int
    output: str
    reports: Path


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory, harness_store: Store) -> Run:
    """The failing test, run once (one lab boot) for every test of this module."""
    project = tmp_path_factory.mktemp("broken")
    (project / "test_broken.py").write_text(FAILING)
    reports = project / "reports"
    done = subprocess.run([sys.executable, "-m", "pytest", "--pipeline=stages",
                           f"--store={harness_store.root}", f"--reports={reports}",
                           "-p", "no:cacheprovider", "test_broken.py"],
                          cwd=project, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # the reference lab: not installed
    return Run(done.returncode, done.stdout + done.stderr, reports)


def _result_of(results: Path, name: str) -> dict:  # type: ignore[type-arg]
    for path in results.glob("*-result.json"):
        data = json.loads(path.read_text())
        if data["name"] == name:
            return data  # type: ignore[no-any-return]
    raise AssertionError(f"no allure result for {name} in {results}")


def test_the_failure_carries_every_attachment(failed_run: Run) -> None:
    reports = failed_run.reports
    assert failed_run.status == 1, failed_run.output[-3000:]
    results = reports / "allure-results"
    found = {a["name"]: results / a["source"]
             for a in _result_of(results, "test_deliberately_broken")["attachments"]}
    wanted = ["gw: journal", "gw: ip-addr", "gw: ip-route", "gw: nftables", "gw: dhcp-leases",
              "web: journal", "web: ip-addr", "web: ip-route", "pcap lan", "pcap uplink", "topology",
              "switch: impaired links"]
    assert [w for w in wanted if w not in found] == [], sorted(found)
    assert all(found[w].stat().st_size > 0 for w in wanted)
    assert "marker-in-the-journal" in found["gw: journal"].read_text()
    assert "marker-in-webs-journal" in found["web: journal"].read_text()
    assert "192.168.1.254/23" in found["gw: ip-addr"].read_text()
    assert "masquerade" in found["gw: nftables"].read_text()
    web_address = found["web: ip-addr"].read_text()
    leased = [line.split(",")[0] for line in found["gw: dhcp-leases"].read_text().splitlines()[1:]]
    assert any(f"inet {ip}/" in web_address for ip in leased), (leased, web_address)
    assert found["topology"].read_text().lstrip().startswith(("<?xml", "<svg"))
    impaired = found["switch: impaired links"].read_text()
    assert impaired.startswith("web (web-lan0): delay 5ms, seed 4; relay pid "), impaired


def test_the_pcap_holds_the_test_traffic(failed_run: Run) -> None:
    reports = failed_run.reports
    pcap = reports / "evidence" / evidence.safe_name("test_broken.py::test_deliberately_broken") / "lan.pcap"
    decoded = subprocess.run(["tcpdump", "-nr", str(pcap)], capture_output=True, text=True,
                             check=True).stdout
    assert "192.168.1.254.53:" in decoded and "A? gw.prolo." in decoded, decoded[-2000:]
    assert "earlier-test" not in decoded  # the lab's capture, cut to this test's time


def test_environment_and_junit_beside_the_results(failed_run: Run) -> None:
    reports = failed_run.reports
    props = dict(line.split(" = ", 1) for line in
                 (reports / "allure-results" / "environment.properties").read_text().splitlines())
    from stages import PIPELINE

    assert props["stage.gw"] == PIPELINE.keys()["gw"]
    assert props["host.kernel"] and props["host.systemd"].startswith("systemd ")
    assert props["lab.gw.kea-dhcp4-server"] and props["lab.web.nginx"]
    suite = ET.parse(reports / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("tests") == "2"
