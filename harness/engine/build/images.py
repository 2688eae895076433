"""Container images without a registry: built in the lab, from a tree the harness already has.

Lab machines never reach the internet, so no image is pulled. An `Image` is a stage step
that gives a user of a machine with containers (see `harness.machines.containers`) an image made
from the pipeline's base image (the Debian tree every machine is cloned from), imported
with ``podman import``, then, given a build context, built on with ``buildah bud
--isolation chroot`` (its Containerfile's ``FROM`` names the imported image, ``localhost/base``,
or an image an earlier step of the stage made: then the base is not imported at all). The images
live in the user's storage, in the machine's root, so the stage's snapshot holds them and a
resume finds them built.

The key: the base image is the first stage's, so it is in every key already; the context
directory is the step's ``files`` (every file in it is hashed): editing the Containerfile or
a script it copies rebuilds this stage and the later ones, no earlier one.

>>> STAGE = Stage.here("apps", machines=("apps",), containers={"apps": ("apps",)},
...                    steps=(Image("apps", "apps", "localhost/pad", context="images/pad"),))
"""

from __future__ import annotations

import secrets
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core import proc
from harness.core.errors import HarnessError, UsageError
from harness.machines.containers import as_user
from harness.model.stage import BASE_MEMBER

if TYPE_CHECKING:
    from harness.engine.build.builder import Build

BASE_TAG = "localhost/base"  # the base image, as every Containerfile's FROM names it
BUILD_TIMEOUT = 900.0
# What an imported tree leaves out, as Debian's own slim images do: apt's package lists and
# downloaded packages (no container runs apt: the lab has no mirror), documentation, manual
# pages and translations. A third of a tree of the base image and a few packages (the
# reference lab's pad: 750 MB, 220 MB of them these), imported file by file into a user's
# storage on every cold build of its stage. ``Image(..., slim=False)`` keeps them.
SLIM_EXCLUDES = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                 "usr/share/info", "usr/share/locale")


class Image:
    """A step: image ``name`` for ``user`` on ``machine``; the base image itself, or built from
    ``context``, a directory holding a ``Containerfile`` (and what it copies), given as an
    absolute path: ``Path(__file__).parent / "images/pad"``.

    With ``tree``, the image is instead that tree of the lab, imported as it is: a stage's
    ``trees`` member, cloned from the base image and given its ``packages`` on the host side
    (the lab has no registry and no internet, so software gets into images this way).

    An imported tree (the base image or ``tree``) leaves out `SLIM_EXCLUDES`'s contents, the
    directories themselves kept, unless ``slim`` is false."""

    def __init__(self, machine: str, user: str, name: str, *, context: Path | None = None,
                 tree: str | None = None, slim: bool = True) -> None:
        if context is not None and tree is not None:
            raise UsageError(f"image {name}: give a context (built on the base image) or a tree "
                             "(imported as it is), not both")
        if context is not None and not (context / "Containerfile").is_file():
            raise UsageError(f"image {name}: {context} has no Containerfile: give the directory "
                             "that holds it (its build context)")
        self.machine, self.user, self.name, self.context, self.tree = machine, user, name, context, tree
        self.slim = slim
        self.files = (context,) if context is not None else ()  # hashed into the stage's key
        self.needs_containers = (machine, user)  # checked by the Pipeline, before anything runs
        source = f" from {context.name}" if context else f" of tree {tree}" if tree else ""
        self.title = f"image {name} for {user} on {machine}{source}"

    def __call__(self, build: Build) -> None:
        machine = build[self.machine]
        root = build.root(self.machine)
        if self.tree is not None:
            self._import(build, build.root(self.tree), self.name)
            return
        if (self.context is None or BASE_TAG in self.bases()) and \
                machine.execute(as_user(self.user, f"podman image exists {BASE_TAG}"))[0] != 0:
            self._import(build, self._base(build), BASE_TAG)
        if self.context is None:
            machine.succeed(as_user(self.user, f"podman tag {BASE_TAG} {shlex.quote(self.name)}"))
            return
        staged = f"/var/tmp/harness-context-{secrets.token_hex(4)}"
        proc.run(["cp", "-a", str(self.context), str(root / staged.lstrip("/"))])
        try:
            machine.succeed(f"chown -R {shlex.quote(self.user)}: {staged}")
            machine.succeed(as_user(self.user, f"buildah bud --isolation chroot --layers=false "
                                               f"-t {shlex.quote(self.name)} {staged}"),
                            timeout=BUILD_TIMEOUT)
        finally:
            proc.run(["rm", "-rf", str(root / staged.lstrip("/"))])

    def bases(self) -> list[str]:
        """The images the Containerfile builds ``FROM`` (its build stages' names aside)."""
        assert self.context is not None
        froms = [line.split()[1:] for line in (self.context / "Containerfile").read_text().splitlines()
                 if line.split()[:1] and line.split()[0].upper() == "FROM" and line.split()[1:]]
        stages = {words[-1] for words in froms if len(words) == 3 and words[1].upper() == "AS"}
        return [words[0] for words in froms if words[0] not in stages]

    def _base(self, build: Build) -> Path:
        """The pipeline's base image: the first stage's snapshot."""
        first = build.pipeline.stages[0].name
        snapshot = build.lab.store.get(build.pipeline.ref(first))
        if snapshot is None:
            raise HarnessError(f"{self.title}: the base image {build.pipeline.ref(first)} is gone from "
                               "the store")
        return snapshot.member(BASE_MEMBER)

    def _import(self, build: Build, tree: Path, tag: str) -> None:
        """``podman import`` ``tree`` as ``tag``, through a tar file in the machine's /var/tmp,
        removed after."""
        root = build.root(self.machine)
        tar = f"/var/tmp/harness-image-{secrets.token_hex(4)}.tar"
        left_out = ("dev", "proc", "sys", *(SLIM_EXCLUDES if self.slim else ()))
        proc.run(["tar", "-C", str(tree), "--numeric-owner", *(f"--exclude=./{d}/*" for d in left_out),
                  "-cf", str(root / tar.lstrip("/")), "."], timeout=BUILD_TIMEOUT)
        try:
            build[self.machine].succeed(f"chmod 644 {tar}")
            build[self.machine].succeed(as_user(self.user, f"podman import --quiet {tar} {shlex.quote(tag)}"),
                                        timeout=BUILD_TIMEOUT)
        finally:
            (root / tar.lstrip("/")).unlink(missing_ok=True)
