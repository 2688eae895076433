"""harness.core.names: lab names and snapshot references, built and parsed in one place (no root)."""

from __future__ import annotations

import pytest

from harness.core.errors import UsageError
from harness.core.names import LabName, SnapshotRef, prep_unit


def test_a_machine_name_with_dashes_stays_whole() -> None:
    name = LabName.parse("harness-1a2b-pas-r11p7")
    assert name == LabName("1a2b", "pas-r11p7") and str(name) == "harness-1a2b-pas-r11p7"
    assert LabName.parse(str(LabName("1a2b", "sw"))) == LabName("1a2b", "sw")


@pytest.mark.parametrize("text", ["gw", "harness-", "harness-1a2b", "harness-1a2b-", "other-1a2b-gw",
                                  prep_unit(1234, "abcdef")])
def test_what_is_not_a_lab_name_parses_to_none(text: str) -> None:
    assert LabName.parse(text) is None


def test_a_lab_id_has_no_dash() -> None:
    with pytest.raises(UsageError, match=r"bad lab id 'a-b': use \[a-z0-9\] \(no dash\)"):
        LabName("a-b", "gw")
    assert LabName.is_lab_id("19717fe0") and not LabName.is_lab_id("build-gw-12-ab")


def test_snapshot_references() -> None:
    assert SnapshotRef.parse("gw/1a2b") == SnapshotRef.of_stage("gw", "1a2b")
    assert SnapshotRef.parse("gw/1a2b").stage == "gw"
    kept = SnapshotRef.parse("failed/scenarios-test_dns.py-test_x")
    assert kept.is_failure and kept.stage is None and kept == SnapshotRef.failure(kept.key)
    with pytest.raises(UsageError, match="'failed' cannot be a stage's name"):
        SnapshotRef.of_stage("failed", "1a2b")
    for bad in ("gw", "gw/", "/1a2b", "a/b/c"):
        with pytest.raises(UsageError, match="give <stage>/<key> or failed/<test-id>"):
            SnapshotRef.parse(bad)
