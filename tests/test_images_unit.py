"""harness/engine/build/images.py without a machine: which images a Containerfile builds on."""

from __future__ import annotations

from pathlib import Path

from harness.engine.build.images import BASE_TAG, Image


def test_an_image_names_the_images_its_containerfile_builds_from(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text(
        "# FROM nothing: a comment\nFROM localhost/pad AS app\nRUN true\n"
        "from app\nCOPY --from=app /x /x\nFROM localhost/other\n")
    assert Image("box", "u", "localhost/x", context=tmp_path).bases() == ["localhost/pad", "localhost/other"]
    (tmp_path / "Containerfile").write_text(f"FROM {BASE_TAG}\n")
    assert Image("box", "u", "localhost/x", context=tmp_path).bases() == [BASE_TAG]
