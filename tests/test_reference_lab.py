"""The reference lab's scenarios catch regressions: `harness mutate` on a handful of its mutants.

The whole mutation run (every mutant of stages/, against every scenario) is `harness mutate`,
measured in docs/mutants.md; here a few mutants, one per kind of behaviour, must be killed,
each by a scenario that watches that behaviour.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.machines.store import Store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
CHOSEN = {  # mutant -> the scenario file whose assertions should notice it
    "dhcp-no-router": "test_dhcp.py",
    "dns-missing-alias": "test_dns.py",
    "fw-ssh-open-to-uplink": "test_policy.py",
    "web-vhost-missing": "test_web.py",
}


def test_harness_mutate_kills_chosen_mutants(harness_store: Store, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "harness.cli", "--store", str(harness_store.root), "mutate",
            "--reports", str(tmp_path), "-j", "2", *(f"-k={name}" for name in CHOSEN)]
    listed = subprocess.run([*argv, "--list"], capture_output=True, text=True, cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split()[0] for line in listed.stdout.splitlines()[:-1]) == sorted(CHOSEN)
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=1800)
    table = json.loads((tmp_path / "mutants.json").read_text())
    verdicts = {m["mutant"]: (m["status"], m["test"], m["message"]) for m in table["mutants"]}
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    for name, scenario_file in CHOSEN.items():
        status, test, message = verdicts[name]
        assert status == "killed", f"{name}: {status} {message}"
        assert f"scenarios/{scenario_file}::" in test, f"{name} killed by {test}"
        assert message, f"{name}: the kill says nothing"
    assert (table["killed"], table["counted"]) == (len(CHOSEN), len(CHOSEN))
