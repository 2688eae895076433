"""harness.machines.containers on a real machine: a stage that declares ``containers`` gives its user
rootless podman and buildah. As that user, a container runs from an image made in the lab,
and buildah builds an image (``--isolation chroot``) that podman then runs.

The image is made in the machine from a few of its own binaries and their libraries: a tree
the lab has, no registry.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from harness.engine.build import debian
from harness.engine.build.builder import Builder
from harness.machines.containers import as_user
from harness.machines.store import Store
from harness.model.pipeline import Pipeline
from harness.model.stage import Stage

pytestmark = pytest.mark.integration

USER = "alice"
# A root of a few binaries and every library they load, imported as image `mini`.
MINI = r"""set -e
rm -rf ~/mini && mkdir -p ~/mini/bin ~/mini/usr/bin
for b in /bin/sh /bin/cat /usr/bin/id /bin/echo; do
  cp -L $b ~/mini$b
  for l in $(ldd $b | grep -o '/[^ ]*'); do mkdir -p ~/mini$(dirname $l); cp -L $l ~/mini$l; done
done
tar -C ~/mini -c . | podman import - localhost/mini
"""
CONTAINERFILE = "FROM localhost/mini\nRUN echo built-by-buildah > /built\nCMD [\"/bin/cat\", \"/built\"]\n"




def pipeline() -> Pipeline:
    stage = Stage("pods", machines=("box",), containers={"box": (USER,)})
    return Pipeline([debian.base_stage(), stage])


def test_a_user_runs_and_builds_containers(seeded_store: Store, tmp_path: Path) -> None:
    builder = Builder(seeded_store, pipeline())
    with builder.lab(builder.ensure("pods")) as lab:
        box = lab["box"]
        box.succeed(as_user(USER, MINI))
        out = box.succeed(as_user(USER, "podman run --rm localhost/mini /bin/sh -c 'echo hello; id -u'"))
        assert out.split() == ["hello", "0"], out  # root in its namespace...
        box.succeed(as_user(USER, "podman run -d -i --name idle localhost/mini /bin/cat"))
        owners = box.succeed("ps -o uid= -C cat").split()
        assert owners == [box.succeed(f"id -u {USER}").strip()], owners  # ...her own uid to the machine
        box.succeed(as_user(USER, "podman rm -f idle"))
        write = f"mkdir -p ~/ctx && printf %s {shlex.quote(CONTAINERFILE)} > ~/ctx/Containerfile"
        box.succeed(as_user(USER, write))
        box.succeed(as_user(USER, "buildah bud --isolation chroot -t localhost/built ~/ctx"))
        assert box.succeed(as_user(USER, "podman run --rm localhost/built")).strip() == "built-by-buildah"
