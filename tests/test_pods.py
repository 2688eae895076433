"""A user's pod under systemd user units, on a real machine: the pattern the reference lab's
``apps`` machine is to follow (docs/containers.md). Its image is a tree of the lab given a
Debian package on the host side (busybox, whose httpd serves); the pod is published on
127.0.0.1 only, made by ``podman generate systemd --new`` units the user enabled; the machine
booted from the stage's snapshot, nobody logged in, serves it; ``podman auto-update`` picks a
newer local image up and the data, in a volume, stays."""

from __future__ import annotations

import pytest

from harness.engine.build import debian
from harness.engine.build.builder import Build, Builder
from harness.engine.build.images import Image
from harness.machines.containers import as_user
from harness.machines.store import Store
from harness.model.pipeline import Pipeline
from harness.model.stage import Stage

pytestmark = pytest.mark.integration

USER = "web"
PORT = 8388
POD = f"""set -e
mkdir -p ~/www ~/.config/systemd/user && echo served-by-pod > ~/www/index.html
podman pod create --name site -p 127.0.0.1:{PORT}:8080
podman run -d --pod site --name httpd --label io.containers.autoupdate=local \\
  -v $HOME/www:/www localhost/srv busybox httpd -f -p 8080 -h /www
cd ~/.config/systemd/user && podman generate systemd --files --name --new site
podman pod rm -f site
systemctl --user daemon-reload
systemctl --user enable pod-site.service podman-auto-update.timer
"""


def serve(build: Build) -> None:
    """run the site as the user's pod, under user units it enabled"""
    build["box"].succeed(as_user(USER, POD))


def pipeline() -> Pipeline:
    stage = Stage("site", machines=("box",), trees=("srv",),
                  packages={"srv": ("busybox",), "box": ("curl",)}, containers={"box": (USER,)},
                  steps=(Image("box", USER, "localhost/srv", tree="srv"), serve))
    return Pipeline([debian.base_stage(), stage])


def test_a_users_pod_comes_up_at_boot_and_is_updated_from_a_local_image(seeded_store: Store) -> None:
    builder = Builder(seeded_store, pipeline())
    with builder.lab(builder.ensure("site")) as lab:
        box = lab["box"]
        page = box.wait_until_succeeds(f"curl -sf http://127.0.0.1:{PORT}/")
        assert page.strip() == "served-by-pod"
        assert box.succeed("loginctl list-sessions --no-legend").strip() == ""  # nobody logged in
        box.fail(f"curl -sf --max-time 5 http://$(hostname -I | cut -d' ' -f1):{PORT}/ || "
                 f"ss -Hltn | grep -v 127.0.0.1 | grep -q :{PORT}")  # 127.0.0.1 only
        uid = box.succeed(f"id -u {USER}").strip()
        assert box.succeed("ps -o uid= -C busybox").split() == [uid]  # the user's, never root
        before = box.succeed(as_user(USER, "podman inspect --format '{{.Id}}' httpd")).strip()
        box.succeed(as_user(USER, "podman run --name newer localhost/srv touch /newer && "
                                  "podman commit newer localhost/srv && podman rm newer"))
        box.succeed(as_user(USER, "podman auto-update"))
        after = box.wait_until_succeeds(as_user(USER, "podman inspect --format '{{.Id}}' httpd")).strip()
        assert after != before  # re-created from the newer image...
        image = box.succeed(as_user(USER, "podman inspect --format '{{.Image}}' httpd")).strip()
        newest = box.succeed(as_user(USER, "podman image inspect --format '{{.Id}}' localhost/srv"))
        assert image == newest.strip()
        page = box.wait_until_succeeds(f"curl -sf http://127.0.0.1:{PORT}/")
        assert page.strip() == "served-by-pod"  # ...with the data it had
