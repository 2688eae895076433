"""harness.model.stage: pipelines, chained keys, plans and needs -- pure logic, no root."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

import harness
import harness.model.keys
import harness.model.pipeline
from harness.core.errors import UsageError
from harness.core.links import Interface
from harness.core.names import SnapshotRef
from harness.machines import nspawn
from harness.model.pipeline import Pipeline, needed_stage
from harness.model.plan import Action, plan
from harness.model.stage import Stage
from tests.conftest import office_inventory


def base(root: Path) -> dict[str, str]:
    return {}


def pipeline(**changes: dict[str, object]) -> Pipeline:
    stages = [Stage("bootstrap", base=base), Stage("gw", machines=("gw",), packages={"gw": ("bind9",)}),
              Stage("rhfs", machines=("rhfs0",)), Stage("web", machines=("web",)),
              Stage("pas", machines=("pas-r11p7",))]
    stages = [dataclasses.replace(s, **changes.get(s.name, {})) for s in stages]  # type: ignore[arg-type]
    return Pipeline(stages, {"gw": [Interface("gw", "lan0", "lan", "02:00:00:00:00:01")]})


def actions(steps: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {s.stage: str(s.action) for s in steps}


def test_keys_are_stable_and_chained() -> None:
    keys = pipeline().keys()
    assert keys == pipeline().keys()
    assert len(set(keys.values())) == 5


def test_a_pipeline_hashes_each_stage_once_and_names_its_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[str] = []
    real = harness.model.pipeline.stage_key
    monkeypatch.setattr(harness.model.pipeline, "stage_key",
                        lambda definition, parent:
                        hashed.append(definition["name"]) or real(definition, parent))
    stages = pipeline()
    keys = stages.keys()
    assert [stages.ref(n) for n in stages.names] == [SnapshotRef.of_stage(n, keys[n]) for n in stages.names]
    assert stages.keys() == keys and str(stages.ref("gw")) == f"gw/{keys['gw']}"
    assert hashed == list(stages.names)  # once each, however often keys and refs are asked for
    stages.keys()["gw"] = "tampered"
    assert stages.ref("gw").key == keys["gw"]  # callers get copies


def test_a_harness_build_module_is_part_of_every_key_and_a_front_end_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = Path(harness.__file__).parent
    copy = tmp_path / "harness"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert harness.model.keys.code_key(copy) == harness.model.keys.code_key(package)
    (copy / "cli" / "command.py").write_text((copy / "cli" / "command.py").read_text() + "\n# a verb\n")
    (copy / "plugin.py").write_text((copy / "plugin.py").read_text() + "\n# a front end\n")
    assert harness.model.keys.code_key(copy) == harness.model.keys.code_key(package)
    rootfs = copy / "machines" / "rootfs.py"
    rootfs.write_text(rootfs.read_text() + "\n# how roots are filled\n")
    edited = harness.model.keys.code_key(copy)
    assert edited != harness.model.keys.code_key(package)
    before = pipeline().keys()
    monkeypatch.setattr(harness.model.keys, "harness_code_key", lambda: edited)
    after = pipeline().keys()
    assert [before[s] == after[s] for s in before] == [False] * 5  # every stage rebuilds


def test_changing_a_stage_changes_its_key_and_every_later_one_only() -> None:
    before = pipeline().keys()
    after = pipeline(rhfs={"packages": {"rhfs0": ("openssh-server",)}}).keys()
    assert [before[s] == after[s] for s in before] == [True, True, False, False, False]


def test_the_inventory_is_part_of_the_key() -> None:
    before = pipeline().keys()
    moved = Pipeline(pipeline().stages, {"gw": [Interface("gw", "lan0", "lan", "02:00:00:00:00:02")]})
    assert moved.keys()["bootstrap"] == before["bootstrap"]
    assert moved.keys()["gw"] != before["gw"]


def test_an_address_rebuilds_the_stage_of_its_machine_and_the_later_ones_only() -> None:
    def with_web_at(address: str) -> Pipeline:
        return Pipeline(pipeline().stages, {"gw": [Interface("gw", "lan0", "lan", "02:00:00:00:00:01")],
                                            "web": [Interface("web", "lan0", "lan", "02:00:00:00:00:03",
                                                              (address,))]})

    before, after = with_web_at("10.0.0.3/24").keys(), with_web_at("10.0.0.4/24").keys()
    assert [before[s] == after[s] for s in before] == [True, True, True, False, False]
    assert with_web_at("10.0.0.3/24").inputs("web") != with_web_at("10.0.0.4/24").inputs("web")


def test_every_machine_has_a_fixture_unless_a_stage_or_the_harness_has_its_name() -> None:
    from harness.pytest.session import machine_fixtures

    named = pipeline()  # machines gw, rhfs0, web, pas-r11p7; stages bootstrap, gw, rhfs, web, pas
    assert machine_fixtures(named, {*named.names, "lab"}) == {"rhfs0": "rhfs0", "pas_r11p7": "pas-r11p7"}


def test_cold_store_builds_up_to_the_target_only() -> None:
    steps = plan(pipeline(), "rhfs", lambda ref: False)
    assert actions(steps) == {"bootstrap": "build", "gw": "build", "rhfs": "build",
                              "web": "skip", "pas": "skip"}


def test_warm_store_reuses_everything() -> None:
    steps = plan(pipeline(), "pas", lambda ref: True)
    assert {s.action for s in steps} == {Action.REUSE}


def test_a_missing_middle_stage_is_built_and_the_rest_reused() -> None:
    keys = pipeline().keys()
    steps = plan(pipeline(), "web", lambda ref: ref.key != keys["rhfs"])
    assert actions(steps) == {"bootstrap": "reuse", "gw": "reuse", "rhfs": "build",
                              "web": "reuse", "pas": "skip"}


def test_from_snapshot_restores_it_and_rebuilds_the_later_needed_stages() -> None:
    steps = plan(pipeline(), "web", lambda ref: True, from_snapshot="gw")
    assert actions(steps) == {"bootstrap": "reuse", "gw": "reuse", "rhfs": "build",
                              "web": "build", "pas": "skip"}


def test_from_snapshot_beyond_the_need_restores_up_to_it() -> None:
    steps = plan(pipeline(), "gw", lambda ref: True, from_snapshot="web")
    assert actions(steps) == {"bootstrap": "reuse", "gw": "reuse", "rhfs": "reuse",
                              "web": "reuse", "pas": "skip"}


def test_from_snapshot_without_that_snapshot_says_how_to_build_it() -> None:
    keys = pipeline().keys()
    with pytest.raises(UsageError, match=r"stage gw has no snapshot with key \w+; build it first "
                                         r"\(`harness build --until gw`\)"):
        plan(pipeline(), "web", lambda ref: ref.key != keys["gw"], from_snapshot="gw")


def test_rebuild_builds_all_needed_but_never_twice_in_one_run() -> None:
    keys = pipeline().keys()
    steps = plan(pipeline(), "rhfs", lambda ref: True, rebuild=True,
                 settled=lambda ref: ref.key == keys["bootstrap"])
    assert actions(steps) == {"bootstrap": "reuse", "gw": "build", "rhfs": "build",
                              "web": "skip", "pas": "skip"}


def test_unknown_stage_lists_the_stages() -> None:
    with pytest.raises(UsageError, match="unknown stage 'dns': the stages are bootstrap, gw, rhfs, web, pas"):
        plan(pipeline(), "dns", lambda ref: True)


def test_needs_come_from_fixtures() -> None:
    p = pipeline()
    assert needed_stage(p, [["gw", "request"], ["tmp_path"]]) == "gw"
    assert needed_stage(p, [["gw"], ["web", "gw"]]) == "web"
    assert needed_stage(p, [["tmp_path"]]) is None
    assert needed_stage(p, [["lab"]]) == "pas"
    assert needed_stage(p, [["bootstrap"]]) == "bootstrap"


@pytest.mark.parametrize("stages, message", [
    ([Stage("gw", machines=("gw",))], "starts with a base stage"),
    ([Stage("b", base=base), Stage("x", machines=("m",)), Stage("x", machines=("n",))],
     "stage names must be unique: x repeated"),
    ([Stage("b", base=base), Stage("x", machines=("m",)), Stage("y", machines=("m",))],
     "machine m is added by both x and y"),
])
def test_bad_pipelines_are_refused(stages: list[Stage], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Pipeline(stages, {})


def test_a_stage_cannot_configure_machines_it_does_not_add() -> None:
    with pytest.raises(UsageError, match="sources or containers name machines it does not add: web"):
        Stage("gw", machines=("gw",), packages={"web": ("nginx",)})


def test_a_stage_key_covers_the_helpers_it_uses() -> None:
    import stages.bootstrap
    import stages.gw

    assert list(stages.gw.STAGE.modules) == ["stages.common", "stages.generate.dhcp", "stages.generate.dns",
                                             "stages.generate.network", "stages.generate.router",
                                             "stages.generate.uplink", "stages.gw", "stages.policy",
                                             "stages.spec"]
    assert stages.gw.STAGE.modules["stages.gw"] == Path(stages.gw.__file__).read_text()  # untouched
    assert "stages.gw" not in stages.bootstrap.STAGE.modules


# -- garbage in a stage or a pipeline: rejected when declared, naming the line at fault ------------


def _line_of(marker: str) -> int:
    """The line of this file holding ``marker`` (where a declaration under test is)."""
    return next(i for i, line in enumerate(Path(__file__).read_text().splitlines(), 1) if marker in line)


def test_a_stage_naming_a_machine_it_does_not_add_names_its_line() -> None:
    with pytest.raises(UsageError) as info:
        Stage.here("web", machines=("web",), packages={"wbe": ("nginx",)})  # typo: wbe
    line = _line_of("# typo: wbe")
    assert str(info.value).startswith(f"{__file__}:{line}: stage web: packages, boot_args, sources or "
                                      "containers name machines it does not add: wbe; it adds: web")


def _lan(machine: str, mac: str, address: str) -> list[Interface]:
    return [Interface(machine, "lan0", "lan", mac, (address,))]


@pytest.mark.parametrize("interfaces, message", [
    ({"gw": _lan("gw", "02:00:00:00:00:01", "10.0.0.1/24"),
      "web": _lan("web", "02:00:00:00:00:01", "10.0.0.2/24")},
     "MAC 02:00:00:00:00:01 is used twice: by gw/lan0 and by web/lan0"),
    ({"gw": _lan("gw", "02:00:00:00:00:01", "10.0.0.1/24"),
      "web": _lan("web", "02:00:00:00:00:02", "10.0.0.1/24")},
     "address 10.0.0.1 is used twice: by gw/lan0 and by web/lan0"),
    ({"mdb": _lan("mdb", "02:00:00:00:00:03", "10.0.0.3/24")},
     "interfaces, sysctls or rooms for machines no stage adds: mdb; the stages add: gw, web"),
], ids=["duplicate MAC", "duplicate address", "unknown machine"])
def test_a_bad_pipeline_names_its_line(interfaces: dict[str, list[Interface]], message: str) -> None:
    stages = [Stage("bootstrap", base=base), Stage("gw", machines=("gw",)), Stage("web", machines=("web",))]
    with pytest.raises(UsageError) as info:
        Pipeline(stages, interfaces)  # the declaration at fault
    assert str(info.value) == f"{__file__}:{_line_of('# the declaration at fault')}: {message}"


def test_a_bad_cidr_is_rejected_where_it_is_written() -> None:
    with pytest.raises(UsageError, match=r"gw/lan0: bad address '10.0.0.300/24': write it as a CIDR"):
        Interface("gw", "lan0", "lan", "02:00:00:00:00:01", ("10.0.0.300/24",))


def test_a_source_must_be_a_tree() -> None:
    stages = [Stage("bootstrap", base=base), Stage("rhfs", machines=("rhfs0",)),
              Stage("pas", machines=("pas",), sources={"pas": "rhfs0"})]
    with pytest.raises(UsageError, match="pas's source 'rhfs0' is not a tree of this or an earlier stage"):
        Pipeline(stages, {})



def test_a_machine_that_boots_its_tree_read_only_shares_it_and_is_not_stored() -> None:
    seats = ("s1", "s2", "s3")
    boot = {"s1": ("--read-only",), "s2": ("--volatile=overlay", "--bind=/dev/fuse"),
            "s3": ("--bind=/dev/fuse",)}
    stages = [Stage("bootstrap", base=base), Stage("rhfs", machines=("rhfs0",), trees=("rfs",)),
              Stage("pas", machines=seats, sources=dict.fromkeys(seats, "rfs"), boot_args=boot)]
    pipeline = Pipeline(stages, {})
    assert [pipeline.shared_tree(s) for s in seats] == ["rfs", "rfs", None]  # s3 writes its root
    assert pipeline.shared_tree("rhfs0") is None
    assert pipeline.stored_until("pas") == ("rhfs0", "rfs", "s3")
    assert pipeline.members_until("pas") == ("rhfs0", "rfs", *seats)


def test_a_machine_with_a_root_of_its_own_comes_from_an_earlier_stages_tree() -> None:
    stages = [Stage("bootstrap", base=base),
              Stage("pas", machines=("s1", "s2"), trees=("rfs",), sources={"s1": "rfs", "s2": "rfs"},
                    boot_args={"s1": ("--volatile=overlay",)})]
    with pytest.raises(UsageError, match="s2 gets a root of its own from tree 'rfs', which this stage is "
                                         "still preparing"):
        Pipeline(stages, {})
    shared = [stages[0], dataclasses.replace(stages[1], machines=("s1",), sources={"s1": "rfs"})]
    assert Pipeline(shared, {}).shared_tree("s1") == "rfs"  # sharing it, s1 boots what pas prepared


@pytest.mark.parametrize("args, read_only", [
    ((), False), (("--read-only",), True), (("--volatile",), True), (("--volatile=overlay",), True),
    (("--volatile=state",), True), (("--volatile=no",), False), (("--volatile-x",), False),
    (("--bind=/dev/fuse", "--volatile=yes"), True),
])
def test_which_nspawn_flags_leave_the_tree_untouched(args: tuple[str, ...], read_only: bool) -> None:
    assert nspawn.boots_read_only(args) is read_only

BROKEN_PIPELINE = '''
from harness.core.links import Interface
from harness.model.stage import Stage
from harness.model.pipeline import Pipeline

def base(root):
    return {}

PIPELINE = Pipeline(
    [Stage("bootstrap", base=base), Stage("alpha", machines=("alpha",))],
    {"alpha": [Interface("alpha", "host0", "lan", "02:00:00:00:66:01", ("10.66.0.1/24",))],
     "beta": [Interface("beta", "host0", "lan", "02:00:00:00:66:02", ("10.66.0.2/24",))]},
)
'''


def test_pytest_rejects_a_bad_pipeline_before_building_anything(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(brokenstages=BROKEN_PIPELINE, test_x="def test_x(alpha):\n    pass\n")
    result = pytester.runpytest_subprocess("--pipeline=brokenstages", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pipeline brokenstages: *brokenstages.py:8: interfaces, sysctls or "
                                 "rooms for machines no stage adds: beta; the stages add: alpha"])
    assert "stage" not in result.stdout.str()  # nothing was built, nothing was even collected


def test_a_test_parametrized_over_nothing_is_not_generated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rows='''
import pytest

@pytest.mark.parametrize("family", [])
def test_per_family(family):
    pass

def test_plain():
    pass
''')
    result = pytester.runpytest("-p", "no:cacheprovider")  # no pipeline module here: none loaded
    result.assert_outcomes(passed=1, deselected=1)  # not "1 skipped"


def office_pipeline(directory: Path, *, router: bool = True, **kwargs: object) -> Pipeline:
    """bootstrap, then one stage adding the office's three machines (tests.conftest.office_inventory)."""
    stages = [Stage("bootstrap", base=base), Stage("office", machines=("router", "laptop", "printer"))]
    return Pipeline(stages, inventory=office_inventory(directory, router=router), **kwargs)  # type: ignore[arg-type]


def test_the_router_forwards_in_each_family_it_has_from_the_inventory_alone(tmp_path: Path) -> None:
    assert office_pipeline(tmp_path).sysctls == {
        "router": {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}}
    assert office_pipeline(tmp_path, router=False).sysctls == {}
    inventory = office_inventory(tmp_path, router=False)
    ipv4_only = dataclasses.replace(inventory.hosts["printer"], router=True)
    inventory = dataclasses.replace(inventory, hosts={**inventory.hosts, "printer": ipv4_only})
    assert inventory.sysctls("printer") == {"net.ipv4.ip_forward": "1"}


def test_a_pipeline_takes_interfaces_and_rooms_from_its_inventory_and_adds_sysctls(tmp_path: Path) -> None:
    pipeline = office_pipeline(tmp_path, sysctls={"laptop": {"net.ipv4.conf.all.rp_filter": "0"}})
    assert pipeline.interfaces["printer"] == office_inventory(tmp_path).interfaces("printer")
    assert pipeline.sysctls["laptop"] == {"net.ipv4.conf.all.rp_filter": "0"}
    assert pipeline.sysctls["router"]["net.ipv4.ip_forward"] == "1"
    assert pipeline.keys()["office"] != office_pipeline(tmp_path, router=False).keys()["office"]


def test_static_addresses_from_the_inventory_are_the_pipelines_to_ask_for(tmp_path: Path) -> None:
    pipeline = office_pipeline(tmp_path, static_addresses=True)
    [laptop] = pipeline.interfaces["laptop"]
    assert laptop.addresses == ("10.81.1.2/24", "fd81:1::2/64")
    assert laptop.gateways == ("10.81.1.1", "fd81:1::1")
    assert office_pipeline(tmp_path).interfaces["laptop"][0].addresses == ()  # the machine's own files
    with pytest.raises(UsageError, match=r"test_stage.py:\d+: static_addresses is the inventory's: give "
                                         r"inventory= too"):
        Pipeline([Stage("bootstrap", base=base)], static_addresses=True)
