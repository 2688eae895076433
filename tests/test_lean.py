"""harness.machines.lean and a stage's ``lean``: masks in a root, in the key, refused when malformed
(no root: a directory stands for a machine's root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.core.errors import HarnessError, UsageError
from harness.machines import lean
from harness.model.stage import Stage
from tests.test_stage import pipeline


def test_units_and_generators_are_masked_where_systemd_reads_them(tmp_path: Path) -> None:
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    os.symlink("/lib/systemd/system/fstrim.timer", tmp_path / "etc/systemd/system/fstrim.timer")  # enabled
    lean.mask(tmp_path, ["fstrim.timer", "getty@tty1.service", "systemd-gpt-auto-generator"])
    assert os.readlink(tmp_path / "etc/systemd/system/fstrim.timer") == "/dev/null"
    assert os.readlink(tmp_path / "etc/systemd/system-generators/systemd-gpt-auto-generator") == "/dev/null"
    assert lean.masked(tmp_path) == ["fstrim.timer", "getty@tty1.service", "systemd-gpt-auto-generator"]
    lean.mask(tmp_path, ["fstrim.timer"])  # again: the same
    assert lean.masked(tmp_path) == ["fstrim.timer", "getty@tty1.service", "systemd-gpt-auto-generator"]


def test_a_unit_the_root_defines_itself_is_not_erased(tmp_path: Path) -> None:
    own = tmp_path / "etc/systemd/system/concours.service"
    own.parent.mkdir(parents=True)
    own.write_text("[Service]\n")
    with pytest.raises(HarnessError, match=r"concours\.service is a unit of the stage.s own"):
        lean.mask(tmp_path, ["concours.service"])
    assert own.read_text() == "[Service]\n"


def test_a_malformed_name_is_refused_when_the_stage_is_declared() -> None:
    with pytest.raises(UsageError, match=r"lean= takes unit names .*: fstrim, ../x.service"):
        Stage("gw", machines=("gw",), lean=("fstrim", "../x.service", "fstrim.timer"))


def test_lean_is_part_of_the_key_and_none_keeps_the_keys_of_before() -> None:
    plain = pipeline().keys()
    assert pipeline(gw={"lean": ()}).keys() == plain
    leaner = pipeline(gw={"lean": ("fstrim.timer",)}).keys()
    assert leaner["bootstrap"] == plain["bootstrap"]
    assert all(leaner[s] != plain[s] for s in ("gw", "rhfs", "web", "pas"))
    assert pipeline(gw={"lean": ("fstrim.timer",)}).inputs("gw") != pipeline().inputs("gw")
