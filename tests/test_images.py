"""harness.engine.build.images on real machines: an image made in the lab from the pipeline's base image,
in a stage, so its snapshot holds it and a resume finds it; an image built from a context
directory whose Containerfile, edited, rebuilds that stage and none before it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine.build import debian
from harness.engine.build.builder import Builder
from harness.engine.build.images import BASE_TAG, Image
from harness.machines.containers import as_user
from harness.machines.store import Store
from harness.model.pipeline import Pipeline
from harness.model.stage import Stage

pytestmark = pytest.mark.integration

USER = "builder"
CONTAINERFILE = f"FROM {BASE_TAG}\nCOPY greet.sh /usr/local/bin/greet\nRUN chmod +x /usr/local/bin/greet\n" \
                "CMD [\"/usr/local/bin/greet\"]\n"


def pipeline(context: Path) -> Pipeline:
    """box with containers (stage pods), then its images (stage images): the base image and
    `localhost/greet`, built from ``context``."""
    pods = Stage("pods", machines=("box",), containers={"box": (USER,)})
    images = Stage("images", steps=(Image("box", USER, "localhost/greet", context=context),))
    return Pipeline([debian.base_stage(), pods, images])


def context(directory: Path, greeting: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "Containerfile").write_text(CONTAINERFILE)
    script = f"#!/bin/sh\necho {greeting} from $(cut -c1-2 /etc/debian_version)\n"
    (directory / "greet.sh").write_text(script)
    return directory


def test_an_image_built_in_a_stage_is_in_its_snapshot(seeded_store: Store, tmp_path: Path) -> None:
    first = Builder(seeded_store, pipeline(context(tmp_path / "greet", "hello")))
    with first.lab(first.ensure("images")) as lab:  # resumed from the snapshot: nothing built now
        box = lab["box"]
        assert box.succeed(as_user(USER, "podman run --rm localhost/greet")).strip() == "hello from 12"
        version = box.succeed(as_user(USER, f"podman run --rm {BASE_TAG} cat /etc/debian_version"))
        assert version.startswith("12."), version  # the base image is the lab's Debian
    edited = Builder(seeded_store, pipeline(context(tmp_path / "greet", "bonjour")))
    planned = [(s.stage, s.action) for s in edited.plan("images")][1:]
    assert planned == [("pods", "reuse"), ("images", "build")]  # the edited stage only
    with edited.lab(edited.ensure("images")) as lab:
        greeting = lab["box"].succeed(as_user(USER, "podman run --rm localhost/greet"))
        assert greeting.strip() == "bonjour from 12"
