"""Host set-up (`harness.engine.host`, ``harness setup-host``): what it reads, what it raises and keeps.

The parsing and the limits' bookkeeping run without root, against files in a temporary
directory standing for /proc/sys and /etc/sysctl.d; the command itself runs for real, in
``--check`` mode (it changes nothing), and once more to show a second run changes nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from harness.core.errors import UsageError
from harness.core.settings import size_bytes
from harness.engine import host
from harness.machines import limits
from tests.test_cli import REPO


def test_sizes_read_as_truncate_reads_them() -> None:
    assert size_bytes("64G") == 64 * 2**30 and size_bytes("512M") == 512 * 2**20
    assert size_bytes("1T") == 2**40 and size_bytes("4096") == 4096 and size_bytes("2GiB") == 2 * 2**30
    for bad in ("lots", "64GB", "1.5T"):  # truncate would read GB as powers of 1000, and no fractions
        with pytest.raises(UsageError, match=f"store size '{bad}' is not a size: give one like 64G"):
            size_bytes(bad)


def test_limits_are_raised_and_what_fits_is_kept_never_lower(tmp_path: Path) -> None:
    sysctl, kept = tmp_path / "sys", tmp_path / "sysctl.d/60-harness.conf"
    (sysctl / "fs").mkdir(parents=True)
    (sysctl / "fs/low").write_text("128\n")
    (sysctl / "fs/high").write_text("999999\n")
    kept.parent.mkdir()
    kept.write_text("# by hand\nfs.high = 2000000\nkernel.other = 7\nnet.odd = 1 2\n")
    chosen = (limits.Limit("fs.low", 16, 100), limits.Limit("fs.high", 16, 100))
    outcome = host.Outcome()
    with mock.patch.object(limits, "SYSCTL", sysctl), mock.patch.object(limits, "LIMITS", chosen), \
            mock.patch.object(host, "SYSCTL_FILE", kept):
        host._limits(10, outcome, check=True)
        assert outcome.missing == ["limits: fs.low is 128, 10 machines need 160"]
        assert (sysctl / "fs/low").read_text() == "128\n"  # a check changes nothing
        host._limits(10, outcome, check=False)
        assert (sysctl / "fs/low").read_text() == "160\n"
        assert outcome.changed == ["limits: raised fs.low from 128 to 160", f"limits: kept fs.low in {kept}"]
        assert host._read_sysctl_file() == {"fs.high": 2000000, "fs.low": 160, "kernel.other": 7}
        again = host.Outcome()
        host._limits(10, again, check=False)
    assert again.changed == [] and again.fine == ["limits: fit 10 machines"]


@pytest.mark.integration
def test_setup_host_on_a_set_up_host_finds_nothing_missing_and_changes_nothing() -> None:
    def setup_host(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness.cli", "setup-host", *args],
                              capture_output=True, text=True, cwd=REPO, timeout=600)

    checked = setup_host("--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"ok       host packages: {len(host.HOST_PACKAGES)} present" in checked.stdout
    # The host is shared: a lab started since `make test`'s own setup-host may have raised a
    # limit, which a first run keeps for the next boot. What must hold is that a run right
    # after a run changes nothing.
    first = setup_host()
    assert first.returncode == 0, first.stdout + first.stderr
    again = setup_host()
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == "host set up: nothing changed", again.stdout
    assert not [line for line in again.stdout.splitlines() if line.startswith("changed")]
    assert "ok       store: " in again.stdout
