"""harness.machines.containers and harness.engine.build.images without machines: what a
stage's ``containers`` adds to its machine's boot and key, what it refuses, what the host check
reports (fake /dev and /proc/sys), and an image's build context in its stage's key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import UsageError
from harness.engine.build.images import Image
from harness.machines import containers
from harness.model.pipeline import Pipeline
from harness.model.stage import Stage


def base() -> Stage:
    return Stage("base", base=lambda root: {})


def pipeline(**fields: object) -> Pipeline:
    return Pipeline([base(), Stage("pods", machines=("box", "plain"), **fields)])  # type: ignore[arg-type]


def test_a_machine_with_containers_boots_with_what_they_need_and_no_other() -> None:
    pipe = pipeline(containers={"box": ("alice",)}, boot_args={"box": ("--volatile=no",)})
    assert pipe.boot_args("box") == (*containers.NSPAWN_ARGS, "--volatile=no")
    assert pipe.boot_env("box") == containers.NSPAWN_ENV
    assert pipe.boot_args("plain") == () and pipe.boot_env("plain") == {}


def test_containers_are_part_of_the_key() -> None:
    keys = {users: pipeline(containers={"box": users}).keys()["pods"] for users in [("alice",), ("bob",)]}
    assert len(set(keys.values())) == 2
    assert pipeline().keys()["pods"] not in keys.values()
    assert pipeline().keys()["base"] == pipeline(containers={"box": ("alice",)}).keys()["base"]


def test_each_user_gets_a_range_of_her_own() -> None:
    ranges = containers.subid_ranges(["alice", "bob"])
    (a, n), (b, _) = ranges["alice"], ranges["bob"]
    assert n == 65536 and b >= a + n


@pytest.mark.parametrize(("given", "says"), [
    ({"nobox": ("alice",)}, "name machines it does not add: nobox"),
    ({"box": ()}, "name the users that run them"),
    ({"box": ("root",)}, "'root' cannot be an unprivileged user's name"),
    ({"box": ("a b",)}, "'a b' cannot be"),
])
def test_bad_containers_are_refused_in_one_line(given: dict[str, tuple[str, ...]], says: str) -> None:
    with pytest.raises(UsageError, match=says) as caught:
        pipeline(containers=given)
    assert "\n" not in str(caught.value)


def test_the_host_check_names_what_is_missing(tmp_path: Path) -> None:
    dev, sysctl = tmp_path / "dev", tmp_path / "sys"
    (sysctl / "user").mkdir(parents=True)
    (sysctl / "user/max_user_namespaces").write_text("0\n")
    dev.mkdir()
    problems = containers.host_problems(dev, sysctl)
    assert [p.split()[0] for p in problems] == ["/dev/fuse", "/dev/net/tun", "sysctl"]
    assert "sysctl -w user.max_user_namespaces=" in problems[2]


@pytest.mark.parametrize("node", ["fuse", "net/tun"])
@pytest.mark.parametrize(("mode", "fine"), [(0o20600, False), (0o20660, False), (0o20666, True),
                                             (0o20777, True)])
def test_a_device_node_only_root_opens_is_a_problem(node: str, mode: int, fine: bool) -> None:
    said = containers.node_mode_problem(node, mode)
    assert (said is None) == fine, said
    if said:
        assert said.startswith(f"/dev/{node} is mode {mode & 0o777:04o}") and "harness setup-host" in said


def test_an_image_needs_a_containerfile_and_one_source(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="has no Containerfile"):
        Image("box", "alice", "localhost/x", context=tmp_path)
    (tmp_path / "Containerfile").write_text("FROM localhost/base\n")
    with pytest.raises(UsageError, match="not both"):
        Image("box", "alice", "localhost/x", context=tmp_path, tree="srv")


def test_an_edited_containerfile_changes_its_stage_key_only(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM localhost/base\n")

    def keys() -> dict[str, str]:
        image = Image("box", "alice", "localhost/x", context=tmp_path)
        return Pipeline([base(), Stage("pods", machines=("box",), containers={"box": ("alice",)}),
                         Stage("images", steps=(image,))]).keys()

    before = keys()
    (tmp_path / "Containerfile").write_text("FROM localhost/base\nRUN true\n")
    after = keys()
    assert [before[s] == after[s] for s in ("base", "pods", "images")] == [True, True, False]


def test_an_image_for_a_user_without_containers_is_refused_before_anything_runs(tmp_path: Path) -> None:
    image = Image("box", "bob", "localhost/x")
    with pytest.raises(UsageError, match="needs containers for bob on box, which neither it nor an earlier"):
        Pipeline([base(), Stage("pods", machines=("box",), containers={"box": ("alice",)}),
                  Stage("images", steps=(image,))])
